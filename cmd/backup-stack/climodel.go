package main

import (
	"strings"

	"github.com/alecthomas/kong"
)

// cliCmd is a command of the CLI as the completion scripts and the manual
// page see it: read from kong's model, so that neither can drift from the
// parser. Hidden commands and flags are left out.
type cliCmd struct {
	name, help string
	flags      []cliFlag
	args       []cliArg
	sub        []cliCmd
}

// cliFlag is one flag; value is its placeholder ("" for a switch).
type cliFlag struct {
	long, help, value string
	short             rune
	enum              []string
	path              bool // the value is a file or directory
}

// cliArg is one positional argument and what completes it.
type cliArg struct {
	name, help string
	kind       argKind
	enum       []string
	optional   bool
	repeated   bool
}

type argKind int

const (
	argOther argKind = iota
	argStack         // a stack name: completed from `backup-stack list --names`
	argPath
	argEnum
)

// cliModel reads the visible part of kong's model.
func cliModel(app *kong.Application) cliCmd {
	return modelNode(app.Node)
}

func modelNode(n *kong.Node) cliCmd {
	c := cliCmd{name: n.Name, help: n.Help}
	if n.Type == kong.CommandNode {
		// kong puts --help on the application only, yet takes it after every command.
		c.flags = append(c.flags, cliFlag{long: "help", short: 'h', help: "Show context-sensitive help."})
	}
	for _, f := range n.Flags {
		if f.Hidden {
			continue
		}
		cf := cliFlag{long: f.Name, help: f.Help, short: f.Short}
		if !f.IsBool() && !f.IsCounter() {
			cf.value = f.FormatPlaceHolder()
			cf.path = isPathType(f.Tag.Type)
			if f.Enum != "" {
				cf.enum = f.EnumSlice()
			}
		}
		c.flags = append(c.flags, cf)
	}
	for _, p := range n.Positional {
		a := cliArg{name: p.Name, help: p.Help, optional: !p.Required, repeated: p.IsSlice()}
		switch {
		case p.Enum != "":
			a.kind, a.enum = argEnum, p.EnumSlice()
		case p.Name == "stack" || p.Name == "stacks":
			a.kind = argStack
		case isPathType(p.Tag.Type) || p.Name == "dir":
			a.kind = argPath
		}
		c.args = append(c.args, a)
	}
	for _, ch := range n.Children {
		if ch.Hidden || ch.Type != kong.CommandNode {
			continue
		}
		c.sub = append(c.sub, modelNode(ch))
	}
	return c
}

func isPathType(t string) bool {
	switch t {
	case "path", "existingfile", "existingdir", "file":
		return true
	}
	return false
}

// hiddenCommands names the commands --help leaves out (the unit steps).
func hiddenCommands(app *kong.Application) []string {
	var out []string
	for _, ch := range app.Children {
		if ch.Hidden {
			out = append(out, ch.Name)
		}
	}
	return out
}

// firstSentence shortens a help text for a one-line description.
func firstSentence(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// usageArgs is a command's arguments as a synopsis shows them: STACK [DIR] ...
func usageArgs(c cliCmd) string {
	var parts []string
	for _, a := range c.args {
		p := strings.ToUpper(a.name)
		if a.kind == argEnum {
			p = strings.Join(a.enum, "|")
		}
		if a.repeated {
			p += " ..."
		}
		if a.optional {
			p = "[" + p + "]"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}
