package hcl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dir returns the configuration directory: $XDG_CONFIG_HOME/backup-stack,
// else ~/.config/backup-stack.
func Dir() (string, error) {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "backup-stack"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the configuration directory: neither XDG_CONFIG_HOME nor HOME is set: %w", err)
	}
	if home == "" {
		return "", errors.New("cannot find the configuration directory: HOME is empty")
	}
	return filepath.Join(home, ".config", "backup-stack"), nil
}

// DefaultSnapshotDir is a snapshot block's default into:
// $XDG_DATA_HOME/backup-stack/snapshots, else ~/.local/share/backup-stack/snapshots.
func DefaultSnapshotDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "backup-stack", "snapshots")
	}
	return expandHome("~/.local/share/backup-stack/snapshots")
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}
