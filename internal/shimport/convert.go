package shimport

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

// Options change how a file is converted.
type Options struct {
	// Shell runs the hook bodies: ["<Shell>", "-c", "<body>"]. Default /bin/sh.
	Shell string
}

// Issue is something of the shell file that was not converted (or not
// quite): what, at which line (0: the whole file), and what to do by hand.
type Issue struct {
	Line int
	What string
	Todo string
}

// Format renders the issue as "file:line: what; todo".
func (i Issue) Format(file string) string {
	s := file
	if i.Line > 0 {
		s += ":" + strconv.Itoa(i.Line)
	}
	s += ": " + i.What
	if i.Todo != "" {
		s += "; " + i.Todo
	}
	return s
}

// Result is one converted file.
type Result struct {
	// Name is the stack's name: the file's name without .sh (the seed found
	// a stack by its file name), else STACK_NAME.
	Name string
	// NameOK says Name is a valid stack name (the output may be written to
	// <Name>.hcl).
	NameOK bool
	HCL    string
	Issues []Issue
}

// HookFuncs maps the seed's hook functions to hook kinds, in the order
// they run.
var HookFuncs = []struct{ Func, Kind string }{
	{"stack_pre_stop", "pre_stop"},
	{"stack_post_stop", "post_stop"},
	{"stack_pre_backup", "pre_backup"},
	{"stack_post_backup", "post_backup"},
	{"stack_pre_start", "pre_start"},
	{"stack_post_start", "post_start"},
	{"stack_verify", "verify"},
}

// known are the variables of a seed stack file that become settings.
var known = map[string]bool{
	"STACK_NAME": true, "UNIT": true, "PROJECT_LABEL": true, "DUPLICATI_JOBS": true,
	"STOP_TIMEOUT": true, "START_TIMEOUT": true, "RESTORE_POLICY": true,
	"FREEZE_ONDEMAND": true, "ONDEMAND_SOCKET": true, "ONDEMAND_SERVICE": true,
	"DUPLICATI_WAIT_TIMEOUT": true, "DUPLICATI_RUN_TIMEOUT": true, "DUPLICATI_CONTAINER": true,
}

// envOK are variables a hook finds in its environment under systemd's user
// manager, or sets by itself.
var envOK = map[string]bool{
	"HOME": true, "USER": true, "LOGNAME": true, "SHELL": true, "PATH": true, "PWD": true, "OLDPWD": true,
	"IFS": true, "TMPDIR": true, "LANG": true, "LC_ALL": true, "XDG_RUNTIME_DIR": true, "XDG_CONFIG_HOME": true,
	"XDG_DATA_HOME": true, "XDG_STATE_HOME": true, "XDG_CACHE_HOME": true, "DBUS_SESSION_BUS_ADDRESS": true,
	"SERVICE_RESULT": true, "EXIT_CODE": true, "EXIT_STATUS": true, "INVOCATION_ID": true,
	"OPTARG": true, "OPTIND": true, "PPID": true,
}

type evaluated struct {
	scalar map[string]string
	array  map[string][]string
	errs   map[string]error // last evaluation error of a variable
	line   map[string]int   // line of the last assignment
}

