package main

import (
	"io"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// stdoutInfo is what the overview needs to know about where stdout goes.
type stdoutInfo struct {
	isTTY bool
	cols  int // the terminal's width, 0 when unknown
}

// probeStdout asks the kernel about w when it is a file (TIOCGWINSZ
// answers only for a terminal).
func probeStdout(w io.Writer) stdoutInfo {
	f, ok := w.(*os.File)
	if !ok {
		return stdoutInfo{}
	}
	var ws struct{ Row, Col, X, Y uint16 }
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws)))
	if errno != 0 {
		return stdoutInfo{}
	}
	return stdoutInfo{isTTY: true, cols: int(ws.Col)}
}

// tableWidth is the width the overview must fit into: $COLUMNS when it
// is a number (as systemctl and ls take it), else the terminal's width, else
// 0 (not a terminal: nothing is cut). full turns cutting off.
func tableWidth(t stdoutInfo, columnsEnv string, full bool) int {
	if full {
		return 0
	}
	if n, err := strconv.Atoi(columnsEnv); err == nil && n > 0 {
		return n
	}
	if t.isTTY {
		if t.cols > 0 {
			return t.cols
		}
		return 80
	}
	return 0
}

// useColor decides --color: always and never are what they say; auto
// colours a terminal unless NO_COLOR is set to anything but "" (no-color.org)
// or TERM is dumb. The flag wins over NO_COLOR, as no-color.org asks.
func useColor(mode string, t stdoutInfo, noColor, term string) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return t.isTTY && noColor == "" && term != "dumb"
}
