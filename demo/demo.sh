#!/usr/bin/env bash
# demo/demo.sh (`make demo`): backup-stack end to end on this machine, nothing else needed.
#
# As root it starts a sandboxed `systemd --user` in a private mount namespace (tmpfs on
# /run/systemd, the generator bind-mounted onto /usr/local/lib/systemd/user-generators, its
# own HOME and XDG dirs below a temp dir), installs backup-stack there with ./install.sh,
# creates three podman-compose stacks (alpha, beta, gamma: two busybox containers each, from
# an image imported offline), starts the Duplicati simulator, runs
#
#     systemctl --user start backup@alpha backup@beta backup@gamma
#
# and prints a timeline: when each stack was stopped, its job ran, it was restored.
# Exits non-zero if anything went wrong. Cleans up after itself (trap), even on failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACKS=(alpha beta gamma)
declare -A JOB_ID=([alpha]=1 [beta]=2 [gamma]=3)
declare -A JOB_TIME=([alpha]=3s [beta]=2s [gamma]=4s)

T0=$(date +%s.%N)
log() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
fail() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root: the sandboxed systemd --user needs a private mount namespace (and root podman)"
missing=()
for tool in unshare mount setsid systemctl go curl bc tar; do
	command -v $tool >/dev/null || missing+=("$tool")
