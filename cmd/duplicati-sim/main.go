// Command duplicati-sim runs the Duplicati simulator (`duplicati-sim serve ...`). Invoked under
// the name duplicati-server-util (symlink or copy), or as `duplicati-sim util ...`, it is the
// stand-in for Duplicati's server util.
//
// The stand-in imitates the release the simulator runs (GET /sim/quirks: Version; the newest
// when that fails): its options, its output (2.1.0.x: no --json, no final empty line, "Backup
// finished"; 2.2.0.2+: "Backup status: X"; 2.3.1.0: run --wait exits 2/3/4), and its way in:
// a stored refresh token, else a sign-in token from the server DB (here POST /sim/signintoken,
// then auth/signin; 2.1.0.x even with --password), else the password, prompting for one when
// none was given (with stdin not a terminal the prompt throws). Every sign-in is a token
// family row on the server; 2.1.0.x also stores the refresh token in its settings file
// ($XDG_CONFIG_HOME or ~/.config, /Duplicati/settings.json; or --settings-file), printing
// "Warning: The encryption key is missing, ..." each time it does so without a key.
//
// Errors are worded as Program.cs does: a JSON {Error,Code} answer is "Server error (<Code>):
// <Error>" (exit 2), an empty error body an HttpRequestException (exit 1), a failed login
// "Failed to connect to server: ..." (exit 2). 2.3.1.0 verifies the data folder
// (--server-datafolder, $DUPLICATI__SERVER_DATAFOLDER, else /data when it exists): mode 0700
// at most and owned by the caller or root, unless --allow-insecure-datafolder or
// $DUPLICATI__ALLOW_INSECURE_DATAFOLDER. A refusal exits 1 with no output at all: the real
// util throws while binding its Settings, before its OutputInterceptor exists, so its
// exception handler prints nothing (quirk DataFolderMessage prints the exception text).
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
		os.Exit(runUtil(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(runServe(os.Args[2:], os.Stdout, os.Stderr))
	case "server-util", "util":
		os.Exit(runUtil(os.Args[2:], os.Stdout, os.Stderr, os.LookupEnv))
	case "-h", "--help", "help":
		usage()
	default:
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  duplicati-sim serve [--listen 127.0.0.1:8200] [--version 2.1.0.5|2.2.0.3|2.3.0.4|2.3.1.0]
        [--backup ID=Name[:Duration][:Result][:Sync]]... [--password PW | --password-file F]
        [--preauth-token TOKEN]... [--quirks JSON] [--source ID=PATH]...
      Prints the bound address on stdout, then serves until SIGTERM/SIGINT. --version "" or
      absent is the newest (2.3.1.0). Without a password the server has a random one: no
      password login works (the util stand-in still signs in). --quirks takes the JSON of
      duplicatisim.Quirks (Go field names, durations like "1.5s"); the flags override it.
      --source ID=PATH (repeatable, PATH absolute, applies to the --backup with that ID, in
      order) makes each run of that backup read PATH: walk it, then read the walked paths
      one by one spread over the run's Duration (sha256 of each regular file's bytes as
      read, symlink targets not followed, directories, modes, sizes); GET
      /sim/reads?task=N answers what task N read. A missing source fails the run (Fatal,
      "Backup aborted since the source path ... does not exist"), a path gone before its
      turn is a Warning, an unreadable file an Error "Failed to process path: PATH".
  duplicati-sim server-util|util <util args>
      The duplicati-server-util stand-in (also when this binary is invoked under that name):
      status, list-backups [--detailed], run <backup> [--wait] [--poll-interval N]
      [--skip-queue] [--quiet], health; global --hosturl, --password, --json,
      --server-datafolder, --allow-insecure-datafolder, ... as the simulated release has them.
      It learns the release from the simulator (GET /sim/quirks), signs in without a password
      like the real util does from the server DB, or logs in with --password.
      Env: DUPLICATI_SIM_HOSTURL stands for the default --hosturl; DUPLICATI__SERVER_DATAFOLDER,
      DUPLICATI__ALLOW_INSECURE_DATAFOLDER and SETTINGS_ENCRYPTION_KEY as for the real util.
`)
}