func evaluate(f *File) *evaluated {
	ev := &evaluated{scalar: map[string]string{}, array: map[string][]string{}, errs: map[string]error{}, line: map[string]int{}}
	for _, a := range f.Assigns {
		ev.line[a.Name] = a.Line
		vals := make([]string, 0, len(a.Words))
		var err error
		for _, w := range a.Words {
			v, e := expand(w, ev.scalar)
			if e != nil {
				err = e
				break
			}
			vals = append(vals, v)
		}
		if err != nil {
			ev.errs[a.Name] = err
			delete(ev.scalar, a.Name)
			delete(ev.array, a.Name)
			continue
		}
		delete(ev.errs, a.Name)
		switch {
		case a.IsArray && a.Append:
			ev.array[a.Name] = append(ev.array[a.Name], vals...)
		case a.IsArray:
			ev.array[a.Name] = vals
		case a.Append:
			if arr, ok := ev.array[a.Name]; ok && len(arr) > 0 {
				arr[0] += vals[0]
			} else {
				ev.scalar[a.Name] += vals[0]
			}
		default:
			if arr, ok := ev.array[a.Name]; ok && len(arr) > 0 {
				arr[0] = vals[0]
			} else {
				ev.scalar[a.Name] = vals[0]
			}
		}
		if arr, ok := ev.array[a.Name]; ok {
			if len(arr) > 0 {
				ev.scalar[a.Name] = arr[0] // $ARR is its first element
			} else {
				delete(ev.scalar, a.Name)
			}
		}
	}
	return ev
}

// Convert turns one seed stack file into an HCL stack file. path names the
// file in messages and in the header; only its base name is used to name
// the stack. The error is for a file that is not shell this importer can
// read at all.
func Convert(path string, src []byte, opt Options) (*Result, error) {
	if opt.Shell == "" {
		opt.Shell = "/bin/sh"
	}
	if !utf8.Valid(src) {
		return nil, fmt.Errorf("not UTF-8 text")
	}
	f, err := Parse(string(src))
	if err != nil {
		return nil, err
	}
	c := &conv{f: f, ev: evaluate(f), opt: opt, res: &Result{}}
	c.convert(path)
	return c.res, nil
}

type conv struct {
	f   *File
	ev  *evaluated
	opt Options
	res *Result
}

func (c *conv) issue(line int, what, todo string, args ...any) {
	c.res.Issues = append(c.res.Issues, Issue{Line: line, What: what, Todo: fmt.Sprintf(todo, args...)})
}

// scalar is a known variable's value; ok is false when the file does not
// set it or it could not be evaluated (which is reported).
func (c *conv) scalar(name string) (string, bool) {
	if err, bad := c.ev.errs[name]; bad {
		c.issue(c.ev.line[name], fmt.Sprintf("%s not converted: its value uses %v", name, err),
			"set the value by hand")
		return "", false
	}
	if _, isArr := c.ev.array[name]; isArr && name != "DUPLICATI_JOBS" {
		c.issue(c.ev.line[name], name+" is an array; its first element is used", "check the value")
	}
	v, ok := c.ev.scalar[name]
	return v, ok
}

type attr struct{ key, val string }