done
[ -x /lib/systemd/systemd ] || missing+=("/lib/systemd/systemd")
[ ${#missing[@]} -eq 0 ] || fail "missing: ${missing[*]}"

# Real containers when podman, podman-compose, runc and a static busybox are there;
# otherwise each stack is a `sleep infinity` service.
PODMAN=1
BUSYBOX=""
for p in /bin/busybox /usr/bin/busybox; do
	if [ -x "$p" ] && ! file -L "$p" 2>/dev/null | grep -q dynamic; then
		if ! LC_ALL=C readelf -l "$p" 2>/dev/null | grep -q INTERP; then BUSYBOX=$p && break; fi
	fi
done
for tool in podman podman-compose runc; do command -v $tool >/dev/null || PODMAN=0; done
[ -n "$BUSYBOX" ] || PODMAN=0

ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
T=$(mktemp -d /tmp/backup-stack-demo.XXXXXX)
LABEL=backup-stack-demo
IMAGE=localhost/backup-stack-demo-mini:$ID
HOME_D=$T/home
CONFIG=$HOME_D/.config
RUN=$T/run
BIN=$T/bin
# install.sh puts the programs root-owned into a libexec directory and the generator link
# into a generator directory, both root-owned all the way up and readable by everyone
# (every user manager runs the generator): under /run, not the private $T.
SYS=""
MANAGER_PID=""
SIM_PID=""
IMPORTED=0
export CONTAINERS_CONF=$T/containers.conf

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ -n "$MANAGER_PID" ] && kill -0 "$MANAGER_PID" 2>/dev/null; then
		kill -TERM "$MANAGER_PID"
		for _ in $(seq 1 300); do kill -0 "$MANAGER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- -"$MANAGER_PID" 2>/dev/null
	fi
	if [ -n "$SIM_PID" ]; then
		kill -TERM "$SIM_PID" 2>/dev/null
		wait "$SIM_PID" 2>/dev/null
	fi
	if [ $PODMAN = 1 ]; then
		local ids nets
		ids=$(podman ps -aq --filter "label=$LABEL=$ID" 2>/dev/null)
		[ -z "$ids" ] || podman rm -f -t 0 $ids >/dev/null 2>&1
		nets=$(podman network ls -q --filter "label=$LABEL=$ID" 2>/dev/null)
		[ -z "$nets" ] || podman network rm -f $nets >/dev/null 2>&1
		[ $IMPORTED = 0 ] || podman rmi -f "$IMAGE" >/dev/null 2>&1
	fi
	if [ $rc != 0 ]; then
		for f in install.log manager.log units.log sim.log; do
			[ -s "$T/$f" ] && { echo "---- $f (last lines) ----"; tail -n 40 "$T/$f"; }
		done
	fi
	rm -rf "$T"
	[ -z "$SYS" ] || rm -rf "$SYS"
	[ $rc = 0 ] || echo "demo: cleaned up after the failure (manager, simulator, containers, networks, image, $T)" >&2
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# systemctl --user against the sandboxed manager.
sc() { env -i PATH="$PATH" XDG_RUNTIME_DIR="$RUN" LANG=C.UTF-8 SYSTEMD_COLORS=0 systemctl --user --no-pager "$@"; }
indent() { sed 's/^/           /'; }
# The helper as the user types it (TERM and COLUMNS passed on: `list` fits the terminal, in colour on one).
bs() {
	env -i PATH="$BIN:$PATH" HOME="$HOME_D" XDG_CONFIG_HOME="$CONFIG" XDG_RUNTIME_DIR="$RUN" LANG=C.UTF-8 \
		${TERM:+TERM="$TERM"} ${COLUMNS:+COLUMNS="$COLUMNS"} ${NO_COLOR:+NO_COLOR="$NO_COLOR"} "$BIN/backup-stack" "$@"
}

log "demo $ID in $T ($([ $PODMAN = 1 ] && echo "podman-compose stacks" || echo "no podman: sleep-infinity stacks"))"
SYS=$(mktemp -d /run/backup-stack-demo-sys.XXXXXX)
chmod 0755 "$SYS"
mkdir -p "$HOME_D" "$CONFIG/go/telemetry" "$RUN" "$BIN" "$SYS/generators" "$CONFIG/systemd/user"
chmod 0700 "$RUN"
echo off >"$CONFIG/go/telemetry/mode"
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
stop_timeout = 2
EOF

# ---- build and install ------------------------------------------------------
GOENV_VARS=()
for k in GOCACHE GOMODCACHE GOPATH GOFLAGS GOPROXY; do
	v=$(go env $k)
	[ -z "$v" ] || GOENV_VARS+=("$k=$v")
done
if ! env -i PATH="$PATH" HOME="$HOME_D" USER=root LANG=C.UTF-8 XDG_CONFIG_HOME="$CONFIG" XDG_RUNTIME_DIR="$RUN" \
	BACKUP_STACK_GENERATOR_DIR="$SYS/generators" GOTOOLCHAIN=local "${GOENV_VARS[@]}" \
	bash "$REPO/install.sh" --prefix "$BIN" --libexec "$SYS/libexec" --yes >"$T/install.log" 2>&1; then
	fail "install.sh failed"
fi
log "installed with ./install.sh --prefix $BIN --libexec $SYS/libexec (root-owned programs; the generator linked into the sandbox's user-generators dir)"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$BIN/" ./cmd/duplicati-sim ./demo/timeline) || fail "go build"

# ---- the Duplicati simulator ---------------------------------------------------
# The server's password, in a private file the helper reads (Duplicati refuses an empty one).
DEMO_PW="demo-$RANDOM$RANDOM"
(umask 077 && printf '%s\n' "$DEMO_PW" >"$CONFIG/backup-stack/duplicati-password")
SIM_ARGS=(serve --listen 127.0.0.1:0 --password "$DEMO_PW")
for s in "${STACKS[@]}"; do SIM_ARGS+=(--backup "${JOB_ID[$s]}=$s:${JOB_TIME[$s]}:Success"); done
"$BIN/duplicati-sim" "${SIM_ARGS[@]}" >"$T/sim.out" 2>"$T/sim.log" &
SIM_PID=$!
for _ in $(seq 1 100); do
	ADDR=$(grep -Eo '127\.0\.0\.1:[0-9]+' "$T/sim.out" 2>/dev/null || true)
	[ -z "$ADDR" ] || break
	sleep 0.1
done
[ -n "$ADDR" ] || fail "duplicati-sim printed no address"
SIM=http://$ADDR
log "duplicati-sim serve on $SIM: $(for s in "${STACKS[@]}"; do printf '%s=%s (%s) ' "${JOB_ID[$s]}" "$s" "${JOB_TIME[$s]}"; done)"

# ---- configuration and stacks ----------------------------------------------------
cat >"$CONFIG/backup-stack/config.hcl" <<EOF
duplicati {
  url           = "$SIM"
  password_file = "$CONFIG/backup-stack/duplicati-password"
  wait_timeout  = "2m"
  poll_interval = "200ms"
}
log_dir = "$T/logs"
EOF
# Unit output of backup@ and backup-hold@ goes to units.log (there is no journald here).
for u in backup@.service backup-hold@.service; do
	mkdir -p "$CONFIG/systemd/user/$u.d"
	printf '[Service]\nStandardOutput=append:%s\nStandardError=append:%s\n' "$T/units.log" "$T/units.log" >"$CONFIG/systemd/user/$u.d/90-demo-log.conf"
done

if [ $PODMAN = 1 ]; then
	# A busybox root filesystem, imported offline.
	R=$T/rootfs
	mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,proc,sys,dev,run,www}
	chmod 1777 "$R/tmp" "$R/var/tmp"
	cp "$BUSYBOX" "$R/bin/busybox"
	for a in $("$BUSYBOX" --list-full); do
		[ "$a" = bin/busybox ] || [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$R/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
	echo "backup-stack demo" >"$R/www/index.html"
	tar -C "$R" -cf "$T/mini.tar" .
	podman import --change 'CMD ["/bin/sh"]' --change "LABEL $LABEL=$ID" "$T/mini.tar" "$IMAGE" >/dev/null 2>"$T/import.log" || fail "podman import: $(cat "$T/import.log")"
	IMPORTED=1
	log "imported $IMAGE (busybox, offline)"
	# /run/netns shared, so containers started inside the manager's mount namespace are visible here.
	mkdir -p /run/netns
	mountpoint -q /run/netns || mount --bind /run/netns /run/netns
	mount --make-shared /run/netns
fi

COMPOSE=$(command -v podman-compose || true)
for s in "${STACKS[@]}"; do
	project=bsdemo-$ID-$s
	dir=$T/compose/$s
	mkdir -p "$dir"
	if [ $PODMAN = 1 ]; then
		cat >"$dir/compose.yaml" <<EOF
version: "3"
services:
  app:
    image: $IMAGE
    init: true
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    labels:
      - $LABEL=$ID
  db:
    image: $IMAGE
    init: true
    command: ["sleep", "86400"]
    labels:
      - $LABEL=$ID
networks:
  default:
    labels:
      - $LABEL=$ID
EOF
		cat >"$CONFIG/systemd/user/$s-stack.service" <<EOF
[Unit]
Description=demo stack $s (podman-compose project $project)

[Service]
Type=oneshot
RemainAfterExit=yes
WorkingDirectory=$dir
ExecStart=$COMPOSE -p $project up -d
ExecStop=$COMPOSE -p $project stop -t 2
StandardOutput=append:$T/stack-$s.log
StandardError=append:$T/stack-$s.log
TimeoutStartSec=120
TimeoutStopSec=60
EOF
	else
		cat >"$CONFIG/systemd/user/$s-stack.service" <<EOF
[Unit]
Description=demo stack $s (no podman: a sleep)

[Service]
ExecStart=/bin/sleep infinity
EOF
	fi
	cat >"$CONFIG/backup-stack/stacks/$s.hcl" <<EOF
stack "$s" {
  project_label = "$project"
  jobs          = ["$s"]
  schedule      = "*-*-* 03:30:00"
  stop_timeout  = "1m"
  start_timeout = "2m"
}
EOF
done
log "wrote config.hcl (REST route to the simulator) and stacks/{$(
	IFS=,
	echo "${STACKS[*]}"
)}.hcl"

