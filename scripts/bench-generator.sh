#!/bin/sh
# Runs backup-generator and podman's quadlet side by side (issue 16): builds
# backup-generator from this checkout, then runs test/bench/generator.
#
#   scripts/bench-generator.sh [/path/to/quadlet] [-n 1,100,1000] [-pairs 21] [-out DIR]
#
# quadlet: the first argument when it is not a flag, else $QUADLET, else
# /tmp/quadlet, else quadlet on PATH or in /usr/libexec/podman.
set -eu

cd "$(dirname "$0")/.."

quadlet=""
case "${1:-}" in
"" | -*) ;;
*)
	quadlet=$1
	shift
	;;
esac
if [ -z "$quadlet" ]; then
	for q in "${QUADLET:-}" /tmp/quadlet "$(command -v quadlet 2>/dev/null || true)" /usr/libexec/podman/quadlet; do
		if [ -n "$q" ] && [ -x "$q" ]; then
			quadlet=$q
			break
		fi
	done
fi
if [ -z "$quadlet" ] || [ ! -x "$quadlet" ]; then
	echo "bench-generator: no quadlet binary${quadlet:+ at $quadlet}. Build one from podman's source:" >&2
	echo "  git clone https://github.com/containers/podman && cd podman && CGO_ENABLED=0 go build -mod=vendor -o /tmp/quadlet ./cmd/quadlet" >&2
	echo "then run: $0 /tmp/quadlet" >&2
	exit 2
fi

[ -x /usr/bin/time ] || echo "bench-generator: no /usr/bin/time, no peak RSS (apt-get install -y time)" >&2
command -v valgrind >/dev/null 2>&1 || echo "bench-generator: no valgrind, no instruction counts (apt-get install -y valgrind)" >&2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -trimpath -o "$tmp/backup-generator" ./cmd/backup-generator
go run ./test/bench/generator -quadlet "$quadlet" -gen "$tmp/backup-generator" "$@"
