#!/usr/bin/env bash
# Installs, as root and only when missing, what the end-to-end tests and the demo need:
# podman, podman-compose, runc, a static busybox (the offline base image) and friends.
# `make test`, `make demo` and .ci/run call it. Writes nothing into /etc: the suite and the
# demo use their own containers.conf through CONTAINERS_CONF.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test-deps.sh: not root, installing nothing (the end-to-end tests will skip and say why)" >&2
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# package -> a file it provides; install only when something is missing.
need=()
check() { # check PACKAGE PATH
	if [ ! -e "$2" ]; then need+=("$1"); fi
}
check podman /usr/bin/podman
check podman-compose /usr/bin/podman-compose
check runc /usr/sbin/runc
check busybox-static /bin/busybox
check uidmap /usr/bin/newuidmap                # rootless podman: the test users' subuid/subgid maps
check slirp4netns /usr/bin/slirp4netns        # rootless podman: the bridge network of the test users' stacks
check catatonit /usr/libexec/podman/catatonit # --init / compose `init: true`
check netavark /usr/lib/podman/netavark        # compose's <project>_default network
check iptables /usr/sbin/iptables               # used by netavark
check systemd /lib/systemd/systemd              # the tests start `systemd --user` themselves
check util-linux /usr/bin/unshare
check make /usr/bin/make
check zsh /usr/bin/zsh                          # the completion tests check the zsh script with zsh -n
check fish /usr/bin/fish                        # ... and the fish script with fish --no-execute
check strace /usr/bin/strace                  # the generator sandbox test watches its system calls
check sudo /usr/bin/sudo                      # the install test runs install.sh as a non-root user with sudo
check btrfs-progs /usr/bin/btrfs              # internal/snapshot tests: btrfs file systems on loop devices
check xfsprogs /usr/sbin/mkfs.xfs             # ... and XFS with reflink=1
if [ -e /bin/busybox ] && ! dpkg -s busybox-static >/dev/null 2>&1; then
	need+=(busybox-static) # a dynamic busybox cannot be the base image's only binary
fi
if [ "${#need[@]}" -gt 0 ]; then
	echo "scripts/test-deps.sh: installing ${need[*]}"
	apt-get update
	# With recommends (as a person would install podman): catatonit, fuse-overlayfs ...
	apt-get install -y -o Dpkg::Options::=--force-confold \
		podman podman-compose runc busybox-static uidmap "${need[@]}"
fi

