#!/usr/bin/env bash
# install.sh: build and install backup-stack.
# Run ./install.sh --help for the options. Idempotent: a second run changes nothing.
# What it writes as you is listed in a manifest in your home, and --uninstall removes that
# (as you). What it writes as root is recorded as root, next to the root-owned programs,
# and --uninstall checks it on the disk: the manifest, which you can write, never decides
# what root removes.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: ./install.sh [--libexec DIR] [--prefix DIR] [--yes]
       ./install.sh --rootless [--prefix DIR] [--yes]
       ./install.sh --uninstall [--libexec DIR] [--yes]

Builds backup-generator and backup-stack (go build, CGO_ENABLED=0, -trimpath)
and makes systemd run the generator:

  default     root mode, done as root: directly when run as root, else through
              sudo (asked first on a terminal, unless --yes). It installs both
              programs root-owned (root:root, 0755) into DIR (--libexec, default
              /usr/local/libexec/backup-stack) and makes the symlink
                /usr/local/lib/systemd/user-generators/backup-generator
                  -> DIR/backup-generator
              systemd looks for user generators only in /run, /etc,
              /usr/local/lib and /usr/lib .../systemd/user-generators, never in
              a home, and runs them in EVERY user's manager on the machine,
              root's included: whoever can replace the generator, or the
              backup-stack its units run (DIR/backup-stack: the generator names
              the one next to its own real path), runs code as every user. So
              DIR must be absolute, outside every home, and each directory on
              its path owned by root, writable by nobody else and searchable by
              all; install.sh refuses anything else, and never links a system
              directory to a file in a home.
              Your --prefix (default ~/.local/bin) gets symlinks to the two
              programs, for your shell. The generator runs on every
              daemon-reload; for a user without ~/.config/backup-stack it
              writes nothing and logs nothing.
  --rootless  no root at all: the units are rendered into
              ~/.config/systemd/user/ (a manifest there lets later renders
              remove the units of deleted stacks; files not in it are never
              touched) by `backup-stack render`, run by
              backup-generator-render.service, which
              backup-generator-render.path starts when a file in
              ~/.config/backup-stack/stacks/ or config.hcl changes (and which
              also runs when the user manager starts). The programs go into
              --prefix (default ~/.local/bin).
              Trade-off: rendering happens on a file change, not on
              daemon-reload: a plain `systemctl --user daemon-reload` does not
              pick up an edit made while the path unit was not running; run
              `systemctl --user start backup-generator-render.service` then.
  When neither root nor sudo is available, install.sh offers --rootless.

It also creates ~/.config/backup-stack/stacks/ with _template.hcl (if absent),
runs `systemctl --user daemon-reload` when your user manager is reachable,
checks the prerequisites (go, systemd >= 250, podman, podman-compose, lingering)
and prints what to type next.

  --libexec DIR  root mode: where the root-owned programs go
                 (default /usr/local/libexec/backup-stack)
  --prefix DIR   root mode: where your symlinks to them go; rootless: where
                 the programs go (default ~/.local/bin)
  --rootless     rootless mode (see above)
  --yes          do not ask: use sudo when needed, or rootless mode without root
  --uninstall    remove what install.sh installed; your stack files, config.hcl
                 and a non-empty stacks directory stay.
                 What it wrote as you is listed in
                 ~/.local/share/backup-stack/install-manifest and is removed as
                 you (never through sudo): only entries below your home, config,
                 data or prefix directory, and only what you own; any other line
                 is ignored with a warning.
                 As root (directly, or through sudo in root mode) it removes the
                 generator link only if it points at install.sh's own root-owned
                 DIR/backup-generator (or is an older install.sh's link to a file
                 a user can replace), the programs named in
                 DIR/.backup-stack-install (a record only root can write), and
                 the directories install.sh created for them, when empty.
                 DIR: --libexec, else found from the link, else the default.
  --help         this text

Environment: BACKUP_STACK_GENERATOR_DIR overrides the generator directory
(for tests; the rules for DIR apply to it too); XDG_CONFIG_HOME and
XDG_DATA_HOME are honoured.
EOF
}

die() {
	echo "install.sh: $*" >&2
	exit 1
}
warn() { echo "install.sh: warning: $*" >&2; }
say() { echo "  $*"; }

# ---- options --------------------------------------------------------------

PREFIX=""
LIBEXEC_ARG=""
ROOTLESS=0
YES=0
UNINSTALL=0
while [ $# -gt 0 ]; do
	case "$1" in
	--prefix)
		[ $# -ge 2 ] || die "--prefix needs a directory"
		PREFIX=$2
		shift 2
		;;
	--prefix=*)
		PREFIX=${1#--prefix=}
		shift
		;;
	--libexec)
		[ $# -ge 2 ] || die "--libexec needs a directory"
		LIBEXEC_ARG=$2
		shift 2
		;;
	--libexec=*)
		LIBEXEC_ARG=${1#--libexec=}
		shift
		;;
	--rootless) ROOTLESS=1 && shift ;;
	--yes | -y) YES=1 && shift ;;
	--uninstall) UNINSTALL=1 && shift ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $1"
		;;
	esac
done