func (c *conv) convert(path string) {
	stem := strings.TrimSuffix(filepath.Base(path), ".sh")
	stackName, hasName := c.scalar("STACK_NAME")
	name := stem
	switch {
	case systemd.CheckStackName(stem) == nil:
		c.res.NameOK = true
		if hasName && stackName != stem {
			c.issue(c.ev.line["STACK_NAME"], fmt.Sprintf("STACK_NAME=%q differs from the file name: the stack is named %q after the file, as the seed's bin/backup %s found it", stackName, stem, stem),
				"rename the stack block (and its file) if you want the other name")
		}
	case hasName && systemd.CheckStackName(stackName) == nil:
		name, c.res.NameOK = stackName, true
		c.issue(0, fmt.Sprintf("the file name %q is not a stack name; the stack is named %q after STACK_NAME", stem, stackName), "")
	default:
		c.issue(0, fmt.Sprintf("%q is not a stack name (%v)", stem, systemd.CheckStackName(stem)),
			"rename the stack block to letters, digits, - and _")
	}
	c.res.Name = name

	var attrs []attr
	if unit, ok := c.scalar("UNIT"); ok {
		if unit == "" {
			c.issue(c.ev.line["UNIT"], "UNIT is empty", "the default %s-stack.service is used", name)
		} else {
			if !strings.Contains(unit, ".") {
				unit += ".service" // as systemctl reads a name without a suffix
			}
			attrs = append(attrs, attr{"unit", hclString(unit)})
		}
	}
	if label, ok := c.scalar("PROJECT_LABEL"); ok {
		if label == "" {
			c.issue(c.ev.line["PROJECT_LABEL"], "PROJECT_LABEL is empty", "the default %q is used", name)
		} else {
			attrs = append(attrs, attr{"project_label", hclString(label)})
		}
	}
	jobsAttr := attr{"jobs", "[]"}
	if err, bad := c.ev.errs["DUPLICATI_JOBS"]; bad {
		c.issue(c.ev.line["DUPLICATI_JOBS"], fmt.Sprintf("DUPLICATI_JOBS not converted: it uses %v", err), "fill in jobs = [...] by hand")
	} else {
		jobs, isArr := c.ev.array["DUPLICATI_JOBS"]
		if !isArr {
			if v, ok := c.ev.scalar["DUPLICATI_JOBS"]; ok {
				jobs = []string{v}
			}
		}
		var nonEmpty []string
		for _, j := range jobs {
			if strings.TrimSpace(j) != "" {
				nonEmpty = append(nonEmpty, j)
			}
		}
		if len(nonEmpty) == 0 {
			c.issue(c.ev.line["DUPLICATI_JOBS"], "no DUPLICATI_JOBS: the stack has no Duplicati job", "fill in jobs = [\"<backup name or ID>\"] by hand (validate refuses an empty list)")
		} else {
			q := make([]string, len(nonEmpty))
			for i, j := range nonEmpty {
				q[i] = hclString(j)
			}
			jobsAttr.val = "[" + strings.Join(q, ", ") + "]"
		}
	}
	attrs = append(attrs, jobsAttr)
	if p, ok := c.scalar("RESTORE_POLICY"); ok {
		switch p {
		case "previous", "always":
			attrs = append(attrs, attr{"restore_policy", hclString(p)})
		case "":
		default:
			c.issue(c.ev.line["RESTORE_POLICY"], fmt.Sprintf("RESTORE_POLICY=%q is neither previous nor always", p), "set restore_policy by hand")
		}
	}
	for _, t := range []struct{ v, key string }{{"STOP_TIMEOUT", "stop_timeout"}, {"START_TIMEOUT", "start_timeout"}, {"DUPLICATI_WAIT_TIMEOUT", "wait_timeout"}} {
		v, ok := c.scalar(t.v)
		if !ok || v == "" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 63)
		if err != nil || n == 0 || n > 1<<40 {
			c.issue(c.ev.line[t.v], fmt.Sprintf("%s=%q is not a positive number of seconds", t.v, v), "set %s by hand (a duration such as \"90s\")", t.key)
			continue
		}
		attrs = append(attrs, attr{t.key, hclString(seconds(n))})
	}
	for _, v := range []string{"DUPLICATI_CONTAINER", "DUPLICATI_RUN_TIMEOUT"} {
		if _, set := c.ev.line[v]; set {
			key := map[string]string{"DUPLICATI_CONTAINER": "container", "DUPLICATI_RUN_TIMEOUT": "run_timeout"}[v]
			c.issue(c.ev.line[v], v+" is not a setting of one stack", "set duplicati { %s = ... } in config.hcl", key)
		}
	}

	onDemand := c.onDemand()
	hooks := c.hooks()
	c.unusedAndUnsupported()

	sort.SliceStable(c.res.Issues, func(i, j int) bool { return c.res.Issues[i].Line < c.res.Issues[j].Line })

	var b strings.Builder
	fmt.Fprintf(&b, "# Converted by `backup-stack import-sh` from %s.\n", comment(path))
	b.WriteString("# Review it, then run `backup-stack validate` and `backup-stack reload`.\n")
	if len(c.res.Issues) > 0 {
		b.WriteString("# Not converted, to do by hand:\n")
		for _, is := range c.res.Issues {
			fmt.Fprintf(&b, "#   %s\n", comment(is.Format(filepath.Base(path))))
		}
	}
	fmt.Fprintf(&b, "stack %s {\n", hclString(name))
	writeAttrs(&b, "  ", attrs)
	b.WriteString("  # No schedule: the seed's one timer ran `bin/backup all`. Set one here\n")
	b.WriteString("  # (schedule = \"*-*-* 03:30:00\") or defaults { schedule = ... } in config.hcl.\n")
	if onDemand != nil {
		b.WriteString("\n  on_demand {\n")
		writeAttrs(&b, "    ", onDemand)
		b.WriteString("  }\n")
	}
	for _, h := range hooks {
		fmt.Fprintf(&b, "\n  # %s() at line %d\n", h.fn, h.line)
		fmt.Fprintf(&b, "  hook %s {\n", hclString(h.kind))
		q := make([]string, len(h.argv))
		for i, a := range h.argv {
			q[i] = hclString(a)
		}
		fmt.Fprintf(&b, "    command = [%s]\n", strings.Join(q, ", "))
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	c.res.HCL = b.String()
}

