package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/backup-stack/backup-stack/internal/exitcode"
)

// ManCmd prints the manual page, generated from the CLI's own model.
type ManCmd struct{}

func (c *ManCmd) Run(kctx *kong.Context, app *App) error {
	if err := writeManPage(app.Stdout, kctx.Model); err != nil {
		return fmt.Errorf("writing the manual page: %w", err)
	}
	return nil
}

// manFiles are the FILES section: path, then what it is.
var manFiles = [][2]string{
	{"~/.config/backup-stack/config.hcl", "Global settings: the Duplicati route, defaults, notify, log_dir ($XDG_CONFIG_HOME is honoured)."},
	{"~/.config/backup-stack/stacks/*.hcl", "One file per stack; files starting with _ are ignored."},
	{"~/.local/state/backup-stack/plan/STACK.json", "The plan the gate froze for the stack's last backup ($XDG_STATE_HOME is honoured)."},
	{"~/.local/state/backup-stack/history/STACK.json", "The stack's last finished run."},
	{"$XDG_RUNTIME_DIR/backup-stack/slot", "The single backup slot."},
}

// writeManPage writes backup-stack(1) in roff (man(7) macros). It carries no
// date or version, so that the same CLI gives the same page (a golden file
// holds it).
func writeManPage(w io.Writer, app *kong.Application) error {
	m := cliModel(app)
	var b strings.Builder
	b.WriteString(".TH BACKUP-STACK 1 \"\" \"backup-stack\" \"User Commands\"\n")
	b.WriteString(".nh\n.ad l\n") // unit names and paths must not be hyphenated
	b.WriteString(".SH NAME\nbackup-stack \\- per-stack Duplicati backups of podman-compose stacks, driven by systemd user units\n")
	b.WriteString(".SH SYNOPSIS\n.B backup-stack\n")
	for _, f := range m.flags {
		f.short = 0 // the synopsis names each flag once
		fmt.Fprintf(&b, "[%s]\n", roffFlagUsage(f))
	}
	b.WriteString(".I COMMAND\n.RI [ FLAGS ]\n.RI [ ARGUMENTS ]\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roffText("backup-stack is the helper of the units backup-generator writes: backup@STACK.service " +
		"stops one stack (by starting backup-hold@STACK.service, whose Conflicts= make systemd stop it), runs its " +
		"Duplicati jobs until they have really finished, and restores what was running before. " +
		"The commands below are for people; the units run the steps listed at the end of COMMANDS."))
	b.WriteString("\n.PP\n")
	b.WriteString(roffText("Every command that takes a stack also takes its unit name (cryptpad-stack.service) when no stack " +
		"has exactly the name typed; after -- the name is taken as it is."))
	b.WriteString("\n.SH OPTIONS\n")
	for _, f := range m.flags {
		writeRoffFlag(&b, f)
	}
	b.WriteString(".SH COMMANDS\n")
	for _, c := range m.sub {
		fmt.Fprintf(&b, ".SS \"%s\"\n", roffEscape(strings.TrimSpace(c.name+" "+usageArgs(c))))
		b.WriteString(roffText(c.help) + "\n")
		for _, a := range c.args {
			if a.help == "" {
				continue
			}
			fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", roffEscape(strings.ToUpper(a.name)), roffText(a.help))
		}
		for _, f := range c.flags {
			if f.long == "help" {
				continue // every command has it; OPTIONS says so once
			}
			writeRoffFlag(&b, f)
		}
	}
	if hidden := hiddenCommands(app); len(hidden) > 0 {
		b.WriteString(".SS \"Steps run by the units\"\n")
		b.WriteString(roffText("Not listed by --help, and not meant to be typed: "+strings.Join(hidden, ", ")+
			". Each is a line of the generated backup@STACK.service (systemctl --user cat backup@STACK shows them); "+
			"backup-stack STEP --help describes one.") + "\n")
	}
	b.WriteString(".SH EXIT STATUS\n")
	for _, e := range exitcode.Table {
		fmt.Fprintf(&b, ".TP\n.B %d\n%s\n", e.Code, roffText(e.Meaning))
	}
	b.WriteString(".SH ENVIRONMENT\n")
	for _, e := range [][2]string{
		{"NO_COLOR", "When set to anything but the empty string, list prints no colours (unless --color=always)."},
		{"COLUMNS", "The width list fits its table into; else the terminal's width. Output that is not a terminal is not cut."},
		{"DUPLICATI_CONTAINER, DUPLICATI_RUN_TIMEOUT, DUPLICATI_WAIT_TIMEOUT", "Override config.hcl, as with the seed's bin/backup."},
	} {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", roffEscape(e[0]), roffText(e[1]))
	}
	b.WriteString(".SH FILES\n")
	for _, f := range manFiles {
		fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", roffEscape(f[0]), roffText(f[1]))
	}
	b.WriteString(".SH SEE ALSO\n")
	b.WriteString(".BR systemctl (1),\n.BR journalctl (1),\n.BR systemd.timer (5),\n.BR systemd.generator (7),\n.BR podman-compose (1)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRoffFlag(b *strings.Builder, f cliFlag) {
	b.WriteString(".TP\n")
	b.WriteString(roffFlagUsage(f) + "\n")
	text := f.help
	if len(f.enum) > 0 && !strings.Contains(text, f.enum[0]) {
		text += " One of: " + strings.Join(f.enum, ", ") + "."
	}
	b.WriteString(roffText(text) + "\n")
}

// roffFlagUsage is a flag in bold with its value in italics: \fB\-\-config\fR=\fIDIR\fR.
func roffFlagUsage(f cliFlag) string {
	s := `\fB\-\-` + roffEscape(f.long) + `\fR`
	if f.value != "" {
		s += `=\fI` + roffEscape(f.value) + `\fR`
	}
	if f.short != 0 {
		s = `\fB\-` + roffEscape(string(f.short)) + `\fR, ` + s
	}
	return s
}

// roffEscape makes s print as it is: a backslash is \e, a hyphen \- (so
// that options can be searched for and copied), and nothing can start a
// request.
func roffEscape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// roffText is a paragraph: escaped, each line guarded against a leading
// dot or quote that roff would read as a request.
func roffText(s string) string {
	lines := strings.Split(roffEscape(strings.TrimSpace(s)), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