[ -n "${HOME:-}" ] || die "HOME is not set"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
abs_or() { case "${1:-}" in /*) echo "$1" ;; *) echo "$2" ;; esac }
CONFIG_HOME=$(abs_or "${XDG_CONFIG_HOME:-}" "$HOME/.config")
DATA_HOME=$(abs_or "${XDG_DATA_HOME:-}" "$HOME/.local/share")
CFG_DIR=$CONFIG_HOME/backup-stack
STACKS_DIR=$CFG_DIR/stacks
UNIT_DIR=$CONFIG_HOME/systemd/user
STATE_DIR=$DATA_HOME/backup-stack
MANIFEST=$STATE_DIR/install-manifest
GEN_DIR_GIVEN=${BACKUP_STACK_GENERATOR_DIR:-/usr/local/lib/systemd/user-generators}
RENDER=backup-generator-render
MARK_NAME=.backup-stack-install
DEFAULT_LIBEXEC=/usr/local/libexec/backup-stack
MY_UID=$(id -u)
ME=${USER:-$(id -un)}

case "$GEN_DIR_GIVEN" in
/*) GEN_DIR=$(realpath -m -- "$GEN_DIR_GIVEN") ;;
*) die "BACKUP_STACK_GENERATOR_DIR must be an absolute path (got: $GEN_DIR_GIVEN)" ;;
esac
GEN_LINK=$GEN_DIR/backup-generator

if [ -n "$LIBEXEC_ARG" ]; then
	[ $ROOTLESS = 0 ] || die "--libexec is for root mode: --rootless installs nothing as root (the programs go into --prefix)"
	case "$LIBEXEC_ARG" in
	/*) ;;
	*) die "--libexec must be an absolute path (got: $LIBEXEC_ARG)" ;;
	esac
	LIBEXEC=$(realpath -m -- "$LIBEXEC_ARG")
else
	LIBEXEC=$DEFAULT_LIBEXEC
fi

if [ -z "$PREFIX" ]; then
	PREFIX=$HOME/.local/bin
fi
case "$PREFIX" in
/*) ;;
*) PREFIX=$(pwd)/$PREFIX ;;
esac
PREFIX=${PREFIX%/}

is_tty() { [ -t 0 ]; }

# ask QUESTION: yes/no on the terminal, default yes.
ask() {
	local a
	read -r -p "$1 [Y/n] " a || a=n
	case "$a" in "" | y | Y | yes | Yes) return 0 ;; *) return 1 ;; esac
}

# ---- the manifest ---------------------------------------------------------
# Your manifest ($MANIFEST, written as you). One entry per line, in the order things were
# created: KIND PATH, with KIND
#   mode       root | rootless (no path)
#   prefix     the --prefix directory         libexec   root mode's --libexec (a hint only)
#   file       a file we wrote                link      a symlink we made
#   dir        a directory we created (removed only when empty)
#   template   SHA256 PATH: a copy of _template.hcl, removed only if unchanged
#   units      a unit directory written by `backup-stack render`
# Older versions also wrote "rootfile" and "rootdir" lines; --uninstall ignores them.
#
# What root writes is recorded by root in LIBEXEC/.backup-stack-install (root-owned, 0644):
#   file PATH (the two programs), link PATH (the generator link), rootdir PATH (directories
#   created as root). --uninstall checks each against the disk before removing it.

ENTRIES=()
load_manifest() {
	ENTRIES=()
	[ -f "$MANIFEST" ] || return 0
	local line
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in "" | "#"*) continue ;; esac
		ENTRIES+=("$line")
	done <"$MANIFEST"
}
has_entry() {
	local e
	for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do
		[ "$e" = "$1" ] && return 0
	done
	return 1
}
save_manifest() {
	[ -d "$STATE_DIR" ] || return 0 # only while mkdir_tracked creates it; it records it right after
	local tmp=$MANIFEST.tmp.$$
	{
		echo "# Written by backup-stack's install.sh: what it installed as $ME. ./install.sh --uninstall removes it."
		local e
		for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do echo "$e"; done
	} >"$tmp"
	if cmp -s "$tmp" "$MANIFEST"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$MANIFEST"
	fi
}
record() {
	has_entry "$*" && return 0
	ENTRIES+=("$*")
	save_manifest
}
# drop_entry ENTRY removes an entry (used when replacing a recorded template or file).
drop_entry() {
	local keep=() e
	for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do
		[ "$e" = "$1" ] || keep+=("$e")
	done
	ENTRIES=(${keep[@]+"${keep[@]}"})
	save_manifest
}
# entry_value KIND: the path of the first KIND entry (mode, prefix, libexec).
entry_value() {
	local e
	for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do
		case "$e" in "$1 "*) echo "${e#"$1" }" && return 0 ;; esac
	done
	return 0
}

# ---- helpers --------------------------------------------------------------

ROOT=() # command prefix for root actions: () or (sudo)
CHANGED=0
as_root() { "${ROOT[@]}" "$@"; }

user_name() { getent passwd "$1" 2>/dev/null | cut -d: -f1 | grep . || echo "uid $1"; }
group_name() { getent group "$1" 2>/dev/null | cut -d: -f1 | grep . || echo "gid $1"; }

# mkdir_tracked DIR: create DIR and its missing parents (as you), recording each one created.
mkdir_tracked() {
	local d=$1 missing=() p
	p=$d
	while [ ! -e "$p" ] && [ ! -L "$p" ]; do
		missing=("$p" ${missing[@]+"${missing[@]}"})
		p=$(dirname "$p")
	done
	[ -d "$d" ] || [ ${#missing[@]} -gt 0 ] || die "$d exists and is not a directory"
	for p in ${missing[@]+"${missing[@]}"}; do
		mkdir -m 0755 "$p"
	done
	for p in ${missing[@]+"${missing[@]}"}; do
		record "dir $p"
		say "created   $p/"
		CHANGED=1
	done
}

# put_file SRC DST MODE: install SRC as DST unless DST already has that content.
put_file() {
	local src=$1 dst=$2 mode=$3
	if { [ -e "$dst" ] || [ -L "$dst" ]; } && ! has_entry "file $dst"; then
		die "$dst exists and was not installed by install.sh; move it away and run again"
	fi
	if [ -f "$dst" ] && [ ! -L "$dst" ] && cmp -s "$src" "$dst" && [ "$(stat -c %a "$dst")" = "${mode#0}" ]; then
		record "file $dst"
		say "unchanged $dst"
		return 0
	fi
	record "file $dst" # before writing: an interrupted run leaves nothing unlisted
	local tmp
	tmp=$(mktemp "$(dirname "$dst")/.install-tmp.XXXXXX")
	cat "$src" >"$tmp"
	chmod "$mode" "$tmp"
	sync "$tmp" 2>/dev/null || true
	mv -f "$tmp" "$dst"
	say "installed $dst"
	CHANGED=1
}

# put_content DST MODE <<<CONTENT
put_content() {
	local tmp
	tmp=$(mktemp)
	cat >"$tmp"
	put_file "$tmp" "$1" "$2"
	rm -f "$tmp"
}

# put_link TARGET LINK: a symlink of yours. A program an earlier install.sh put at LINK
# (recorded as a file) becomes the link.
put_link() {
	local target=$1 link=$2
	if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
		record "link $link"
		say "unchanged $link -> $target"
		return 0
	fi
	if [ -e "$link" ] || [ -L "$link" ]; then
		if has_entry "file $link" && [ -f "$link" ] && [ ! -L "$link" ]; then
			record "link $link"
			rm -f -- "$link"
			drop_entry "file $link"
		else
			has_entry "link $link" || die "$link exists and was not installed by install.sh; remove it and run again"
		fi
	fi
	record "link $link"
	ln -sfn "$target" "$link"
	say "linked    $link -> $target"
	CHANGED=1
}

# systemd unit-file quoting of one Exec word: "..." with \ " escaped, % and $ doubled.
exec_word() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//%/%%}
	s=${s//\$/\$\$}
	printf '"%s"' "$s"
}
# a path in a unit setting that is not an Exec line: only % needs escaping.
unit_path() { printf '%s' "${1//%/%%}"; }

SYSTEMCTL=$(command -v systemctl || true)
manager_reachable() {
	[ -n "$SYSTEMCTL" ] || return 1
	local v
	v=$(timeout 15 "$SYSTEMCTL" --user show -p Version --value 2>/dev/null) || return 1
	[ -n "$v" ]
}
user_systemctl() { timeout 120 "$SYSTEMCTL" --user "$@"; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- where root may put what every manager runs --------------------------

WHY_SYSTEM="systemd runs user generators in every user's manager on this machine, root's included, so the generator and the backup-stack its units run must be root-owned files in root-owned directories outside every home: whoever can replace them (or a directory above them) runs code as every user, root included"

# homes: the home directories on this machine, canonical: yours, /home, /root, and those of
# root and of the login users (uid >= 1000) in the passwd database.
homes() {
	{
		printf '%s\n' "$HOME" /home /root
		if command -v getent >/dev/null; then
			if [ -n "${SUDO_USER:-}" ]; then getent passwd "$SUDO_USER" | cut -d: -f6 || true; fi
			getent passwd | awk -F: '$3 == 0 || ($3 >= 1000 && $3 < 65534) { print $6 }' || true
		fi
	} | while IFS= read -r h; do
		case "$h" in /?*) realpath -m -- "$h" ;; esac
	done | sort -u
}

# dir_problem DIR (absolute, canonical): why DIR is no place for files that every user's
# manager runs; prints nothing when it is one. Directories that do not exist yet would be
# created by root (0755).
dir_problem() {
	local p=$1 h d st uid gid mode
	while IFS= read -r h; do
		case "$p/" in "$h"/*)
			echo "it is inside the home directory $h"
			return 0
			;;
		esac
	done < <(homes)
	d=$p
	while :; do
		if [ -e "$d" ] || [ -L "$d" ]; then
			if [ -L "$d" ] || [ ! -d "$d" ]; then
				echo "$d exists and is not a directory"
				return 0
			fi
			if ! st=$(stat -c '%u %g %a' -- "$d" 2>/dev/null); then
				echo "cannot inspect $d"
				return 0
			fi
			read -r uid gid mode <<<"$st"
			if [ "$uid" != 0 ]; then
				echo "$d is owned by $(user_name "$uid"), not root"
				return 0
			fi
			if (((8#$mode & 8#002) != 0)); then
				echo "$d is writable by others (mode $mode)"
				return 0
			fi
			if (((8#$mode & 8#020) != 0)) && [ "$gid" != 0 ]; then
				echo "$d is writable by the group $(group_name "$gid") (mode $mode)"
				return 0
			fi
			if (((8#$mode & 8#005) != 8#005)); then
				echo "$d is not readable and searchable by other users (mode $mode), so their managers could not run the generator"
				return 0
			fi
		fi
		[ "$d" = / ] && return 0
		d=$(dirname -- "$d")
	done
}

# file_problem FILE: why FILE is not a file only root can change (nothing when it is one).
file_problem() {
	local f=$1 uid gid mode
	if [ -L "$f" ] || [ ! -f "$f" ]; then
		echo "$f is not a regular file"
		return 0
	fi
	read -r uid gid mode < <(stat -c '%u %g %a' -- "$f")
	if [ "$uid" != 0 ]; then
		echo "$f is owned by $(user_name "$uid"), not root"
	elif (((8#$mode & 8#002) != 0)) || { (((8#$mode & 8#020) != 0)) && [ "$gid" != 0 ]; }; then
		echo "$f is writable by others than root (mode $mode)"
	else
		dir_problem "$(dirname -- "$f")"
	fi
}

# replaceable PATH (canonical): someone other than root could put their own file at PATH.
replaceable() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		[ -n "$(file_problem "$1")" ]
	else
		[ -n "$(dir_problem "$(dirname -- "$1")")" ]
	fi
}

# check_system_dir WHAT DIR GIVEN DEFAULT: die, saying why, unless DIR (canonical; GIVEN as
# the user wrote it) is fit for root mode's files.
check_system_dir() {
	local what=$1 d=$2 given=$3 default=$4 why
	why=$(dir_problem "$d")
	[ -z "$why" ] && return 0
	[ "$given" = "$d" ] || d="$given (that is, $d)"
	die "refusing $what $d: $why. $WHY_SYSTEM. Use a directory like the default $default (or --rootless, which needs no root at all)."
}

# link_target LINK: the canonical path LINK points at.
link_target() {
	local t
	t=$(readlink -- "$1")
	case "$t" in /*) ;; *) t=$(dirname -- "$1")/$t ;; esac
	realpath -m -- "$t"
}

# gen_link_state DIR: what $GEN_LINK is: none; ours (-> DIR/backup-generator); old (a link
# to a backup-generator someone other than root can replace: what install.sh made before
# it installed root-owned programs); foreign (anything else).
gen_link_state() {
	if [ ! -e "$GEN_LINK" ] && [ ! -L "$GEN_LINK" ]; then
		echo none
	elif [ ! -L "$GEN_LINK" ]; then
		echo foreign
	elif [ "$(readlink -- "$GEN_LINK")" = "$1/backup-generator" ]; then
		echo ours
	else
		local t
		t=$(link_target "$GEN_LINK")
		if [ "${t##*/}" = backup-generator ] && replaceable "$t"; then echo old; else echo foreign; fi
	fi
}