func writeAttrs(b *strings.Builder, indent string, attrs []attr) {
	w := 0
	for _, a := range attrs {
		w = max(w, len(a.key))
	}
	for _, a := range attrs {
		fmt.Fprintf(b, "%s%-*s = %s\n", indent, w, a.key, a.val)
	}
}

// comment makes s safe for one # comment line.
func comment(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 || r == 0x85 }) {
		return strconv.Quote(s)
	}
	return s
}

// seconds writes n seconds as a Go duration: "2m", "1h", "90s".
func seconds(n uint64) string {
	switch {
	case n%3600 == 0:
		return fmt.Sprintf("%dh", n/3600)
	case n%60 == 0:
		return fmt.Sprintf("%dm", n/60)
	}
	return fmt.Sprintf("%ds", n)
}

func (c *conv) onDemand() []attr {
	freeze, setF := c.scalar("FREEZE_ONDEMAND")
	socket, setS := c.scalar("ONDEMAND_SOCKET")
	service, setSv := c.scalar("ONDEMAND_SERVICE")
	switch strings.ToLower(freeze) {
	case "yes":
	case "", "no":
		if socket != "" || service != "" {
			c.issue(c.ev.line["ONDEMAND_SOCKET"], "ONDEMAND_SOCKET/ONDEMAND_SERVICE not converted: FREEZE_ONDEMAND is not \"yes\", so the seed did not freeze them",
				"add on_demand { socket = ... } if the stack should be frozen")
		}
		return nil
	default:
		if setF {
			c.issue(c.ev.line["FREEZE_ONDEMAND"], fmt.Sprintf("FREEZE_ONDEMAND=%q is neither yes nor no", freeze), "add on_demand { ... } by hand if the socket should be frozen")
		}
		return nil
	}
	if !setS || socket == "" {
		c.issue(c.ev.line["FREEZE_ONDEMAND"], "FREEZE_ONDEMAND=yes without ONDEMAND_SOCKET", "add on_demand { socket = \"<app>.socket\" } by hand")
		return nil
	}
	a := []attr{{"socket", hclString(socket)}}
	if setSv && service != "" {
		a = append(a, attr{"service", hclString(service)})
	}
	return a
}

type hook struct {
	fn, kind string
	line     int
	argv     []string
}

