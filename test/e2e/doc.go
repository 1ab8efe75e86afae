// Package e2e holds the end-to-end tests of backup-stack: the real generator output under a
// real `systemd --user` manager (in a private mount namespace) with real podman containers.
//
// The tests need root, unshare, /lib/systemd/systemd, systemctl, podman, podman-compose, runc
// and a static busybox. Without them every test skips with one line saying what is missing,
// unless BACKUP_STACK_E2E=require is set (CI), in which case a missing prerequisite fails.
//
// Run: go test -count=1 -v -timeout 30m ./test/e2e/...  (or .ci/run on a fresh machine)
package e2e
