//go:build !linux

package main

// stdinIsTerminal is unknown off Linux: treat stdin as redirected.
func stdinIsTerminal() bool { return false }