var bashisms = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`\[\[`), "[["},
	{regexp.MustCompile(`<<<`), "<<<"},
	{regexp.MustCompile(`&>`), "&>"},
	{regexp.MustCompile(`\$'`), "$'...'"},
	{regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\[`), "arrays"},
	{regexp.MustCompile(`(^|[\s;&|(])(source|declare|typeset|shopt|mapfile|readarray|pushd|popd|let|function)\s`), "bash builtins"},
	{regexp.MustCompile(`\bpipefail\b`), "pipefail"},
}

func isEmptyBody(s string) bool {
	for _, ln := range strings.Split(s, "\n") {
		ln = strings.TrimSpace(ln)
		if i := strings.Index(ln, "#"); i == 0 {
			continue
		}
		ln = strings.TrimSpace(strings.TrimSuffix(ln, ";"))
		switch ln {
		case "", ":", "true", "return", "return 0":
			continue
		}
		return false
	}
	return true
}

// dedent trims a function body for use as a script: no leading or trailing
// blank lines, no common indentation (unless it holds a here-document,
// whose lines must stay as written).
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 1 {
		return strings.TrimSuffix(strings.TrimSpace(lines[0]), ";")
	}
	if strings.Contains(s, "<<") {
		return strings.Join(lines, "\n")
	}
	prefix := ""
	first := true
	for _, ln := range lines {
		if strings.TrimSpace(ln) == "" {
			continue
		}
		ind := ln[:len(ln)-len(strings.TrimLeft(ln, " \t"))]
		if first {
			prefix, first = ind, false
			continue
		}
		for !strings.HasPrefix(ind, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	for i, ln := range lines {
		lines[i] = strings.TrimRight(strings.TrimPrefix(ln, prefix), " \t")
	}
	return strings.Join(lines, "\n")
}

func (c *conv) funcByName() map[string]*Func {
	m := map[string]*Func{}
	for i := range c.f.Funcs {
		m[c.f.Funcs[i].Name] = &c.f.Funcs[i] // the last definition wins, as in the shell
	}
	return m
}

func (c *conv) hooks() []hook {
	funcs := c.funcByName()
	assigned := map[string]bool{}
	isArray := map[string]bool{}
	for _, a := range c.f.Assigns {
		assigned[a.Name] = true
		if a.IsArray {
			isArray[a.Name] = true
		}
	}
	bash := strings.Contains(filepath.Base(c.opt.Shell), "bash")
	seenDef := map[string]int{}
	for _, fn := range c.f.Funcs {
		if l, dup := seenDef[fn.Name]; dup {
			c.issue(l, fmt.Sprintf("%s() is defined again at line %d", fn.Name, fn.Line), "the last definition is used, as in the shell")
		}
		seenDef[fn.Name] = fn.Line
	}
	var out []hook
	for _, hf := range HookFuncs {
		fn, ok := funcs[hf.Func]
		if !ok || isEmptyBody(fn.Body) {
			continue
		}
		// The helpers it calls, transitively, and the variables they use.
		helpers := map[string]bool{}
		vars := map[string]bool{}
		localSet := map[string]bool{}
		var visit func(f *Func)
		var visitVar func(n string)
		visitVar = func(n string) {
			if vars[n] {
				return
			}
			vars[n] = true
			for _, a := range c.f.Assigns {
				if a.Name == n {
					for _, r := range shellRefs(a.Raw[len(a.Name):]) {
						visitVar(r)
					}
				}
			}
		}
		visit = func(f *Func) {
			for n := range f.Assigned {
				localSet[n] = true
			}
			for _, r := range shellRefs(f.Body) {
				visitVar(r)
			}
			for _, w := range f.Words {
				if g, ok := funcs[w]; ok && w != fn.Name && !helpers[w] {
					helpers[w] = true
					visit(g)
				}
			}
		}
		visit(fn)
		var prelude []string
		for _, a := range c.f.Assigns {
			if vars[a.Name] {
				if isArray[a.Name] && !bash {
					c.issue(fn.Line, fmt.Sprintf("%s() uses the array %s, which %s has no arrays for", fn.Name, a.Name, c.opt.Shell),
						"run import-sh with --shell /bin/bash, or rewrite the hook")
					continue
				}
				prelude = append(prelude, a.Raw)
			}
		}
		var unknown []string
		for n := range vars {
			if !assigned[n] && !localSet[n] && !envOK[n] {
				unknown = append(unknown, "$"+n)
			}
		}
		sort.Strings(unknown)
		if len(unknown) > 0 {
			c.issue(fn.Line, fmt.Sprintf("%s() uses %s, which this file does not set (the seed's bin/backup or its environment may have)", fn.Name, strings.Join(unknown, ", ")),
				"set it in the hook's command by hand")
		}
		var helperDefs []string
		for i := range c.f.Funcs {
			g := &c.f.Funcs[i]
			if helpers[g.Name] && funcs[g.Name] == g {
				helperDefs = append(helperDefs, g.Name+"() {"+g.Body+"}")
			}
		}
		body := dedent(fn.Body)
		wrap := false
		for _, w := range fn.Words {
			if w == "return" || w == "local" {
				wrap = true
			}
		}
		if wrap {
			body = fn.Name + "() {" + fn.Body + "}\n" + fn.Name
		}
		script := strings.Join(append(append(prelude, helperDefs...), body), "\n")
		if !bash {
			var found []string
			seen := map[string]bool{}
			for _, bi := range bashisms {
				if bi.re.MatchString(script) && !seen[bi.what] {
					seen[bi.what] = true
					found = append(found, bi.what)
				}
			}
			if len(found) > 0 {
				c.issue(fn.Line, fmt.Sprintf("%s() looks like bash (%s), which %s may not run", fn.Name, strings.Join(found, ", "), c.opt.Shell),
					"run import-sh with --shell /bin/bash, or rewrite the hook")
			}
		}
		out = append(out, hook{fn: fn.Name, kind: hf.Kind, line: fn.Line, argv: []string{c.opt.Shell, "-c", script}})
	}
	return out
}

func (c *conv) unusedAndUnsupported() {
	for _, u := range c.f.Unsupported {
		c.issue(u.Line, fmt.Sprintf("not converted: %s: %s", u.Why, u.Text),
			"if a hook needs it, add it to the hook's command; backup-stack runs no code when it reads a stack file")
	}
	funcs := c.funcByName()
	hookFn := map[string]bool{}
	for _, h := range HookFuncs {
		hookFn[h.Func] = true
	}
	used := map[string]bool{}
	usedVar := map[string]bool{}
	var visit func(f *Func)
	visit = func(f *Func) {
		for _, r := range shellRefs(f.Body) {
			usedVar[r] = true
		}
		for _, w := range f.Words {
			if g, ok := funcs[w]; ok && !used[w] {
				used[w] = true
				visit(g)
			}
		}
	}
	for _, h := range HookFuncs {
		if f, ok := funcs[h.Func]; ok {
			used[h.Func] = true
			visit(f)
		}
	}
	// variables used by used variables
	changed := true
	for changed {
		changed = false
		for _, a := range c.f.Assigns {
			if usedVar[a.Name] {
				for _, r := range shellRefs(a.Raw[len(a.Name):]) {
					if !usedVar[r] {
						usedVar[r], changed = true, true
					}
				}
			}
		}
	}
	reported := map[string]bool{}
	for _, a := range c.f.Assigns {
		if known[a.Name] || usedVar[a.Name] || reported[a.Name] {
			continue
		}
		reported[a.Name] = true
		c.issue(a.Line, fmt.Sprintf("variable %s is not a setting and no hook uses it", a.Name), "nothing to do unless bin/backup read it")
	}
	for _, f := range c.f.Funcs {
		if !used[f.Name] && !hookFn[f.Name] && !reported[f.Name+"()"] {
			reported[f.Name+"()"] = true
			c.issue(f.Line, fmt.Sprintf("function %s() is not a hook and no hook calls it", f.Name), "nothing to do unless bin/backup called it")
		}
	}
}

// hclString writes s as an HCL quoted string that decodes to exactly s.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case (r == '$' || r == '%') && i+1 < len(s) && s[i+1] == '{':
			// "${" and "%{" open templates; "$${" and "%%{" are their literal forms.
			b.WriteRune(r)
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 || r == 0xfeff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
