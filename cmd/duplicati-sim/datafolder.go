package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// dataFolder is the folder 2.3.1.0's ServerUtil verifies: --server-datafolder, else
// $DUPLICATI__SERVER_DATAFOLDER, else /data when it exists. Overridden folders are printed
// with the trailing separator DataFolderManager adds. "" = nothing to check.
func dataFolder(a utilArgs, getenv func(string) string) string {
	switch {
	case a.serverDatafolder != nil && strings.TrimSpace(*a.serverDatafolder) != "":
		return appendSep(*a.serverDatafolder)
	case strings.TrimSpace(getenv("DUPLICATI__SERVER_DATAFOLDER")) != "":
		return appendSep(getenv("DUPLICATI__SERVER_DATAFOLDER"))
	}
	return "/data"
}

func appendSep(p string) string {
	p = strings.Trim(p, `"`)
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// allowInsecure is Util.AllowInsecureDataFolder: the last --allow-insecure-datafolder on the
// raw command line (bare, "=value" or followed by a value not starting with "--"), else the
// environment variable. Everything but false/0/no/off (case-insensitive) is true; so is empty.
func allowInsecure(args []string, lookupEnv func(string) (string, bool)) bool {
	const opt = "--allow-insecure-datafolder"
	for i := len(args) - 1; i >= 0; i-- {
		tok := args[i]
		switch {
		case strings.EqualFold(tok, opt):
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				return truthy(args[i+1])
			}
			return true
		case len(tok) > len(opt) && strings.EqualFold(tok[:len(opt)+1], opt+"="):
			return truthy(strings.Trim(tok[len(opt)+1:], `"`))
		}
	}
	if v, ok := lookupEnv("DUPLICATI__ALLOW_INSECURE_DATAFOLDER"); ok {
		return truthy(v)
	}
	return false
}

func truthy(v string) bool {
	if strings.TrimSpace(v) == "" {
		return true
	}
	for _, no := range []string{"false", "0", "no", "off"} {
		if strings.EqualFold(v, no) {
			return false
		}
	}
	return true
}

// checkDataFolder is DataFolderManager.VerifyDataFolderSecurityReadOnly on Linux
// (SystemIOLinux.HasPermissionUserRWOnly with mode 0700): an existing folder must have all of
// 0700, no group or other bits, and be owned by the calling uid or root. It returns the
// UserInformationException text, or "" when the folder passes or does not exist.
func checkDataFolder(path string) string {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return "" // Directory.Exists is false: nothing to verify
	}
	detail := ""
	st, ok := fi.Sys().(*syscall.Stat_t)
	uid := uint32(os.Getuid())
	switch perm := uint32(0); {
	case !ok:
		detail = "failed to read permissions: no stat information"
	default:
		perm = st.Mode & 0o7777
		switch {
		case perm&0o700 != 0o700:
			detail = fmt.Sprintf("permissions are %o but expected 700", perm)
		case perm&0o077 != 0:
			detail = fmt.Sprintf("permissions allow group or other access (%o)", perm)
		case st.Uid != uid && st.Uid != 0:
			detail = fmt.Sprintf("owner is uid %d but expected the current user (uid %d) or root", st.Uid, uid)
		}
	}
	if detail == "" {
		return ""
	}
	return dataFolderMessage(path, detail)
}

// dataFolderMessage is the exception text of DataFolderManager.VerifyDataFolderSecurity for
// a pre-existing folder (the read-only check always treats the folder as pre-existing).
func dataFolderMessage(path, detail string) string {
	return "The data folder '" + path + "' does not have secure permissions (" + detail + "). " +
		"This is a security risk because the database and configuration may contain sensitive data, " +
		"and an attacker who can write to the folder could inject a malicious database or configuration. " +
		"This folder already existed before Duplicati started and does not have the expected restricted permissions, " +
		"which can mean it was created by another (possibly malicious) user and may contain a malicious database or configuration. " +
		"Duplicati does not automatically adopt an existing folder's permissions. Verify the folder was created by Duplicati " +
		"(not an attacker), then restrict its permissions using the 'duplicati-configure secure-datafolder' command (or manually). " +
		"Alternatively, run with --allow-insecure-datafolder to bypass this check if you understand the risks."
}
