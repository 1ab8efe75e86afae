package hcl

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"golang.org/x/text/unicode/norm"

	"github.com/backup-stack/backup-stack/internal/systemd"
)

var stackFileSchema = &hhcl.BodySchema{
	Blocks: []hhcl.BlockHeaderSchema{{Type: "stack", LabelNames: []string{"name"}}},
}

var stackSchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{
		{Name: "unit"},
		{Name: "project_label"},
		{Name: "jobs", Required: true},
		{Name: "schedule"},
		{Name: "restore_policy"},
		{Name: "stop_timeout"},
		{Name: "start_timeout"},
		{Name: "wait_timeout"},
		{Name: "require_paths"},
	},
	Blocks: []hhcl.BlockHeaderSchema{
		{Type: "on_demand"},
		{Type: "snapshot"},
		{Type: "hook", LabelNames: []string{"kind"}},
		{Type: "notify"},
		{Type: "healthcheck"},
	},
}

var notifySchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{
		{Name: "on_failure"},
		{Name: "on_success"},
	},
}

var healthcheckSchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{{Name: "url", Required: true}},
}

var snapshotSchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{
		{Name: "paths", Required: true},
		{Name: "method"},
		{Name: "into"},
		{Name: "timeout"},
	},
}

var onDemandSchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{
		{Name: "socket", Required: true},
		{Name: "service"},
	},
}

var hookSchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{
		{Name: "command", Required: true},
		{Name: "ignore_failure"},
		{Name: "timeout"},
	},
}

var configSchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{{Name: "log_dir"}, {Name: "metrics_file"}},
	Blocks: []hhcl.BlockHeaderSchema{
		{Type: "duplicati"},
		{Type: "defaults"},
		{Type: "notify"},
		{Type: "healthcheck"},
	},
}

var duplicatiSchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{
		{Name: "container"},
		{Name: "server_util"},
		{Name: "run_timeout"},
		{Name: "wait_timeout"},
		{Name: "poll_interval"},
		{Name: "url"},
		{Name: "password_file"},
		{Name: "token_file"},
		{Name: "exec_user"},
		{Name: "warning_is_failure"},
		{Name: "ca_file"},
	},
}

var defaultsSchema = &hhcl.BodySchema{
	Attributes: []hhcl.AttributeSchema{
		{Name: "schedule"},
		{Name: "restore_policy"},
	},
}

// decoder collects diagnostics while decoding one file.
type decoder struct {
	diags hhcl.Diagnostics
	src   []byte     // the file's bytes, to use strings as written (see asWritten)
	arena *nodeArena // where plainContent takes its attributes and blocks (nil: new ones)
}

func (d *decoder) errorf(rng hhcl.Range, summary, detailFmt string, args ...any) {
	d.add(hhcl.DiagError, rng, summary, fmt.Sprintf(detailFmt, args...))
}

func (d *decoder) warnf(rng hhcl.Range, summary, detailFmt string, args ...any) {
	d.add(hhcl.DiagWarning, rng, summary, fmt.Sprintf(detailFmt, args...))
}

func (d *decoder) add(sev hhcl.DiagnosticSeverity, rng hhcl.Range, summary, detail string) {
	d.diags = append(d.diags, &hhcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: &rng})
}

func (d *decoder) content(body hhcl.Body, schema *hhcl.BodySchema) *hhcl.BodyContent {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if c := plainContent(sb, schema, d.arena); c != nil {
			return c
		}
	}
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	return c
}

