// Package buildinfo says which build a program is: what both programs print
// for --version.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Text is the --version line of program: its version and the commit it was
// built from. ldflagsVersion is the version set with -ldflags, if any.
func Text(program, ldflagsVersion string) string {
	info, ok := debug.ReadBuildInfo()
	return text(program, ldflagsVersion, info, ok)
}

// text is what --version prints: the program, its version and the
// commit it was built from. The version is the module version Go recorded
// (a tag, or a pseudo-version from the commit); when Go recorded none or
// "(devel)", the -ldflags version; else "dev". vcs.revision, vcs.time and
// vcs.modified follow when Go stamped them, so any binary names its commit.
func text(program, ldflagsVersion string, info *debug.BuildInfo, ok bool) string {
	v := ""
	if ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if v == "" {
		v = ldflagsVersion
	}
	if v == "" {
		v = "dev"
	}
	var vcs []string
	if ok {
		s := map[string]string{}
		for _, kv := range info.Settings {
			s[kv.Key] = kv.Value
		}
		if r := s["vcs.revision"]; r != "" {
			vcs = append(vcs, "revision "+r)
		}
		if t := s["vcs.time"]; t != "" {
			vcs = append(vcs, "committed "+t)
		}
		if s["vcs.modified"] == "true" {
			vcs = append(vcs, "modified")
		}
		if info.GoVersion != "" {
			vcs = append(vcs, "built with "+info.GoVersion)
		}
	}
	if len(vcs) == 0 {
		return fmt.Sprintf("%s %s", program, v)
	}
	return fmt.Sprintf("%s %s (%s)", program, v, strings.Join(vcs, ", "))
}
