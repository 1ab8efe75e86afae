package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

// runServe runs the simulator until SIGTERM or SIGINT. It prints the bound address on stdout.
func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8200", "address to listen on")
	pwFile := fs.String("password-file", "", "file holding the server password")
	var password *string
	fs.Func("password", "the server password", func(v string) error { password = &v; return nil })
	var version *string
	fs.Func("version", `Duplicati release to imitate: one of `+strings.Join(duplicatisim.Versions, ", ")+` ("" = newest)`,
		func(v string) error { version = &v; return nil })
	var preauth []string
	fs.Func("preauth-token", "pre-authenticated token (2.1.2.0+), repeatable", func(v string) error {
		preauth = append(preauth, v)
		return nil
	})
	quirks := fs.String("quirks", "", `quirks as JSON, e.g. {"QueuedDelay":"2s","AllowedHosts":["duplicati"]}`)
	var backups []duplicatisim.Backup
	fs.Func("backup", "ID=Name[:Duration][:Result][:Sync], repeatable", func(v string) error {
		b, err := duplicatisim.ParseBackupSpec(v)
		if err == nil {
			backups = append(backups, b)
		}
		return err
	})
	type srcSpec struct{ id, path string }
	var sources []srcSpec
	fs.Func("source", "ID=PATH: backup ID reads the absolute PATH while it runs (GET /sim/reads), repeatable", func(v string) error {
		id, p, ok := strings.Cut(v, "=")
		if !ok || id == "" || p == "" {
			return fmt.Errorf("source %q: want ID=PATH", v)
		}
		sources = append(sources, srcSpec{id, p})
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, sp := range sources {
		i := slices.IndexFunc(backups, func(b duplicatisim.Backup) bool { return b.ID == sp.id })
		if i < 0 {
			fmt.Fprintf(stderr, "serve: --source %s=%s: no --backup with ID %s\n", sp.id, sp.path, sp.id)
			return 2
		}
		backups[i].Sources = append(backups[i].Sources, sp.path)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var q duplicatisim.Quirks
	if *quirks != "" {
		if err := duplicatisim.MergeQuirksJSON(&q, []byte(*quirks)); err != nil {
			fmt.Fprintln(stderr, "serve:", err)
			return 2
		}
	}
	if version != nil {
		q.Version = *version
	}
	if len(preauth) > 0 {
		q.PreAuthTokens = append(q.PreAuthTokens, preauth...)
	}
	if password != nil && *pwFile != "" {
		fmt.Fprintln(stderr, "serve: --password and --password-file exclude each other")
		return 2
	}
	if password != nil {
		q.Password = *password
	}
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			fmt.Fprintln(stderr, "serve:", err)
			return 2
		}
		q.Password = strings.TrimRight(string(b), "\r\n")
	}
	if err := duplicatisim.Validate(backups, q); err != nil {
		fmt.Fprintln(stderr, "serve:", err)
		return 2
	}
	sim := duplicatisim.New(backups, q)
	defer sim.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	addr, err := duplicatisim.ListenAndServe(ctx, *listen, sim)
	if err != nil {
		fmt.Fprintln(stderr, "serve:", err)
		return 1
	}
	fmt.Fprintln(stdout, addr.String())
	<-ctx.Done()
	return 0
}