# read_mark DIR: the entries of DIR's root-written record (nothing unless it is root's).
read_mark() {
	local m=$1/$MARK_NAME
	[ -z "$(file_problem "$m")" ] || return 0
	grep -v '^#' -- "$m" | grep . || true
}

# verified_libexec DIR: DIR holds install.sh's root install (its record is root's, in a
# root-owned directory chain outside every home).
verified_libexec() {
	[ -n "$1" ] && [ -d "$1" ] && [ -z "$(dir_problem "$1")" ] && [ -z "$(file_problem "$1/$MARK_NAME")" ]
}

# clean_abs PATH: an absolute path without empty, . or .. components (and not /).
clean_abs() {
	case "$1" in /?*) ;; *) return 1 ;; esac
	case "$1/" in *//* | */./* | */../*) return 1 ;; esac
	return 0
}

# ---- prerequisites --------------------------------------------------------

check_prereqs() {
	echo "Checking prerequisites:"
	local missing=()
	if command -v go >/dev/null; then
		say "go        $(go version | cut -d' ' -f3)"
	else
		missing+=("go (needed to build; https://go.dev/dl/, Go >= 1.26)")
	fi
	if [ -n "$SYSTEMCTL" ]; then
		local v
		v=$("$SYSTEMCTL" --version | head -1 | awk '{print $2}')
		if [ "${v%%.*}" -ge 250 ] 2>/dev/null; then
			say "systemd   $v"
		else
			say "systemd   $v: WARNING: version >= 250 recommended (tested with 252)"
		fi
	else
		missing+=("systemctl (systemd is required)")
	fi
	local tool
	for tool in podman podman-compose; do
		if command -v $tool >/dev/null; then
			say "$(printf '%-9s' $tool) $(command -v $tool)"
		else
			say "$(printf '%-9s' $tool) MISSING: your stacks need it (apt-get install $tool)"
		fi
	done
	local linger
	if linger=$(timeout 10 loginctl show-user "$ME" -p Linger --value 2>/dev/null) && [ -n "$linger" ]; then
		if [ "$linger" = yes ]; then
			say "linger    yes (timers fire without a login)"
		else
			say "linger    no: timers fire only while you are logged in; to change that: loginctl enable-linger $ME"
		fi
	else
		say "linger    cannot tell (no logind session for $ME); for timers without a login: loginctl enable-linger $ME"
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		local m
		for m in "${missing[@]}"; do echo "install.sh: missing: $m" >&2; done
		exit 1
	fi
}