// plainContent is body.Content(schema) for a body that holds only what
// schema allows (every attribute and block known, every block with its
// labels, every required attribute there), the common case, where Content
// finds nothing to say: the same content, without the four maps that
// hclsyntax's PartialContent makes at every call to find what to complain
// about. It returns nil for any other body; Content then gives the
// diagnostics (TestPlainContentAsHCL).
func plainContent(b *hclsyntax.Body, schema *hhcl.BodySchema, arena *nodeArena) *hhcl.BodyContent {
	for name := range b.Attributes {
		if !slices.ContainsFunc(schema.Attributes, func(a hhcl.AttributeSchema) bool { return a.Name == name }) {
			return nil
		}
	}
	for _, a := range schema.Attributes {
		if _, ok := b.Attributes[a.Name]; a.Required && !ok {
			return nil
		}
	}
	for _, blk := range b.Blocks {
		if !slices.ContainsFunc(schema.Blocks, func(s hhcl.BlockHeaderSchema) bool {
			return s.Type == blk.Type && len(s.LabelNames) == len(blk.Labels)
		}) {
			return nil
		}
	}
	c := &hhcl.BodyContent{Attributes: make(hhcl.Attributes, len(b.Attributes)), MissingItemRange: b.MissingItemRange()}
	if arena == nil {
		arena = &nodeArena{}
	}
	attrs := arena.hattrs.takeN(len(b.Attributes))[:0]
	for name, a := range b.Attributes {
		attrs = append(attrs, hhcl.Attribute{Name: a.Name, Expr: a.Expr, Range: a.SrcRange, NameRange: a.NameRange})
		c.Attributes[name] = &attrs[len(attrs)-1]
	}
	if len(b.Blocks) > 0 {
		blocks := arena.hblocks.takeN(len(b.Blocks))
		c.Blocks = make(hhcl.Blocks, len(b.Blocks))
		for i, blk := range b.Blocks {
			blocks[i] = hhcl.Block{Type: blk.Type, Labels: blk.Labels, Body: blk.Body, DefRange: blk.DefRange(), TypeRange: blk.TypeRange, LabelRanges: blk.LabelRanges}
			c.Blocks[i] = &blocks[i]
		}
	}
	return c
}

// value decodes attribute name into target (a pointer) when present and
// reports whether it was present and decoded without error.
func (d *decoder) value(attrs hhcl.Attributes, name string, target any) (*hhcl.Attribute, bool) {
	a, ok := attrs[name]
	if !ok {
		return nil, false
	}
	diags := decodeExpr(a.Expr, target)
	d.diags = append(d.diags, diags...)
	return a, !diags.HasErrors()
}

// str decodes a string attribute that must not be empty when set.
func (d *decoder) str(attrs hhcl.Attributes, name string, dst *string, allowEmpty bool) *hhcl.Attribute {
	var s string
	a, ok := d.value(attrs, name, &s)
	if !ok {
		return nil
	}
	if !allowEmpty && strings.TrimSpace(s) == "" {
		d.errorf(a.Expr.Range(), "Empty value", "%s must not be empty; remove the line to use the default.", name)
		return nil
	}
	if strings.ContainsAny(s, "\x00\n\r") {
		d.errorf(a.Expr.Range(), "Invalid characters", "%s must not contain a newline or NUL character.", name)
		return nil
	}
	*dst = d.asWritten(a.Expr, s, name, -1)
	return a
}

