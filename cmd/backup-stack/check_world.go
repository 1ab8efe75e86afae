package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/duplicati"
	"github.com/backup-stack/backup-stack/internal/manager"
	"github.com/backup-stack/backup-stack/internal/podman"
)

// checkWorld is what the checks see of the live system. Every part is an
// interface or a function, so that the unit tests give fakes.
type checkWorld struct {
	Manager    manager.Manager
	Containers interface {
		List(ctx context.Context, project string) ([]podman.Container, error)
	}
	// Duplicati is nil when no client could be built; DuplicatiErr says why.
	Duplicati    duplicatiProbe
	DuplicatiErr error
	// Route says how Duplicati is reached, for the lines check prints.
	Route string
	// Calendar is nil when nothing can check a schedule (no systemd-analyze).
	Calendar calendarFunc
	// Linger says whether the user's manager outlives their logins.
	Linger func(ctx context.Context) (bool, error)
	// Secret reads password_file / token_file as the helper will.
	Secret func(attr, path string) error
}

// duplicatiProbe is the part of Duplicati that check asks.
type duplicatiProbe interface {
	State(ctx context.Context) (duplicati.ServerState, error)
	Backups(ctx context.Context) ([]duplicati.BackupInfo, error)
	Version(ctx context.Context) (string, error)
}

// backendProbe asks a real route.
type backendProbe struct{ b duplicati.Backend }

func (p backendProbe) State(ctx context.Context) (duplicati.ServerState, error) {
	return p.b.State(ctx)
}
func (p backendProbe) Backups(ctx context.Context) ([]duplicati.BackupInfo, error) {
	return duplicati.ListBackups(ctx, p.b)
}
func (p backendProbe) Version(ctx context.Context) (string, error) {
	return duplicati.ServerVersion(ctx, p.b)
}

// checkWorld builds the real world of the App: its manager and podman,
// Duplicati as config.hcl selects it, systemd-analyze and loginctl.
func (a *App) checkWorld(d hcl.Duplicati) *checkWorld {
	w := &checkWorld{
		Manager:    a.Manager,
		Containers: a.Containers,
		Calendar:   systemdCalendar(),
		Linger:     loginctlLinger,
		Secret:     readSecretOnly,
	}
	if d.URL != "" {
		w.Route = "REST route, " + d.URL
	} else {
		w.Route = "exec route, container " + d.Container
	}
	// The secret is checked (at its line) by checkDuplicati; a client
	// needs it, so none is built without it.
	if d.URL != "" && (d.PasswordFile != "" || d.TokenFile != "") {
		attr, path := "password_file", d.PasswordFile
		if d.TokenFile != "" {
			attr, path = "token_file", d.TokenFile
		}
		if err := readSecretOnly(attr, path); err != nil {
			w.DuplicatiErr = errCheckSecret
			return w
		}
	}
	b, err := backend(d, d.WaitTimeout, 0, checkDiscardLogger())
	if err != nil {
		w.DuplicatiErr = err
		return w
	}
	w.Duplicati = backendProbe{b}
	return w
}

// errCheckSecret: no client was built because the secret file is not usable
// (checkDuplicati reports that at the file's line).
var errCheckSecret = errors.New("the password_file or token_file cannot be used")

// readSecretOnly reads a secret file as the helper does, and throws it away.
func readSecretOnly(attr, path string) error {
	var err error
	if attr == "token_file" {
		_, err = readToken(path)
	} else {
		_, err = readPassword(path)
	}
	return err
}

// loginctlLinger asks logind whether the user lingers.
func loginctlLinger(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "loginctl", "show-user", strconv.Itoa(os.Getuid()), "-p", "Linger", "--value").CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		if text != "" {
			return false, fmt.Errorf("loginctl show-user: %w: %s", err, lastLine(text))
		}
		return false, fmt.Errorf("loginctl show-user: %w", err)
	}
	switch text {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("loginctl show-user: unexpected answer %q", text)
}