# ---- the sandboxed user manager -----------------------------------------------------
MANAGER_SCRIPT='set -e
mount --make-private /
mkdir -p /run/systemd
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system
mkdir -p /usr/local/lib/systemd/user-generators
mount --bind "$1" /usr/local/lib/systemd/user-generators
exec /lib/systemd/systemd --user --log-target=console'
# A background job of a non-interactive shell is no process group leader, so setsid does
# not fork: env, setsid, unshare, bash and systemd are one process, and this is its PID.
env -i PATH="$BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$HOME_D" USER=root LOGNAME=root \
	LANG=C.UTF-8 XDG_CONFIG_HOME="$CONFIG" XDG_RUNTIME_DIR="$RUN" CONTAINERS_CONF="$CONTAINERS_CONF" \
	setsid unshare --mount --propagation unchanged bash -c "$MANAGER_SCRIPT" demo-manager "$SYS/generators" \
	>"$T/manager.log" 2>&1 </dev/null &
MANAGER_PID=$!
for i in $(seq 1 300); do
	state=$(sc show -p SystemState --value 2>/dev/null || true)
	if [ "$state" = running ] || [ "$state" = degraded ]; then break; fi
	kill -0 $MANAGER_PID 2>/dev/null || fail "systemd --user exited during start"
	[ "$i" -lt 300 ] || fail "systemd --user not running after 30s (state $state)"
	sleep 0.1
