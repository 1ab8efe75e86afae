package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// userError is Duplicati's UserReportedException: message on stdout, exit code 2.
type userError struct{ msg string }

func (e userError) Error() string { return e.msg }

// dotnetError is any other exception (exit code 1); text is what ex.ToString() starts with.
type dotnetError struct{ typ, msg string }

func (e dotnetError) Error() string { return e.typ + ": " + e.msg }

// exMessage is ex.Message: the text without the exception type.
func exMessage(err error) string {
	switch e := err.(type) {
	case userError:
		return e.msg
	case dotnetError:
		return e.msg
	}
	return err.Error()
}

// output mimics OutputInterceptor: plain lines on stdout, or one JSON envelope with --json.
// Before 2.1.2.0 there is no interceptor and no final serialised result (trailing = false).
type output struct {
	w          io.Writer
	json       bool
	trailing   bool // print Console.WriteLine(GetSerializedResult()) at the end
	command    string
	messages   []string
	exceptions []string
	custom     []kv
	exitCode   int // OutputInterceptor.ExitCode (the envelope's)
	success    bool
}

type kv struct {
	k string
	v any
}

// msg is AppendConsoleMessage. In --json mode an empty message is not collected but written
// straight to the console (the real `if (JsonOutputMode && !string.IsNullOrEmpty(message))`).
func (o *output) msg(format string, a ...any) {
	s := format
	if len(a) > 0 {
		s = fmt.Sprintf(format, a...)
	}
	if o.json && s != "" {
		o.messages = append(o.messages, s)
		return
	}
	fmt.Fprintln(o.w, s)
}

// write is Console.Write (no newline, never collected), e.g. the password prompt.
func (o *output) write(s string) { fmt.Fprint(o.w, s) }

func (o *output) set(k string, v any) {
	for i := range o.custom {
		if o.custom[i].k == k {
			o.custom[i].v = v
			return
		}
	}
	o.custom = append(o.custom, kv{k, v})
}

// fail records an error the way Program.cs does and returns the process exit code.
func (o *output) fail(err error) int {
	code := 1
	text := err.Error()
	if ue, ok := err.(userError); ok {
		code, text = 2, ue.msg
	}
	o.success = false
	o.exitCode = code
	if o.json {
		o.exceptions = append(o.exceptions, text)
	} else {
		fmt.Fprintln(o.w, text)
	}
	return code
}

// finish prints the serialised result: an empty line in plain mode (Console.WriteLine(null)),
// the indented envelope in --json mode; nothing before 2.1.2.0.
func (o *output) finish() {
	if !o.trailing {
		return
	}
	if !o.json {
		fmt.Fprintln(o.w)
		return
	}
	now := time.Now()
	fields := []kv{
		{"Timestamp", now.Format("2006-01-02T15:04:05.0000000-07:00")},
		{"UnixTimestamp", now.Unix()},
		{"Command", o.command},
		{"Success", o.success},
		{"ExitCode", o.exitCode},
		{"Messages", nonNil(o.messages)},
		{"Exceptions", nonNil(o.exceptions)},
	}
	for _, c := range o.custom {
		v := c.v
		if v == nil {
			v = "" // result[kvp.Key] = kvp.Value ?? string.Empty
		}
		fields = append(fields, kv{c.k, v})
	}
	var b strings.Builder
	b.WriteString("{\n")
	for i, f := range fields {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("  ", "  ")
		_ = enc.Encode(f.v)
		fmt.Fprintf(&b, "  %q: %s", f.k, strings.TrimRight(buf.String(), "\n"))
		if i < len(fields)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}")
	fmt.Fprintln(o.w, b.String())
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
