package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/backup-stack/backup-stack/internal/exitcode"
	"github.com/backup-stack/backup-stack/internal/shimport"
)

// ImportShCmd converts the seed's shell stack files into HCL stack files.
type ImportShCmd struct {
	Files []string `arg:"" help:"The seed's stack files (stacks/<name>.sh). They are read, never run."`
	Write string   `help:"Write DIR/<stack>.hcl for each file instead of printing it; an existing file is never overwritten." placeholder:"DIR"`
	Shell string   `help:"The shell that runs the converted hooks: [\"<shell>\", \"-c\", \"<body>\"]." default:"/bin/sh"`
}

func (c *ImportShCmd) Run(app *App) error {
	failed := 0
	for i, path := range c.Files {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(app.Stderr, "%s: cannot read: %v\n", path, err)
			failed++
			continue
		}
		res, err := shimport.Convert(path, src, shimport.Options{Shell: c.Shell})
		if err != nil {
			fmt.Fprintf(app.Stderr, "%s: cannot parse: %v\n", path, err)
			failed++
			continue
		}
		for _, is := range res.Issues {
			fmt.Fprintln(app.Stderr, is.Format(path))
		}
		if c.Write == "" {
			if i > 0 {
				fmt.Fprintln(app.Stdout)
			}
			fmt.Fprint(app.Stdout, res.HCL)
			continue
		}
		if !res.NameOK {
			fmt.Fprintf(app.Stderr, "%s: not written: %q is not a stack name to name the file after\n", path, res.Name)
			failed++
			continue
		}
		out := filepath.Join(c.Write, res.Name+".hcl")
		if err := writeExclusive(out, []byte(res.HCL)); err != nil {
			if errors.Is(err, fs.ErrExist) {
				fmt.Fprintf(app.Stderr, "%s: not written: %s exists and is never overwritten (move it away or compare by hand)\n", path, out)
			} else {
				fmt.Fprintf(app.Stderr, "%s: not written: %v\n", path, err)
			}
			failed++
			continue
		}
		fmt.Fprintf(app.Stdout, "%s: wrote %s (%d thing(s) to do by hand)\n", path, out, len(res.Issues))
	}
	if failed > 0 {
		return withCode(exitcode.Failure, fmt.Errorf("import-sh: %d of %d file(s) not converted", failed, len(c.Files)))
	}
	return nil
}

// writeExclusive creates path (it must not exist) with data.
func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