done
log "systemd --user running (pid $MANAGER_PID) in a private mount namespace; the generator ran at its start"
sc cat backup@alpha.service >/dev/null || fail "backup@alpha.service was not generated"
sc list-timers 'backup@*' | indent

sc start "${STACKS[@]/%/-stack.service}" || fail "starting the stacks"
if [ $PODMAN = 1 ]; then
	for s in "${STACKS[@]}"; do
		n=$(podman ps -q --filter "label=io.podman.compose.project=bsdemo-$ID-$s" | wc -l)
		[ "$n" = 2 ] || fail "stack $s: $n containers running, want 2"
	done
	log "stacks up: $(podman ps --filter "label=$LABEL=$ID" --format '{{.Names}}' | sort | tr '\n' ' ')"
else
	log "stacks up: ${STACKS[*]/%/-stack.service}"
fi

# ---- the backup ------------------------------------------------------------------
log "\$ systemctl --user start ${STACKS[*]/#/backup@}"
start=$(date +%s.%N)
# In the background and waited for, so that a signal reaches the trap at once.
sc start "${STACKS[@]/#/backup@}" &
if ! wait $!; then
	for s in "${STACKS[@]}"; do sc status "backup@$s" 2>&1 | tail -n 5 | indent; done
	fail "a backup failed"
fi
log "done in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")s"

for s in "${STACKS[@]}"; do
	[ "$(sc show -p ActiveState --value "$s-stack.service")" = active ] || fail "$s-stack.service is not active after its backup"
	if [ $PODMAN = 1 ]; then
		n=$(podman ps -q --filter "label=io.podman.compose.project=bsdemo-$ID-$s" | wc -l)
		[ "$n" = 2 ] || fail "stack $s: $n containers running after the backup, want 2"
	fi
done
log "every stack is running again$([ $PODMAN = 1 ] && echo ", 2 containers each")"

# ---- the same in the foreground, as the seed's bin/backup did -----------------------------
log "\$ backup-stack backup alpha --follow"
bs backup alpha --follow </dev/null || fail "backup-stack backup alpha --follow failed"
log "\$ backup-stack list"
bs list || fail "backup-stack list failed"
echo
env -i PATH="$PATH" XDG_RUNTIME_DIR="$RUN" LANG=C.UTF-8 "$BIN/timeline" --sim "$SIM" \
	$(for s in "${STACKS[@]}"; do printf -- '--stack %s=%s ' "$s" "${JOB_ID[$s]}"; done) || fail "the timeline says something went wrong"
echo
log "demo passed; cleaning up"