func (d *decoder) duration(attrs hhcl.Attributes, name string, dst *time.Duration) {
	var s string
	a, ok := d.value(attrs, name, &s)
	if !ok {
		return
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || v <= 0 {
		d.errorf(a.Expr.Range(), "Invalid duration",
			"%s = %q is not a positive duration; write it like \"90s\", \"2m\", \"1h30m\" or \"6h\".", name, s)
		return
	}
	*dst = v
}

func (d *decoder) stringList(attrs hhcl.Attributes, name string, dst *[]string) *hhcl.Attribute {
	var l []string
	a, ok := d.value(attrs, name, &l)
	if !ok {
		return nil
	}
	tuple, _ := a.Expr.(*hclsyntax.TupleConsExpr)
	for i, s := range l {
		if strings.ContainsRune(s, 0) {
			d.errorf(elemRange(a, i), "Invalid characters", "%s[%d] must not contain a NUL character.", name, i)
			return nil
		}
		if tuple != nil && i < len(tuple.Exprs) {
			l[i] = d.asWritten(tuple.Exprs[i], s, name, i)
		}
	}
	*dst = l
	return a
}

// asWritten returns a string literal as the file spells it. HCL's parser normalises every
// string to Unicode NFC, so a path written in NFD (as macOS and some tools create names)
// would name another file than the one on disk; where the literal has no escapes or
// templates, its bytes are used as written. Where they cannot be (escapes), a warning says
// what is used instead, naming the attribute, and its list element when idx is not
// negative.
func (d *decoder) asWritten(expr hhcl.Expression, decoded, name string, idx int) string {
	te, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || len(te.Parts) != 1 || len(d.src) == 0 {
		return decoded
	}
	lit, ok := te.Parts[0].(*hclsyntax.LiteralValueExpr)
	if !ok {
		return decoded
	}
	r := lit.SrcRange
	if r.Start.Byte < 0 || r.End.Byte > len(d.src) || r.Start.Byte > r.End.Byte {
		return decoded
	}
	rawBytes := d.src[r.Start.Byte:r.End.Byte]
	if string(rawBytes) == decoded || norm.NFC.IsNormal(rawBytes) { // the common case, without a copy
		return decoded
	}
	raw := string(rawBytes)
	if strings.ContainsAny(raw, `\$%`) {
		what := name
		if idx >= 0 {
			what = fmt.Sprintf("%s[%d]", name, idx)
		}
		d.warnf(expr.Range(), "Unicode normalised", "%s is written in a decomposed Unicode form (not NFC) together with escapes or $ or %%; HCL normalises it, so %q is used, which may name another file than the one you meant; write it without escapes to use it byte for byte.", what, decoded)
		return decoded
	}
	if norm.NFC.String(raw) != decoded {
		return decoded
	}
	return raw
}

// ParseConfig decodes config.hcl from src. A nil src gives the defaults.
func ParseConfig(filename string, src []byte) (*Config, hhcl.Diagnostics) {
	cfg := &Config{
		File: filename,
		Duplicati: Duplicati{
			Container:    DefaultContainer,
			ServerUtil:   DefaultServerUtil,
			RunTimeout:   DefaultRunTimeout,
			WaitTimeout:  DefaultWaitTimeout,
			PollInterval: DefaultPollInterval,
		},
		Defaults: Defaults{RestorePolicy: RestorePrevious},
	}
	if src == nil {
		cfg.File = ""
		return cfg, nil
	}
	f, diags := parse(src, filename)
	if diags.HasErrors() {
		return cfg, diags
	}
	d := &decoder{diags: diags, src: src}
	c := d.content(f.Body, configSchema)
	if c == nil {
		return cfg, d.diags
	}
	if a := d.str(c.Attributes, "log_dir", &cfg.LogDir, false); a != nil {
		cfg.LogDir = expandHome(cfg.LogDir)
	}
	if a := d.str(c.Attributes, "metrics_file", &cfg.MetricsFile, false); a != nil {
		cfg.MetricsFile = expandHome(cfg.MetricsFile)
		if !filepath.IsAbs(cfg.MetricsFile) {
			d.errorf(a.Expr.Range(), "Invalid path", "metrics_file = %q must be an absolute path (or start with ~/), e.g. \"/var/lib/node_exporter/textfile/backup-stack.prom\".", cfg.MetricsFile)
		}
	}
	seen := map[string]hhcl.Range{}
	for _, b := range c.Blocks {
		if prev, dup := seen[b.Type]; dup {
			d.errorf(b.DefRange, "Duplicate block", "only one %s block is allowed; the first is at %s.", b.Type, prev)
			continue
		}
		seen[b.Type] = b.DefRange
		switch b.Type {
		case "duplicati":
			d.decodeDuplicati(b.Body, &cfg.Duplicati)
		case "notify":
			cfg.Notify = d.decodeNotify(b)
		case "healthcheck":
			cfg.Healthcheck = d.decodeHealthcheck(b)
		case "defaults":
			bc := d.content(b.Body, defaultsSchema)
			if bc == nil {
				continue
			}
			if a := d.str(bc.Attributes, "schedule", &cfg.Defaults.Schedule, true); a != nil {
				d.checkSchedule(a, cfg.Defaults.Schedule)
			}
			if a := d.str(bc.Attributes, "restore_policy", &cfg.Defaults.RestorePolicy, false); a != nil {
				d.checkPolicy(a, cfg.Defaults.RestorePolicy)
			}
		}
	}
	return cfg, d.diags
}

func (d *decoder) decodeDuplicati(body hhcl.Body, dup *Duplicati) {
	c := d.content(body, duplicatiSchema)
	if c == nil {
		return
	}
	if a := d.str(c.Attributes, "container", &dup.Container, false); a != nil {
		if err := CheckContainer(dup.Container); err != nil {
			d.errorf(a.Expr.Range(), "Invalid container", "%v.", err)
		}
	}
	if a := d.str(c.Attributes, "server_util", &dup.ServerUtil, false); a != nil {
		if err := CheckServerUtil(dup.ServerUtil); err != nil {
			d.errorf(a.Expr.Range(), "Invalid server_util", "%v.", err)
		}
	}
	if a := d.str(c.Attributes, "exec_user", &dup.ExecUser, false); a != nil {
		if err := CheckExecUser(dup.ExecUser); err != nil {
			d.errorf(a.Expr.Range(), "Invalid exec_user", "%v.", err)
		}
	}
	d.duration(c.Attributes, "run_timeout", &dup.RunTimeout)
	d.duration(c.Attributes, "wait_timeout", &dup.WaitTimeout)
	d.duration(c.Attributes, "poll_interval", &dup.PollInterval)
	urlAttr := d.str(c.Attributes, "url", &dup.URL, false)
	if urlAttr != nil {
		if !strings.HasPrefix(dup.URL, "http://") && !strings.HasPrefix(dup.URL, "https://") {
			d.errorf(urlAttr.Expr.Range(), "Invalid URL", "url = %q must start with http:// or https://, e.g. \"http://127.0.0.1:8200\".", dup.URL)
		}
	}
	d.secretFile(c.Attributes, "password_file", &dup.PasswordFile)
	d.secretFile(c.Attributes, "token_file", &dup.TokenFile)
	var b bool
	if _, ok := d.value(c.Attributes, "warning_is_failure", &b); ok {
		dup.WarningIsFailure = b
	}
	d.checkCredentials(c.Attributes, urlAttr)
	d.decodeTransport(c.Attributes, urlAttr, dup)
}

// secretFile decodes password_file or token_file: a path, "~/" expanded,
// that must be absolute (the helper runs with whatever working directory
// the unit has). Only the path is kept; the helper reads the file.
func (d *decoder) secretFile(attrs hhcl.Attributes, name string, dst *string) {
	a := d.str(attrs, name, dst, false)
	if a == nil {
		return
	}
	*dst = expandHome(*dst)
	if !filepath.IsAbs(*dst) {
		d.errorf(a.Expr.Range(), "Invalid path", "%s = %q must be an absolute path (or start with ~/), e.g. \"~/.config/backup-stack/%s\".",
			name, *dst, map[string]string{"password_file": "duplicati-password", "token_file": "duplicati-token"}[name])
	}
}

// checkCredentials enforces the REST route's credentials rule: url needs
// exactly one of password_file and token_file, and those (and exec_user)
// belong to one route only. urlAttr is the url attribute when it decoded.
func (d *decoder) checkCredentials(attrs hhcl.Attributes, urlAttr *hhcl.Attribute) {
	pw, hasPW := attrs["password_file"]
	tok, hasTok := attrs["token_file"]
	if hasPW && hasTok {
		first, second := pw, tok
		if tok.Range.Start.Byte < pw.Range.Start.Byte {
			first, second = tok, pw
		}
		d.errorf(second.NameRange, "Conflicting credentials",
			"password_file and token_file are both set (%s at %s); choose one: token_file = \"...\" for a --webservice-pre-auth-tokens token (Duplicati 2.1.2.0 and later), or password_file = \"...\" for the web UI password.",
			first.Name, first.NameRange)
	}
	_, hasURL := attrs["url"]
	if urlAttr != nil && !hasPW && !hasTok {
		d.errorf(urlAttr.NameRange, "Missing credentials",
			"url needs password_file or token_file: Duplicati 2.1 and later always have a password (a random one when none was set) and refuse an empty password, so the REST route can never log in without one; set password_file = \"~/.config/backup-stack/duplicati-password\" (a file with the web UI password) or token_file = \"~/.config/backup-stack/duplicati-token\" (a --webservice-pre-auth-tokens token, Duplicati 2.1.2.0 and later).")
	}
	if hasURL {
		if eu, ok := attrs["exec_user"]; ok {
			d.warnf(eu.NameRange, "Unused exec_user",
				"exec_user is only used by the exec route (podman exec), and url selects the REST route; remove exec_user, or url to use the exec route.")
		}
		return
	}
	for _, a := range []*hhcl.Attribute{pw, tok} {
		if a != nil {
			d.warnf(a.NameRange, "Unused "+a.Name,
				"%s is only used by the REST route, which url = \"http://127.0.0.1:8200\" selects; the exec route (podman exec) ignores it. Set url, or remove %s.", a.Name, a.Name)
		}
	}
}

// ParseStack decodes one stack file. The stack inherits the defaults of
// cfg. It returns nil when the file has errors: a half-understood stack is
// never generated.
func ParseStack(filename string, src []byte, cfg *Config) (*Stack, hhcl.Diagnostics) {
	return parseStack(filename, src, cfg, nil)
}

// parseStack is ParseStack with the syntax tree's nodes taken from arena.
func parseStack(filename string, src []byte, cfg *Config, arena *nodeArena) (*Stack, hhcl.Diagnostics) {
	if arena == nil {
		arena = &nodeArena{} // one for the parse and the decoder's content both
	}
	f, diags := parseIn(src, filename, arena)
	if diags.HasErrors() {
		return nil, diags
	}
	d := &decoder{diags: diags, src: src, arena: arena}
	d.checkFileName(filename)
	c := d.content(f.Body, stackFileSchema)
	if c == nil {
		return nil, d.diags
	}
	if len(c.Blocks) == 0 {
		d.errorf(f.Body.MissingItemRange(), "No stack block",
			"a stack file must contain one block like: stack %q { jobs = [\"...\"] }", stemOf(filename))
		return nil, d.diags
	}
	for _, extra := range c.Blocks[1:] {
		d.errorf(extra.DefRange, "More than one stack in a file",
			"each stack lives in its own file; move stack %q to stacks/%s.hcl.", extra.Labels[0], extra.Labels[0])
	}
	st := d.decodeStack(c.Blocks[0], cfg)
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	st.File = filename
	return st, d.diags
}

func (d *decoder) decodeStack(b *hhcl.Block, cfg *Config) *Stack {
	name := b.Labels[0]
	st := &Stack{
		Name:          name,
		Unit:          name + "-stack.service",
		ProjectLabel:  name,
		Schedule:      cfg.Defaults.Schedule,
		RestorePolicy: cfg.Defaults.RestorePolicy,
		StopTimeout:   DefaultStopTimeout,
		StartTimeout:  DefaultStartTimeout,
		WaitTimeout:   cfg.Duplicati.WaitTimeout,
		Notify:        cfg.Notify,
		Healthcheck:   cfg.Healthcheck,
		Range:         b.DefRange,
	}
	if err := systemd.CheckStackName(name); err != nil {
		d.errorf(b.LabelRanges[0], "Invalid stack name",
			"%v: it becomes the instance in backup@<name>.service and an argument of backup-stack on every line of its units, where a name such as -h or --help would be read as an option; rename the stack and its file.", err)
	}
	c := d.content(b.Body, stackSchema)
	if c == nil {
		return st
	}
	if a := d.str(c.Attributes, "unit", &st.Unit, false); a != nil {
		d.checkUnit(a, st.Unit, ".service")
	}
	if a := d.str(c.Attributes, "project_label", &st.ProjectLabel, false); a != nil {
		if strings.ContainsAny(st.ProjectLabel, "\x00\n\r") {
			d.errorf(a.Expr.Range(), "Invalid project_label", "project_label must be a plain label value.")
		}
	}
	if a := d.stringList(c.Attributes, "jobs", &st.Jobs); a != nil {
		if len(st.Jobs) == 0 {
			d.errorf(a.Expr.Range(), "No jobs", "jobs must name at least one Duplicati backup (its name or ID), e.g. jobs = [%q].", name)
		}
		for i, j := range st.Jobs {
			if strings.TrimSpace(j) == "" || strings.ContainsAny(j, "\n\r") {
				d.errorf(a.Expr.Range(), "Invalid job", "jobs[%d] = %q is not a Duplicati backup name or ID.", i, j)
			}
		}
	}
	if a := d.str(c.Attributes, "schedule", &st.Schedule, true); a != nil {
		d.checkSchedule(a, st.Schedule)
	}
	if a := d.str(c.Attributes, "restore_policy", &st.RestorePolicy, false); a != nil {
		d.checkPolicy(a, st.RestorePolicy)
	}
	d.duration(c.Attributes, "stop_timeout", &st.StopTimeout)
	d.duration(c.Attributes, "start_timeout", &st.StartTimeout)
	d.duration(c.Attributes, "wait_timeout", &st.WaitTimeout)
	if a := d.stringList(c.Attributes, "require_paths", &st.RequirePaths); a != nil {
		for i, p := range st.RequirePaths {
			if !filepath.IsAbs(p) || strings.ContainsAny(p, "\n\r") {
				d.errorf(a.Expr.Range(), "Invalid path", "require_paths[%d] = %q must be an absolute path such as \"/mnt/backup\".", i, p)
			}
		}
	}
	var onDemandSeen *hhcl.Range
	seenOnce := map[string]hhcl.Range{}
	for _, blk := range c.Blocks {
		if blk.Type == "notify" || blk.Type == "healthcheck" || blk.Type == "snapshot" {
			if prev, dup := seenOnce[blk.Type]; dup {
				d.errorf(blk.DefRange, "Duplicate block", "only one %s block is allowed; the first is at %s.", blk.Type, prev)
				continue
			}
			seenOnce[blk.Type] = blk.DefRange
		}
		switch blk.Type {
		case "notify":
			// The stack's own block replaces the global one as a whole.
			st.Notify = d.decodeNotify(blk)
		case "healthcheck":
			st.Healthcheck = d.decodeHealthcheck(blk)
		case "snapshot":
			st.Snapshot = d.decodeSnapshot(blk)
		case "on_demand":
			if onDemandSeen != nil {
				d.errorf(blk.DefRange, "Duplicate block", "only one on_demand block is allowed; the first is at %s.", onDemandSeen)
				continue
			}
			onDemandSeen = &blk.DefRange
			st.OnDemand = d.decodeOnDemand(blk)
		case "hook":
			if h, ok := d.decodeHook(blk); ok {
				st.Hooks = append(st.Hooks, h)
			}
		}
	}
	return st
}

func (d *decoder) decodeNotify(b *hhcl.Block) *Notify {
	c := d.content(b.Body, notifySchema)
	if c == nil {
		return nil
	}
	n := &Notify{}
	for _, name := range []string{"on_failure", "on_success"} {
		var argv []string
		a := d.stringList(c.Attributes, name, &argv)
		if a == nil {
			continue
		}
		if len(argv) == 0 {
			d.errorf(a.Expr.Range(), "Empty command", "%s must be a list with the program first, e.g. [\"ntfy\", \"publish\", \"backups\", \"failed\"]; remove it to send nothing.", name)
			continue
		}
		if !d.plainCommand(a, argv) {
			continue
		}
		if name == "on_failure" {
			n.OnFailure = argv
		} else {
			n.OnSuccess = argv
		}
	}
	return n
}

func (d *decoder) decodeHealthcheck(b *hhcl.Block) *Healthcheck {
	c := d.content(b.Body, healthcheckSchema)
	if c == nil {
		return nil
	}
	h := &Healthcheck{}
	if a := d.str(c.Attributes, "url", &h.URL, false); a != nil {
		if !strings.HasPrefix(h.URL, "http://") && !strings.HasPrefix(h.URL, "https://") {
			// The value is not echoed: a ping URL is as good as a password.
			d.errorf(a.Expr.Range(), "Invalid URL", "healthcheck url must start with https:// (or http://), e.g. \"https://hc-ping.com/<uuid>\".")
			return nil
		}
	}
	return h
}

// decodeSnapshot decodes the snapshot block. What only the file systems can
// tell (a subvolume, reflinks, free space) is checked by the gate, before
// the stack stops, and by `backup-stack check`.
func (d *decoder) decodeSnapshot(b *hhcl.Block) *Snapshot {
	c := d.content(b.Body, snapshotSchema)
	if c == nil {
		return nil
	}
	sn := &Snapshot{Method: SnapshotMethods[0], Into: DefaultSnapshotDir(), Timeout: DefaultSnapshotTimeout, Range: b.DefRange}
	ok := true
	if a := d.stringList(c.Attributes, "paths", &sn.Paths); a != nil {
		if len(sn.Paths) == 0 {
			d.errorf(a.Expr.Range(), "No snapshot paths", "paths must list the stack's data directories, e.g. paths = [\"~/podman-compose/nextcloud/data\"].")
			ok = false
		}
		seen := map[string]int{}
		for i, p := range sn.Paths {
			p = expandHome(p)
			sn.Paths[i] = p
			if !d.plainPath(elemRange(a, i), fmt.Sprintf("paths[%d]", i), p) {
				ok = false
				continue
			}
			if j, dup := seen[filepath.Clean(p)]; dup {
				d.errorf(elemRange(a, i), "Duplicate snapshot path", "paths[%d] and paths[%d] are the same path %q; list it once.", j, i, p)
				ok = false
			}
			seen[filepath.Clean(p)] = i
		}
	} else {
		ok = false
	}
	if a := d.str(c.Attributes, "method", &sn.Method, false); a != nil {
		if !slices.Contains(SnapshotMethods, sn.Method) {
			d.errorf(a.Expr.Range(), "Unknown snapshot method",
				"method = %q; use \"auto\" (a btrfs snapshot where the path is a subvolume, else a reflink copy), \"btrfs\", \"reflink\" or \"copy\" (a full copy).", sn.Method)
			ok = false
		}
	}
	if a := d.str(c.Attributes, "into", &sn.Into, false); a != nil {
		sn.Into = expandHome(sn.Into)
		if !d.plainPath(a.Expr.Range(), "into", sn.Into) {
			ok = false
		}
	}
	d.duration(c.Attributes, "timeout", &sn.Timeout)
	if !ok {
		return nil
	}
	return sn
}

// plainPath checks a path of the snapshot block: absolute, clean of
// control characters (it is an argument of cp and btrfs, and a line of the
// plan), and not the root directory.
func (d *decoder) plainPath(rng hhcl.Range, what, p string) bool {
	switch {
	case !filepath.IsAbs(p):
		d.errorf(rng, "Invalid path", "%s = %q must be an absolute path, or start with \"~/\".", what, p)
	case strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		d.errorf(rng, "Invalid path", "%s = %q holds a control character.", what, p)
	case filepath.Clean(p) == "/":
		d.errorf(rng, "Invalid path", "%s cannot be the root directory.", what)
	default:
		return true
	}
	return false
}

func (d *decoder) decodeOnDemand(b *hhcl.Block) *OnDemand {
	c := d.content(b.Body, onDemandSchema)
	if c == nil {
		return nil
	}
	od := &OnDemand{}
	if a := d.str(c.Attributes, "socket", &od.Socket, false); a != nil {
		d.checkUnit(a, od.Socket, ".socket")
	}
	if a := d.str(c.Attributes, "service", &od.Service, false); a != nil {
		d.checkUnit(a, od.Service, ".service")
	}
	return od
}

func (d *decoder) decodeHook(b *hhcl.Block) (Hook, bool) {
	h := Hook{Kind: b.Labels[0], Range: b.DefRange, Timeout: DefaultHookTimeout}
	ok := true
	if !validHookKind(h.Kind) {
		d.errorf(b.LabelRanges[0], "Unknown hook kind",
			"hook %q is not a hook kind; use one of %s.", h.Kind, strings.Join(HookKinds, ", "))
		ok = false
	}
	c := d.content(b.Body, hookSchema)
	if c == nil {
		return h, false
	}
	if a := d.stringList(c.Attributes, "command", &h.Command); a != nil {
		if len(h.Command) == 0 || strings.TrimSpace(h.Command[0]) == "" {
			d.errorf(a.Expr.Range(), "Empty hook command",
				"command must be a list with the program first, e.g. [\"podman\", \"exec\", \"app\", \"true\"].")
			ok = false
		} else if !d.hookCommand(a, h.Command) {
			// Every hook's command reaches the backup unit's drop-in: the
			// ExecStartPre= line of its step, or the X-FinishHook= list.
			ok = false
		}
	} else {
		ok = false
	}
	var ig bool
	if _, present := d.value(c.Attributes, "ignore_failure", &ig); present {
		h.IgnoreFailure = ig
	}
	d.duration(c.Attributes, "timeout", &h.Timeout)
	return h, ok
}

func (d *decoder) checkPolicy(a *hhcl.Attribute, p string) {
	if p != RestorePrevious && p != RestoreAlways {
		d.errorf(a.Expr.Range(), "Unknown restore policy",
			"restore_policy = %q; use \"previous\" (start again what was active) or \"always\".", p)
	}
}

// checkSchedule applies the renderer's check of OnCalendar=
// (systemd.CalendarValue). An empty (or blank) schedule means none.
func (d *decoder) checkSchedule(a *hhcl.Attribute, s string) {
	if strings.TrimSpace(s) == "" {
		return
	}
	if _, err := systemd.CalendarValue(s); err != nil {
		d.errorf(a.Expr.Range(), "Invalid schedule",
			"schedule must be one line of systemd calendar syntax, e.g. \"*-*-* 03:30:00\" or \"daily\": %v.", err)
	}
}

// unitRuleSummaries are the diagnostics' summaries of the rules of
// systemd.CheckStackUnit.
var unitRuleSummaries = map[string]string{
	"name":    "Invalid unit name",
	"special": "Special unit",
	"own":     "Reserved unit name",
	"option":  "Invalid unit name",
	"type":    "Wrong unit type",
}

// checkUnit applies systemd.CheckStackUnit: a valid unit name of type
// wantSuffix that a backup may stop.
func (d *decoder) checkUnit(a *hhcl.Attribute, name, wantSuffix string) {
	err := systemd.CheckStackUnit(name, wantSuffix)
	if err == nil {
		return
	}
	summary := "Invalid unit name"
	var ue *systemd.StackUnitError
	if errors.As(err, &ue) {
		summary = unitRuleSummaries[ue.Rule]
	}
	d.errorf(a.Expr.Range(), summary, "%s: %v.", a.Name, err)
}

func validHookKind(k string) bool {
	for _, h := range HookKinds {
		if h == k {
			return true
		}
	}
	return false
}

func stemOf(filename string) string {
	return strings.TrimSuffix(filepath.Base(filename), filepath.Ext(filename))
}
