package foreground

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"unsafe"
)

// IsTerminal reports whether f is a terminal (TCGETS succeeds): only then
// is there a person to ask.
func IsTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TCGETS), uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// LineAnswer asks on w and reads one line of r: "y" or "yes" (any case) is
// yes, anything else, or the end of r, is no. The read itself cannot be
// cancelled; the caller stops waiting for it when ctx ends.
func LineAnswer(r io.Reader, w io.Writer) func(ctx context.Context, question string) (bool, error) {
	br := bufio.NewReader(r)
	return func(ctx context.Context, question string) (bool, error) {
		if _, err := fmt.Fprintf(w, "\n%s [y/N] ", question); err != nil {
			return false, err
		}
		type answer struct {
			line string
			err  error
		}
		ch := make(chan answer, 1)
		go func() {
			line, err := br.ReadString('\n')
			ch <- answer{line, err}
		}()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case a := <-ch:
			if a.err != nil && a.line == "" {
				if a.err == io.EOF {
					return false, nil
				}
				return false, a.err
			}
			switch strings.ToLower(strings.TrimSpace(a.line)) {
			case "y", "yes":
				return true, nil
			}
			return false, nil
		}
	}
}
