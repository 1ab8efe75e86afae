package snapshot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The unprivileged user's side of btrfs, run by TestBtrfsUnprivileged as uid 65534.
func TestUnprivilegedHelper(t *testing.T) {
	mnt := os.Getenv("SNAPSHOT_HELPER_MNT")
	if mnt == "" {
		t.Skip("run by TestBtrfsUnprivileged only")
	}
	src, into := filepath.Join(mnt, "user", "data"), filepath.Join(mnt, "user", "snapshots")
	items, err := Plan([]string{src}, into, "web", Btrfs)
	if os.Getenv("SNAPSHOT_HELPER_RM") != "1" {
		if err == nil || !strings.Contains(err.Error(), "user_subvol_rm_allowed") {
			t.Fatalf("btrfs without user_subvol_rm_allowed, unprivileged: %v", err)
		}
		if items, err := Plan([]string{src}, into, "web", Auto); err != nil || items[0].Method != Reflink {
			t.Fatalf("auto without user_subvol_rm_allowed: %+v %v", items, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := Take(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	if err := Take(context.Background(), items); err != nil { // replaces the stale one
		t.Fatal(err)
	}
	if err := Remove(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Dir(items[0].Dest))
}

func TestBtrfsUnprivileged(t *testing.T) {
	for _, rm := range []bool{true, false} {
		var opts []string
		if rm {
			opts = []string{"-o", "user_subvol_rm_allowed"}
		}
		mnt := newFSMount(t, kBtrfs, "300M", opts)
		// t.TempDir makes its directories 0700: let uid 65534 through.
		os.Chmod(filepath.Dir(mnt), 0o755)
		os.Chmod(filepath.Dir(filepath.Dir(mnt)), 0o755)
		user := filepath.Join(mnt, "user")
		os.Mkdir(user, 0o755)
		os.Chown(user, 65534, 65534)
		// the test binary, where uid 65534 can run it
		bin := filepath.Join(t.TempDir(), "snapshot.test")
		run(t, "cp", os.Args[0], bin)
		os.Chmod(filepath.Dir(bin), 0o755)
		as := func(name string, args ...string) *exec.Cmd {
			c := exec.Command(name, args...)
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			c.Dir = "/"
			return c
		}
		if out, err := as("btrfs", "subvolume", "create", filepath.Join(user, "data")).CombinedOutput(); err != nil {
			t.Fatalf("subvolume create as 65534: %v: %s", err, out)
		}
		os.WriteFile(filepath.Join(user, "data", "f"), []byte("x"), 0o644)
		os.Chown(filepath.Join(user, "data", "f"), 65534, 65534)
		c := as(bin, "-test.run=^TestUnprivilegedHelper$", "-test.v", "-test.count=1")
		c.Env = append(os.Environ(), "SNAPSHOT_HELPER_MNT="+mnt, "TMPDIR="+user)
		if rm {
			c.Env = append(c.Env, "SNAPSHOT_HELPER_RM=1")
		}
		out, err := c.CombinedOutput()
		t.Logf("user_subvol_rm_allowed=%v, as uid 65534:\n%s", rm, out)
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
}
