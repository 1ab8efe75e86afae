// Command duplicati-sim runs the Duplicati simulator (`duplicati-sim serve ...`). Invoked under
// the name duplicati-server-util (symlink or copy) it is the stand-in for Duplicati's server util.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const utilName = "duplicati-server-util"

func main() {
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == utilName {
		os.Exit(runUtil(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(runServe(os.Args[2:], os.Stdout, os.Stderr))
	case "server-util":
		os.Exit(runUtil(os.Args[2:], os.Stdout, os.Stderr, os.Getenv))
	case "-h", "--help", "help":
		usage()
	default:
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  duplicati-sim serve [--listen 127.0.0.1:8200] [--backup ID=Name[:Duration][:Result]]... [--password-file F] [--quirks JSON]
  duplicati-sim server-util <util args>     (same as invoking this binary as duplicati-server-util)
`)
}