# home_owner: the uid owning $HOME (root's own when it does not exist yet).
home_owner() { stat -c %u -- "$HOME" 2>/dev/null || echo 0; }

# ---- uninstall ------------------------------------------------------------

# The part done as root: returns 0 when done (or nothing to do), 1 when root was needed but
# not available. Nothing here comes from the manifest except a hint where to look, and that
# is checked like any other candidate.
ROOT_RM_LINKS=()
ROOT_RM_FILES=()
ROOT_RM_DIRS=()
ROOT_LIBEXEC=""
plan_root_uninstall() {
	local cands=() c d e kind path t
	if [ -n "$LIBEXEC_ARG" ]; then
		cands=("$LIBEXEC")
	else
		d=$(entry_value libexec)
		if [ -n "$d" ] && clean_abs "$d"; then cands+=("$(realpath -m -- "$d")"); fi
		if [ -L "$GEN_LINK" ]; then
			t=$(readlink -- "$GEN_LINK")
			case "$t" in /*/backup-generator) cands+=("$(dirname -- "$t")") ;; esac
		fi
		cands+=("$DEFAULT_LIBEXEC")
	fi
	for c in ${cands[@]+"${cands[@]}"}; do
		if verified_libexec "$c"; then
			ROOT_LIBEXEC=$c
			break
		fi
	done
	local links=("$GEN_LINK")
	if [ -n "$ROOT_LIBEXEC" ]; then
		while read -r kind path; do
			case "$kind" in
			file)
				case "$path" in "$ROOT_LIBEXEC/backup-generator" | "$ROOT_LIBEXEC/backup-stack")
					if [ -f "$path" ] && [ ! -L "$path" ]; then ROOT_RM_FILES+=("$path"); fi
					;;
				esac
				;;
			link)
				if clean_abs "$path" && [ "${path##*/}" = backup-generator ] && [ "$path" != "$GEN_LINK" ]; then links+=("$path"); fi
				;;
			esac
		done < <(read_mark "$ROOT_LIBEXEC")
		ROOT_RM_FILES+=("$ROOT_LIBEXEC/$MARK_NAME")
	fi
	local l
	for l in "${links[@]}"; do
		[ -L "$l" ] || continue
		if [ -n "$ROOT_LIBEXEC" ] && [ "$(readlink -- "$l")" = "$ROOT_LIBEXEC/backup-generator" ]; then
			ROOT_RM_LINKS+=("$l")
		fi
	done
	# An older install.sh's link into a home (or to any file a user can replace): removed when
	# it is yours (or when root asks); another user's is left, with a word.
	if [ -L "$GEN_LINK" ] && [ "$(gen_link_state "${ROOT_LIBEXEC:-/nonexistent}")" = old ]; then
		t=$(link_target "$GEN_LINK")
		local owner
		owner=$(stat -c %u -- "$t" 2>/dev/null || echo "")
		case "$t/" in "$(realpath -m -- "$HOME")"/*) owner=$MY_UID ;; esac
		if [ "$MY_UID" = 0 ] || [ "$owner" = "$MY_UID" ]; then
			ROOT_RM_LINKS+=("$GEN_LINK")
		else
			warn "left $GEN_LINK -> $t: an older install's link to a file that $( [ -n "$owner" ] && user_name "$owner" || echo "a user") can replace, not yours; root should remove it"
		fi
	elif [ -L "$GEN_LINK" ] && [ ${#ROOT_RM_LINKS[@]} -eq 0 ] && [ -n "$ROOT_LIBEXEC" ]; then
		say "kept      $GEN_LINK -> $(readlink -- "$GEN_LINK") (not install.sh's link to $ROOT_LIBEXEC/backup-generator)"
	fi
	# Directories root created: only the libexec directory, the link's directories and their
	# parents, and only when empty.
	if [ -n "$ROOT_LIBEXEC" ]; then
		local dirs=()
		while read -r kind path; do
			[ "$kind" = rootdir ] && clean_abs "$path" || continue
			local ok=0
			for l in "$ROOT_LIBEXEC/x" "${links[@]}"; do
				case "$(dirname -- "$l")/" in "$path"/*) ok=1 ;; esac
			done
			[ $ok = 1 ] && dirs+=("$path")
		done < <(read_mark "$ROOT_LIBEXEC")
		# Children before parents: longest first.
		if [ ${#dirs[@]} -gt 0 ]; then
			while IFS= read -r d; do ROOT_RM_DIRS+=("$d"); done < <(printf '%s\n' "${dirs[@]}" | awk '!seen[$0]++ { print length($0) " " $0 }' | sort -k1,1nr | cut -d' ' -f2-)
		fi
	fi
}

root_uninstall() {
	if [ ${#ROOT_RM_LINKS[@]} -eq 0 ] && [ ${#ROOT_RM_FILES[@]} -eq 0 ]; then
		if [ -z "$ROOT_LIBEXEC" ] && [ "$(entry_value mode)" = root ]; then
			say "found     no root install of install.sh (no root-owned ${LIBEXEC_ARG:-$DEFAULT_LIBEXEC}/$MARK_NAME, no link $GEN_LINK to it)"
		fi
		return 0
	fi
	if [ "$MY_UID" != 0 ] && [ ${#ROOT[@]} -eq 0 ]; then
		if command -v sudo >/dev/null && { [ $YES = 1 ] || { is_tty && ask "Removing the root-owned install (${ROOT_LIBEXEC:-the generator link}) needs root. Use sudo?"; }; }; then
			ROOT=(sudo)
		else
			local p
			for p in ${ROOT_RM_LINKS[@]+"${ROOT_RM_LINKS[@]}"} ${ROOT_RM_FILES[@]+"${ROOT_RM_FILES[@]}"}; do
				say "NOT removed $p: needs root"
			done
			return 1
		fi
	fi
	local p
	for p in ${ROOT_RM_LINKS[@]+"${ROOT_RM_LINKS[@]}"}; do
		as_root rm -f -- "$p" && say "removed   $p (as root)"
	done
	for p in ${ROOT_RM_FILES[@]+"${ROOT_RM_FILES[@]}"}; do
		as_root rm -f -- "$p" && say "removed   $p (as root)"
	done
	for p in ${ROOT_RM_DIRS[@]+"${ROOT_RM_DIRS[@]}"}; do
		if [ -d "$p" ] && [ ! -L "$p" ] && as_root rmdir -- "$p" 2>/dev/null; then
			say "removed   $p/ (as root)"
		fi
	done
	return 0
}

# entry_ok KIND PATH: uninstall may remove PATH as you: a plain absolute path below your home,
# config, data or prefix directory (a directory may also be a parent of the prefix, created
# for it), and yours. Sets OK_PATH (canonical) or WHY_NOT.
ALLOWED=()
PREFIXES=()
OK_PATH=""
WHY_NOT=""
entry_ok() {
	local kind=$1 p=$2 c parent r home
	OK_PATH=""
	WHY_NOT=""
	if ! clean_abs "$p"; then
		WHY_NOT="not a plain absolute path"
		return 1
	fi
	parent=$(realpath -m -- "$(dirname -- "$p")")
	c=${parent%/}/${p##*/}
	home=$(realpath -m -- "$HOME")
	local ok=0
	for r in ${ALLOWED[@]+"${ALLOWED[@]}"}; do
		case "$c" in "$r"/*) ok=1 ;; esac
	done
	if [ $ok = 0 ] && [ "$kind" = dir ]; then
		for r in ${PREFIXES[@]+"${PREFIXES[@]}"}; do
			case "$r/" in "$c"/*)
				case "$home/" in "$c"/*) ;; *) ok=1 ;; esac
				;;
			esac
		done
	fi
	if [ $ok = 0 ]; then
		WHY_NOT="not below your home, config, data or prefix directory"
		return 1
	fi
	if [ -e "$c" ] || [ -L "$c" ]; then
		local owner
		owner=$(stat -c %u -- "$c" 2>/dev/null || echo "")
		if [ "$owner" != "$MY_UID" ]; then
			WHY_NOT="owned by $(user_name "$owner"), not by you"
			return 1
		fi
	fi
	OK_PATH=$c
	return 0
}

uninstall() {
	local user_part=1
	if [ "$MY_UID" = 0 ] && [ "$(home_owner)" != 0 ]; then
		warn "not touching $HOME and its manifest: they belong to $(user_name "$(home_owner)"), and root does not remove files in a home it does not own (run ./install.sh --uninstall as that user)"
		user_part=0
	elif [ -e "$MANIFEST" ] && { [ "$(stat -c %u -- "$MANIFEST")" != "$MY_UID" ] || [ "$(stat -c %u -- "$STATE_DIR")" != "$MY_UID" ]; }; then
		warn "not using $MANIFEST: it (or $STATE_DIR) is not yours"
		user_part=0
	fi
	[ $user_part = 1 ] && load_manifest
	local mode root_part=0
	mode=$(entry_value mode)
	# Root's part: in root mode, with --libexec, or when root runs it without a manifest.
	if [ "$mode" = root ] || [ -n "$LIBEXEC_ARG" ] || { [ "$MY_UID" = 0 ] && [ ${#ENTRIES[@]} -eq 0 ]; }; then
		root_part=1
		plan_root_uninstall
	fi
	if [ ${#ENTRIES[@]} -eq 0 ] && [ ${#ROOT_RM_LINKS[@]} -eq 0 ] && [ ${#ROOT_RM_FILES[@]} -eq 0 ]; then
		if [ $root_part = 1 ]; then
			echo "Nothing to uninstall: no manifest at $MANIFEST, and no root install of install.sh (looked in ${LIBEXEC_ARG:+$LIBEXEC}${LIBEXEC_ARG:-$DEFAULT_LIBEXEC and at $GEN_LINK})."
		else
			echo "Nothing to uninstall: no manifest at $MANIFEST."
		fi
		return 0
	fi
	if [ ${#ENTRIES[@]} -gt 0 ]; then
		echo "Uninstalling what $MANIFEST lists (as $ME), and what install.sh installed as root:"
	else
		echo "Uninstalling what install.sh installed as root:"
	fi
	local reachable=0 e kind path helper="" i root_pending=0
	[ ${#ENTRIES[@]} -gt 0 ] && manager_reachable && reachable=1

	# Where uninstall may remove your things.
	ALLOWED=()
	PREFIXES=()
	for path in "$HOME" "$CONFIG_HOME" "$DATA_HOME"; do
		path=$(realpath -m -- "$path")
		[ "$path" = / ] || ALLOWED+=("$path")
	done
	for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do
		case "$e" in "prefix "*)
			path=${e#prefix }
			if clean_abs "$path"; then
				path=$(realpath -m -- "$path")
				ALLOWED+=("$path")
				PREFIXES+=("$path")
			else
				warn "ignoring manifest line '$e': not a plain absolute path"
			fi
			;;
		esac
	done

	# Sort the manifest: what may be removed (as you), what is ignored (with a warning).
	local todo=()
	for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do
		kind=${e%% *}
		path=${e#* }
		case "$kind" in
		mode | prefix | libexec) continue ;;
		template) path=${path#* } ;;
		file | link | dir | units) ;;
		rootfile | rootdir)
			warn "ignoring manifest line '$e': what root removes is never taken from this list (you can write it); the generator link and the root-owned programs are checked on the disk instead"
			continue
			;;
		*)
			warn "ignoring manifest line '$e': unknown entry"
			continue
			;;
		esac
		if [ "$kind" = units ]; then
			if [ "$path" != "$UNIT_DIR" ]; then
				warn "ignoring manifest line '$e': install.sh renders units only into $UNIT_DIR"
				continue
			fi
		elif ! entry_ok "$kind" "$path"; then
			warn "ignoring manifest line '$e': $WHY_NOT"
			continue
		fi
		todo+=("$e")
		case "$e" in "file "*/backup-stack) helper=$OK_PATH ;; esac
	done

	# 1. Units rendered by the rootless mode (stop the path unit first).
	for e in ${todo[@]+"${todo[@]}"}; do
		[ "${e%% *}" = units ] || continue
		path=${e#units }
		if [ $reachable = 1 ]; then
			user_systemctl stop "$RENDER.path" "$RENDER.service" >/dev/null 2>&1 || true
		fi
		local reload=(--no-reload)
		[ $reachable = 1 ] && reload=()
		if [ -n "$helper" ] && [ -x "$helper" ] && "$helper" render --clean ${reload[@]+"${reload[@]}"} "$path" | sed 's/^/  /'; then
			:
		elif [ -f "$path/.backup-generator-manifest" ]; then
			# Fallback without the binary: the manifest's own format is "f|l|d PATH", relative.
			local k p dirs=()
			while read -r k p; do
				case "/$p/" in */../* | */./*) continue ;; esac
				case "$k" in
				f | l) rm -f -- "$path/$p" && say "removed   $path/$p" ;;
				d) dirs=("$path/$p" ${dirs[@]+"${dirs[@]}"}) ;;
				esac
			done < <(grep -v '^#' "$path/.backup-generator-manifest")
			for p in ${dirs[@]+"${dirs[@]}"}; do rmdir -- "$p" 2>/dev/null || true; done
			rm -f -- "$path/.backup-generator-manifest"
		fi
	done
	# The manager's stamp files of our Persistent= timers (its state, kept only for our timers).
	if [ ${#ENTRIES[@]} -gt 0 ]; then
		local stamp
		for stamp in "$DATA_HOME"/systemd/timers/stamp-backup@*.timer; do
			[ -e "$stamp" ] || continue
			rm -f -- "$stamp" && say "removed   $stamp (systemd's last-run stamp of a backup timer)"
		done
	fi
	# 2. As root: the generator link, the root-owned programs, their directories.
	if [ $root_part = 1 ]; then
		root_uninstall || root_pending=1
	fi
	# 3. Your files and links, newest first.
	for ((i = ${#todo[@]} - 1; i >= 0; i--)); do
		e=${todo[$i]}
		kind=${e%% *}
		path=${e#* }
		case "$kind" in
		file)
			entry_ok file "$path" && path=$OK_PATH || continue
			if [ -f "$path" ] || [ -L "$path" ]; then rm -f -- "$path" && say "removed   $path"; fi
			;;
		link)
			entry_ok link "$path" && path=$OK_PATH || continue
			if [ -L "$path" ]; then rm -f -- "$path" && say "removed   $path"; fi
			;;
		template)
			local want=${path%% *}
			path=${path#* }
			entry_ok file "$path" && path=$OK_PATH || continue
			if [ -f "$path" ] && [ ! -L "$path" ]; then
				if [ "$(sha "$path")" = "$want" ]; then
					rm -f -- "$path" && say "removed   $path"
				else
					say "kept      $path (you changed it)"
				fi
			fi
			;;
		esac
	done
	# 4. The manifest, then the directories we created (children before parents).
	if [ $user_part = 1 ] && [ -f "$MANIFEST" ]; then
		if [ $root_pending = 1 ]; then
			# Kept for the run that finishes: the mode, where root's part is, and the
			# directories (removed then, once empty).
			local keep=("mode root")
			[ -n "$ROOT_LIBEXEC" ] && keep+=("libexec $ROOT_LIBEXEC")
			for e in ${todo[@]+"${todo[@]}"}; do
				case "$e" in "dir "*) [ -d "${e#dir }" ] && keep+=("$e") ;; esac
			done
			ENTRIES=("${keep[@]}")
			save_manifest
		else
			rm -f -- "$MANIFEST"
		fi
	fi
	for ((i = ${#todo[@]} - 1; i >= 0; i--)); do
		e=${todo[$i]}
		[ "${e%% *}" = dir ] || continue
		entry_ok dir "${e#dir }" && path=$OK_PATH || continue
		[ -d "$path" ] && [ ! -L "$path" ] || continue
		if rmdir -- "$path" 2>/dev/null; then
			say "removed   $path/"
		elif [ "$path" = "$STACKS_DIR" ]; then
			say "kept      $path/ (holds your stack files)"
		else
			say "kept      $path/ (not empty)"
		fi
	done
	if [ $root_pending = 1 ]; then
		echo "The root-owned install needs root to remove: run ./install.sh --uninstall${ROOT_LIBEXEC:+ --libexec $ROOT_LIBEXEC} as root, or again with sudo available."
	fi
	if [ $reachable = 1 ]; then
		user_systemctl daemon-reload && say "ran       systemctl --user daemon-reload"
	fi
	[ $user_part = 1 ] && echo "Kept: your stack files in $STACKS_DIR and $CFG_DIR/config.hcl (if any)."
	[ $root_pending = 0 ]
}

# ---- install --------------------------------------------------------------

choose_mode() {
	if [ $ROOTLESS = 1 ]; then
		return 0
	fi
	if [ "$MY_UID" = 0 ]; then
		ROOT=()
		return 0
	fi
	if command -v sudo >/dev/null; then
		if [ $YES = 1 ]; then
			ROOT=(sudo)
			return 0
		fi
		if is_tty; then
			echo "systemd runs user generators only from system directories such as $GEN_DIR, in every user's manager (root's included),"
			echo "so install.sh needs root once to install the programs root-owned into $LIBEXEC and to link"
			echo "  $GEN_LINK -> $LIBEXEC/backup-generator"
			if ask "Use sudo for that?"; then
				ROOT=(sudo)
				return 0
			fi
			if ask "Install in rootless mode instead (units rendered into $UNIT_DIR when a stack file changes)?"; then
				ROOTLESS=1
				return 0
			fi
			die "nothing installed"
		fi
		die "root is needed to install the programs root-owned into $LIBEXEC and link the generator into $GEN_DIR: run with --yes to use sudo, or --rootless"
	fi
	if [ $YES = 1 ]; then
		echo "No root access (not root, no sudo): installing in rootless mode."
		ROOTLESS=1
		return 0
	fi
	if is_tty && ask "No root access (not root, no sudo), and systemd looks for user generators only in system directories. Install in rootless mode (units rendered into $UNIT_DIR when a stack file changes)?"; then
		ROOTLESS=1
		return 0
	fi
	die "no root access to install the generator root-owned and link it into $GEN_DIR: run with --rootless (see --help for the trade-off)"
}

# missing_dirs DIR: DIR and its parents that do not exist, outermost first.
missing_dirs() {
	local p=$1 out=()
	while [ ! -e "$p" ] && [ ! -L "$p" ]; do
		out=("$p" ${out[@]+"${out[@]}"})
		p=$(dirname -- "$p")
	done
	[ ${#out[@]} -eq 0 ] || printf '%s\n' "${out[@]}"
}

# install_root BUILD: as root, the programs into $LIBEXEC (root:root 0755), the record of what
# root wrote, and the generator link to $LIBEXEC/backup-generator.
install_root() {
	local build=$1 mark=$LIBEXEC/$MARK_NAME state had_mark=0 f
	if [ -e "$mark" ] || [ -L "$mark" ]; then
		[ -z "$(file_problem "$mark")" ] || die "refusing $mark: $(file_problem "$mark")"
		had_mark=1
	fi
	for f in backup-generator backup-stack; do
		if { [ -e "$LIBEXEC/$f" ] || [ -L "$LIBEXEC/$f" ]; } && ! { [ $had_mark = 1 ] && read_mark "$LIBEXEC" | grep -qxF "file $LIBEXEC/$f"; }; then
			die "$LIBEXEC/$f exists and was not installed by install.sh (not in $mark); move it away and run again"
		fi
	done
	state=$(gen_link_state "$LIBEXEC")
	if [ "$state" = foreign ]; then
		local t=""
		[ -L "$GEN_LINK" ] && t=" (-> $(readlink -- "$GEN_LINK"))"
		die "$GEN_LINK exists$t and is not install.sh's link to $LIBEXEC/backup-generator; if it is an install.sh install with another --libexec, uninstall that first (./install.sh --uninstall --libexec DIR), else remove it and run again"
	fi

	local lib_missing=() gen_missing=() d
	while IFS= read -r d; do lib_missing+=("$d"); done < <(missing_dirs "$LIBEXEC")
	while IFS= read -r d; do gen_missing+=("$d"); done < <(missing_dirs "$GEN_DIR")
	for d in ${lib_missing[@]+"${lib_missing[@]}"}; do
		as_root mkdir -m 0755 -- "$d"
		say "created   $d/ (as root)"
		CHANGED=1
	done
	# The record first: an interrupted run leaves nothing of root's unlisted.
	local tmp
	tmp=$(mktemp)
	{
		echo "# Written as root by backup-stack's install.sh. ./install.sh --uninstall (as root, or through sudo) removes what it lists, after checking each entry on the disk."
		{
			read_mark "$LIBEXEC"
			echo "file $LIBEXEC/backup-generator"
			echo "file $LIBEXEC/backup-stack"
			echo "link $GEN_LINK"
			for d in ${lib_missing[@]+"${lib_missing[@]}"} ${gen_missing[@]+"${gen_missing[@]}"}; do echo "rootdir $d"; done
		} | awk '!seen[$0]++'
	} >"$tmp"
	if root_put "$tmp" "$mark" 0644; then
		say "recorded  $mark (as root: what root wrote)"
		CHANGED=1
	fi
	rm -f -- "$tmp"
	for f in backup-generator backup-stack; do
		if root_put "$build/$f" "$LIBEXEC/$f" 0755; then
			say "installed $LIBEXEC/$f (root:root 0755)"
			CHANGED=1
		else
			say "unchanged $LIBEXEC/$f"
		fi
	done
	for d in ${gen_missing[@]+"${gen_missing[@]}"}; do
		as_root mkdir -m 0755 -- "$d"
		say "created   $d/ (as root)"
		CHANGED=1
	done
	case "$state" in
	ours) say "unchanged $GEN_LINK -> $LIBEXEC/backup-generator" ;;
	*)
		[ "$state" = old ] && say "replacing $GEN_LINK -> $(readlink -- "$GEN_LINK") (an older install's link to a file a user can replace)"
		as_root ln -sfn -- "$LIBEXEC/backup-generator" "$GEN_LINK"
		say "linked    $GEN_LINK -> $LIBEXEC/backup-generator (as root)"
		CHANGED=1
		;;
	esac
}

# root_put SRC DST MODE: as root, DST = SRC, root:root MODE, atomically; returns 1 when DST
# already was exactly that.
root_put() {
	local src=$1 dst=$2 mode=$3
	if [ -f "$dst" ] && [ ! -L "$dst" ] && cmp -s "$src" "$dst" && [ "$(stat -c '%u %g %a' -- "$dst")" = "0 0 ${mode#0}" ]; then
		return 1
	fi
	local tmp
	tmp=$(dirname -- "$dst")/.$(basename -- "$dst").new
	as_root install -o root -g root -m "$mode" -- "$src" "$tmp"
	as_root mv -fT -- "$tmp" "$dst"
	return 0
}

install_main() {
	if [ "$MY_UID" = 0 ] && [ "$(home_owner)" != 0 ]; then
		die "running as root with HOME=$HOME, which belongs to $(user_name "$(home_owner)"): install.sh writes your stacks directory and its manifest there, and root does not write into a home it does not own. Run ./install.sh as that user (it uses sudo for what needs root), or as root with root's own HOME (sudo -H)."
	fi
	check_prereqs
	load_manifest
	choose_mode
	local mode=root
	[ $ROOTLESS = 1 ] && mode=rootless
	local prev
	prev=$(entry_value mode)
	if [ -n "$prev" ] && [ "$prev" != "$mode" ]; then
		die "already installed in $prev mode; run ./install.sh --uninstall first to switch to $mode mode"
	fi
	if [ $mode = root ]; then
		# Refuse before anything is built or written.
		check_system_dir "--libexec" "$LIBEXEC" "${LIBEXEC_ARG:-$LIBEXEC}" "$DEFAULT_LIBEXEC"
		check_system_dir "the generator directory${BACKUP_STACK_GENERATOR_DIR:+ (BACKUP_STACK_GENERATOR_DIR)}" "$GEN_DIR" "$GEN_DIR_GIVEN" /usr/local/lib/systemd/user-generators
		prev=$(entry_value libexec)
		if [ -n "$prev" ] && [ "$prev" != "$LIBEXEC" ]; then
			die "already installed with --libexec $prev; run ./install.sh --uninstall first to move it to $LIBEXEC"
		fi
		local p=$PREFIX
		while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done
		[ -w "$p" ] || die "cannot write $p for --prefix $PREFIX: in root mode the programs go root-owned into $LIBEXEC (see --libexec); --prefix is only where your own symlinks to them go, made as you"
	fi

	echo "Building (go build, CGO_ENABLED=0, -trimpath) from $SRC:"
	BUILD=$(mktemp -d)
	trap 'rm -rf "$BUILD"' EXIT
	local build=$BUILD
	(cd "$SRC" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$build/" ./cmd/backup-generator ./cmd/backup-stack) ||
		die "go build failed"
	chmod 0755 "$build/backup-generator" "$build/backup-stack"
	say "built     backup-generator, backup-stack"

	REACHABLE=0
	manager_reachable && REACHABLE=1
	echo "Installing ($mode mode):"
	mkdir_tracked "$STATE_DIR"
	record "mode $mode"
	record "prefix $PREFIX"
	if [ $mode = root ]; then
		record "libexec $LIBEXEC"
		install_root "$build"
		mkdir_tracked "$PREFIX"
		put_link "$LIBEXEC/backup-generator" "$PREFIX/backup-generator"
		put_link "$LIBEXEC/backup-stack" "$PREFIX/backup-stack"
	else
		mkdir_tracked "$PREFIX"
		put_file "$build/backup-generator" "$PREFIX/backup-generator" 0755
		put_file "$build/backup-stack" "$PREFIX/backup-stack" 0755
	fi

	# The stacks directory and the template (before any render).
	mkdir_tracked "$STACKS_DIR"
	local tpl=$STACKS_DIR/_template.hcl e recorded=""
	for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do
		case "$e" in "template "*" $tpl") recorded=$e ;; esac
	done
	if [ ! -e "$tpl" ]; then
		[ -n "$recorded" ] && drop_entry "$recorded"
		record "template $(sha "$SRC/stacks/_template.hcl") $tpl"
		cp "$SRC/stacks/_template.hcl" "$tpl"
		chmod 0644 "$tpl"
		say "installed $tpl"
		CHANGED=1
	elif [ -n "$recorded" ] && [ "$(sha "$tpl")" = "$(echo "$recorded" | cut -d' ' -f2)" ] && ! cmp -s "$tpl" "$SRC/stacks/_template.hcl"; then
		# Ours and unchanged by you, but a newer one ships: update it.
		drop_entry "$recorded"
		record "template $(sha "$SRC/stacks/_template.hcl") $tpl"
		cp "$SRC/stacks/_template.hcl" "$tpl"
		say "updated   $tpl"
		CHANGED=1
	else
		say "unchanged $tpl"
	fi

	if [ $mode = rootless ]; then
		install_rootless
	fi

	if [ $REACHABLE = 1 ]; then
		user_systemctl daemon-reload
		say "ran       systemctl --user daemon-reload"
		if [ $mode = rootless ]; then
			user_systemctl start "$RENDER.path"
			say "started   $RENDER.path"
		fi
	else
		say "no user manager reachable (XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-unset}): run \`systemctl --user daemon-reload\` in your session"
	fi

	echo
	if [ $CHANGED = 0 ]; then
		echo "Everything was already installed; nothing changed."
	else
		if [ $mode = root ]; then
			echo "Installed in root mode; what was written as you is listed in $MANIFEST, what was written as root in $LIBEXEC/$MARK_NAME (./install.sh --uninstall removes both)."
		else
			echo "Installed in rootless mode; everything written is listed in $MANIFEST (./install.sh --uninstall removes it)."
		fi
	fi
	case ":$PATH:" in
	*":$PREFIX:"*) ;;
	*) echo "Note: $PREFIX is not in your PATH; add it, e.g. export PATH=\"$PREFIX:\$PATH\"" ;;
	esac
	if [ $mode = root ]; then
		echo "Note: systemd runs $LIBEXEC/backup-generator (root-owned) in every user's manager on this machine, root's included;"
		echo "      for a user without ~/.config/backup-stack it writes nothing and logs nothing."
	else
		echo "Note (rootless): units are re-rendered when a stack file or config.hcl changes (by $RENDER.path) and at login;"
		echo "      a plain daemon-reload does not re-render: if in doubt, systemctl --user start $RENDER.service"
	fi
	echo
	echo "Next:"
	echo "  cp $STACKS_DIR/_template.hcl $STACKS_DIR/<stack>.hcl   # and edit it"
	echo "  backup-stack validate"
	if [ $mode = root ]; then
		echo "  backup-stack reload              # daemon-reload, then start/re-arm the stacks' timers"
	fi
	echo "  systemctl --user start backup@<stack>"
}

# fill_template NAME: templates/NAME with the rootless mode's placeholders filled in.
fill_template() {
	local t
	t=$(cat "$SRC/templates/$1") || die "missing template $SRC/templates/$1"
	t=${t//@HELPER@/$(exec_word "$PREFIX/backup-stack")}
	t=${t//@CONFIG_DIR_WORD@/$(exec_word "$CFG_DIR")}
	t=${t//@UNIT_DIR_WORD@/$(exec_word "$UNIT_DIR")}
	t=${t//@STACKS_DIR@/$(unit_path "$STACKS_DIR")}
	t=${t//@CONFIG_FILE@/$(unit_path "$CFG_DIR/config.hcl")}
	t=${t//@UNIT_DIR@/$(unit_path "$UNIT_DIR")}
	printf '%s\n' "$t"
}

install_rootless() {
	local t
	for t in "$RENDER.path" "$RENDER.service"; do
		[ -f "$SRC/templates/$t" ] || die "missing $SRC/templates/$t (run install.sh from the source tree)"
	done
	mkdir_tracked "$UNIT_DIR"
	put_content "$UNIT_DIR/$RENDER.path" 0644 < <(fill_template "$RENDER.path")
	put_content "$UNIT_DIR/$RENDER.service" 0644 < <(fill_template "$RENDER.service")
	mkdir_tracked "$UNIT_DIR/default.target.wants"
	put_link "../$RENDER.path" "$UNIT_DIR/default.target.wants/$RENDER.path"
	put_link "../$RENDER.service" "$UNIT_DIR/default.target.wants/$RENDER.service"
	record "units $UNIT_DIR"
	local out reload=(--no-reload)
	[ $REACHABLE = 1 ] && reload=()
	out=$("$PREFIX/backup-stack" --config "$CFG_DIR" render ${reload[@]+"${reload[@]}"} "$UNIT_DIR" 2>&1) || die "rendering the units failed: $out"
	case "$out" in
	*" 0 written, "*" 0 removed"*) say "unchanged units rendered in $UNIT_DIR" ;;
	*)
		say "rendered  units into $UNIT_DIR (${out#*: })"
		CHANGED=1
		;;
	esac
}

if [ $UNINSTALL = 1 ]; then
	uninstall
else
	install_main
fi
