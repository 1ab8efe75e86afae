package units

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteAll writes files below dir. Each file appears whole or not at all:
// it is written to a temporary name in the same directory and renamed into
// place, so a reader (the manager, a person) never sees half a unit.
func WriteAll(dir string, files []File) error {
	var errs []error
	for _, f := range files {
		if err := writeOne(dir, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func writeOne(dir string, f File) error {
	dst := filepath.Join(dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if f.Link != "" {
		tmp := filepath.Join(filepath.Dir(dst), ".tmp-"+filepath.Base(dst))
		_ = os.Remove(tmp)
		if err := os.Symlink(f.Link, tmp); err != nil {
			return fmt.Errorf("linking %s: %w", dst, err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("linking %s: %w", dst, err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	_, werr := tmp.Write(f.Content)
	if werr == nil {
		werr = tmp.Chmod(0o644)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), dst)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", dst, werr)
	}
	return nil
}

// DryRun prints every file the way the generator would write it.
func DryRun(w io.Writer, files []File) error {
	for _, f := range files {
		var err error
		if f.Link != "" {
			_, err = fmt.Fprintf(w, "---- %s -> %s\n", f.Path, f.Link)
		} else {
			_, err = fmt.Fprintf(w, "---- %s\n%s", f.Path, f.Content)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
