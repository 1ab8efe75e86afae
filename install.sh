#!/usr/bin/env bash
# install.sh: build and install backup-stack for the current user.
# Run ./install.sh --help for the options. Idempotent: a second run changes nothing.
# Everything it writes is listed in a manifest, and --uninstall removes exactly that.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: ./install.sh [--prefix DIR] [--rootless] [--yes]
       ./install.sh --uninstall [--yes]

Builds backup-generator and backup-stack (go build, CGO_ENABLED=0, -trimpath)
into DIR (default ~/.local/bin) and makes systemd run the generator:

  default     a symlink /usr/local/lib/systemd/user-generators/backup-generator
              -> DIR/backup-generator, made as root: directly when run as root,
              else through sudo (asked first on a terminal, unless --yes).
              systemd looks for user generators only in /run, /etc,
              /usr/local/lib and /usr/lib .../systemd/user-generators, never
              in your home. The generator then runs on every daemon-reload.
  --rootless  no root at all: the units are rendered into
              ~/.config/systemd/user/ (a manifest there lets later renders
              remove the units of deleted stacks; files not in it are never
              touched) by `backup-stack render`, run by
              backup-generator-render.service, which
              backup-generator-render.path starts when a file in
              ~/.config/backup-stack/stacks/ or config.hcl changes (and which
              also runs when the user manager starts).
              Trade-off: rendering happens on a file change, not on
              daemon-reload: a plain `systemctl --user daemon-reload` does not
              pick up an edit made while the path unit was not running; run
              `systemctl --user start backup-generator-render.service` then.
  When neither root nor sudo is available, install.sh offers --rootless.

It also creates ~/.config/backup-stack/stacks/ with _template.hcl (if absent),
runs `systemctl --user daemon-reload` when your user manager is reachable,
checks the prerequisites (go, systemd >= 250, podman, podman-compose, lingering)
and prints what to type next.

  --prefix DIR  where the binaries go (default ~/.local/bin)
  --rootless    rootless mode (see above)
  --yes         do not ask: use sudo when needed, or rootless mode without root
  --uninstall   remove everything install.sh installed, as listed in
                ~/.local/share/backup-stack/install-manifest; your stack files,
                config.hcl and a non-empty stacks directory stay
  --help        this text

Environment: BACKUP_STACK_GENERATOR_DIR overrides the generator directory
(for tests); XDG_CONFIG_HOME and XDG_DATA_HOME are honoured.
EOF
}

die() {
	echo "install.sh: $*" >&2
	exit 1
}
say() { echo "  $*"; }

# ---- options --------------------------------------------------------------

PREFIX=""
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
GEN_DIR=${BACKUP_STACK_GENERATOR_DIR:-/usr/local/lib/systemd/user-generators}
RENDER=backup-generator-render
ME=${USER:-$(id -un)}

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
# One entry per line, in the order things were created: KIND PATH, with KIND
#   mode       root | rootless (no path)
#   file       a file we wrote          link      a symlink we made
#   dir        a directory we created (removed only when empty)
#   rootfile   a symlink made as root   rootdir   a directory made as root
#   template   SHA256 PATH: a copy of _template.hcl, removed only if unchanged
#   units      a unit directory written by `backup-stack render`

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
		echo "# Written by backup-stack's install.sh: what it installed. ./install.sh --uninstall removes it."
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
# drop KIND PATH... removes entries (used when replacing a recorded template).
drop_entry() {
	local keep=() e
	for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do
		[ "$e" = "$1" ] || keep+=("$e")
	done
	ENTRIES=(${keep[@]+"${keep[@]}"})
	save_manifest
}
entry_mode() {
	local e
	for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do
		case "$e" in "mode "*) echo "${e#mode }" && return 0 ;; esac
	done
	return 0
}

# ---- helpers --------------------------------------------------------------

ROOT=() # command prefix for root actions: () or (sudo)
CHANGED=0

