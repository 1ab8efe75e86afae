package main

import (
	"syscall"
	"unsafe"
)

// stdinIsTerminal is isatty(0), what .NET's Console.IsInputRedirected looks at.
func stdinIsTerminal() bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, uintptr(syscall.TCGETS), uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