# mkdir_tracked DIR [root]: create DIR and its missing parents, recording each one created.
mkdir_tracked() {
	local d=$1 kind=dir missing=() p
	[ "${2:-}" = root ] && kind=rootdir
	p=$d
	while [ ! -e "$p" ] && [ ! -L "$p" ]; do
		missing=("$p" ${missing[@]+"${missing[@]}"})
		p=$(dirname "$p")
	done
	[ -d "$d" ] || [ ${#missing[@]} -gt 0 ] || die "$d exists and is not a directory"
	for p in ${missing[@]+"${missing[@]}"}; do
		if [ $kind = rootdir ]; then
			"${ROOT[@]}" mkdir -m 0755 "$p"
		else
			mkdir -m 0755 "$p"
		fi
	done
	for p in ${missing[@]+"${missing[@]}"}; do
		record "$kind $p"
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

# put_link TARGET LINK [root]
put_link() {
	local target=$1 link=$2 kind=link
	[ "${3:-}" = root ] && kind=rootfile
	if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
		record "$kind $link"
		say "unchanged $link -> $target"
		return 0
	fi
	if [ -e "$link" ] || [ -L "$link" ]; then
		has_entry "$kind $link" || die "$link exists and was not installed by install.sh; remove it and run again"
	fi
	record "$kind $link"
	if [ $kind = rootfile ]; then
		"${ROOT[@]}" ln -sfn "$target" "$link"
	else
		ln -sfn "$target" "$link"
	fi
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

# ---- uninstall ------------------------------------------------------------

uninstall() {
	load_manifest
	if [ ${#ENTRIES[@]} -eq 0 ]; then
		echo "Nothing to uninstall: no manifest at $MANIFEST."
		return 0
	fi
	echo "Uninstalling what $MANIFEST lists:"
	local reachable=0 e kind path helper="" pending=() need_root=0
	manager_reachable && reachable=1
	for e in "${ENTRIES[@]}"; do
		case "$e" in
		"file "*/backup-stack) helper=${e#file } ;;
		"rootfile "* | "rootdir "*) need_root=1 ;;
		esac
	done
	if [ $need_root = 1 ] && [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null && { [ $YES = 1 ] || { is_tty && ask "Removing the generator link needs root. Use sudo?"; }; }; then
			ROOT=(sudo)
		else
			need_root=2
		fi
	fi
	# 1. Units rendered by the rootless mode (stop the path unit first).
	for e in "${ENTRIES[@]}"; do
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
			# Fallback without the binary: the manifest's own format is "f|l|d PATH".
			local k p dirs=()
			while read -r k p; do
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
	local stamp
	for stamp in "$DATA_HOME"/systemd/timers/stamp-backup@*.timer; do
		[ -e "$stamp" ] || continue
		rm -f -- "$stamp" && say "removed   $stamp (systemd's last-run stamp of a backup timer)"
	done
	# 2. Files and links, newest first.
	local i
	for ((i = ${#ENTRIES[@]} - 1; i >= 0; i--)); do
		e=${ENTRIES[$i]}
		kind=${e%% *}
		path=${e#* }
		case "$kind" in
		file)
			if [ -f "$path" ] || [ -L "$path" ]; then rm -f -- "$path" && say "removed   $path"; fi
			;;
		link)
			if [ -L "$path" ]; then rm -f -- "$path" && say "removed   $path"; fi
			;;
		template)
			local want=${path%% *}
			path=${path#* }
			if [ -f "$path" ]; then
				if [ "$(sha "$path")" = "$want" ]; then
					rm -f -- "$path" && say "removed   $path"
				else
					say "kept      $path (you changed it)"
				fi
			fi
			;;
		rootfile)
			if [ -L "$path" ]; then
				if [ $need_root = 2 ]; then
					say "NOT removed $path: needs root; run as root: rm $path"
					pending+=("$e")
				else
					"${ROOT[@]}" rm -f -- "$path" && say "removed   $path"
				fi
			fi
			;;
		esac
	done
	# 3. The manifest, then the directories we created (children before parents).
	local keep=(${pending[@]+"${pending[@]}"})
	for ((i = ${#ENTRIES[@]} - 1; i >= 0; i--)); do
		e=${ENTRIES[$i]}
		case "$e" in "dir "* | "rootdir "*) keep+=("$e") ;; esac
	done
	if [ ${#pending[@]} -eq 0 ]; then
		rm -f -- "$MANIFEST"
	fi
	for e in ${keep[@]+"${keep[@]}"}; do
		kind=${e%% *}
		path=${e#* }
		[ -d "$path" ] || continue
		case "$kind" in
		dir)
			if rmdir -- "$path" 2>/dev/null; then
				say "removed   $path/"
			elif [ "$path" = "$STACKS_DIR" ]; then
				say "kept      $path/ (holds your stack files)"
			else
				say "kept      $path/ (not empty)"
			fi
			;;
		rootdir)
			if [ $need_root = 2 ]; then
				pending+=("$e")
			elif "${ROOT[@]}" rmdir -- "$path" 2>/dev/null; then
				say "removed   $path/"
			fi
			;;
		esac
	done
	if [ ${#pending[@]} -gt 0 ]; then
		ENTRIES=("${pending[@]}")
		save_manifest
		echo "Some entries need root; they stay listed in $MANIFEST. Run ./install.sh --uninstall as root (or with sudo available) to finish."
	fi
	if [ $reachable = 1 ]; then
		user_systemctl daemon-reload && say "ran       systemctl --user daemon-reload"
	fi
	echo "Kept: your stack files in $STACKS_DIR and $CFG_DIR/config.hcl (if any)."
	[ ${#pending[@]} -eq 0 ]
}

# ---- install --------------------------------------------------------------

choose_mode() {
	if [ $ROOTLESS = 1 ]; then
		return 0
	fi
	# Root is needed only when the generator directory (or the parent it would be created in) is not ours to write.
	local p=$GEN_DIR
	while [ ! -e "$p" ]; do p=$(dirname "$p"); done
	if [ -w "$p" ]; then
		ROOT=()
		return 0
	fi
	if command -v sudo >/dev/null; then
		if [ $YES = 1 ]; then
			ROOT=(sudo)
			return 0
		fi
		if is_tty; then
			echo "systemd runs user generators only from $GEN_DIR (and /run, /etc, /usr/lib); install.sh needs root once to put a symlink there:"
			echo "  $GEN_DIR/backup-generator -> $PREFIX/backup-generator"
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
		die "root is needed to link the generator into $GEN_DIR: run with --yes to use sudo, or --rootless"
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
	die "no root access to link the generator into $GEN_DIR: run with --rootless (see --help for the trade-off)"
}

install_main() {
	check_prereqs
	load_manifest
	choose_mode
	local mode=root
	[ $ROOTLESS = 1 ] && mode=rootless
	local prev
	prev=$(entry_mode)
	if [ -n "$prev" ] && [ "$prev" != "$mode" ]; then
		die "already installed in $prev mode; run ./install.sh --uninstall first to switch to $mode mode"
	fi

	echo "Building (go build, CGO_ENABLED=0, -trimpath) from $SRC:"
	BUILD=$(mktemp -d)
	trap 'rm -rf "$BUILD"' EXIT
	local build=$BUILD
	(cd "$SRC" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$build/" ./cmd/backup-generator ./cmd/backup-stack) ||
		die "go build failed"
	say "built     backup-generator, backup-stack"

	REACHABLE=0
	manager_reachable && REACHABLE=1
	echo "Installing ($mode mode):"
	mkdir_tracked "$STATE_DIR"
	record "mode $mode"
	mkdir_tracked "$PREFIX"
	put_file "$build/backup-generator" "$PREFIX/backup-generator" 0755
	put_file "$build/backup-stack" "$PREFIX/backup-stack" 0755

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

	if [ $mode = root ]; then
		mkdir_tracked "$GEN_DIR" root
		put_link "$PREFIX/backup-generator" "$GEN_DIR/backup-generator" root
	else
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
		echo "Installed in $mode mode; everything written is listed in $MANIFEST (./install.sh --uninstall removes it)."
	fi
	case ":$PATH:" in
	*":$PREFIX:"*) ;;
	*) echo "Note: $PREFIX is not in your PATH; add it, e.g. export PATH=\"$PREFIX:\$PATH\"" ;;
	esac
	if [ $mode = root ]; then
		echo "Note: systemd runs the generator for every user's manager on this machine; without stack files it writes nothing."
		case "$PREFIX" in "$HOME"/*) echo "      Other users' managers may log that they cannot run it from your home; --prefix /usr/local/bin avoids that." ;; esac
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
