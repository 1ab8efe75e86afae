package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const defaultHostURL = "http://127.0.0.1:8200"

// utilArgs is the parsed command line of the stand-in util.
type utilArgs struct {
	hostURL      string
	password     *string
	json         bool
	command      string
	positional   []string
	wait         bool
	skipQueue    bool
	quiet        bool
	pollInterval int
}

// Options that take a value; bool options may be given bare.
var (
	globalValueOpts = map[string]bool{"--hosturl": true, "--password": true, "--server-datafolder": true,
		"--settings-file": true, "--settings-encryption-key": true, "--secret-provider": true,
		"--secret-provider-cache": true, "--secret-provider-pattern": true, "--host-cert": true}
	globalBoolOpts = map[string]bool{"--json": true, "--portable-mode": true, "--insecure": true,
		"--allow-insecure-datafolder": true, "--ignore-revocation-failure": true}
	commandOpts = map[string]map[string]bool{ // option -> takes value
		"status":       {},
		"health":       {},
		"list-backups": {"--detailed": false},
		"run":          {"--wait": false, "--skip-queue": false, "--quiet": false, "--poll-interval": true},
	}
	commandArgs = map[string]int{"status": 0, "health": 0, "list-backups": 0, "run": 1}
)

// parseUtilArgs parses like System.CommandLine: options anywhere, "--opt value", "--opt=value"
// or "--opt:value". Errors are usage errors (stderr, exit 1).
func parseUtilArgs(args []string) (utilArgs, error) {
	a := utilArgs{pollInterval: 5}
	values := map[string]string{}
	bools := map[string]bool{}
	var rest []string
	for i := 0; i < len(args); i++ {
		tok := args[i]
		if !strings.HasPrefix(tok, "--") || tok == "--" {
			rest = append(rest, tok)
			continue
		}
		name, val, hasVal := strings.Cut(tok, "=")
		if !hasVal {
			name, val, hasVal = strings.Cut(tok, ":")
		}
		takesValue, known := globalValueOpts[name], globalValueOpts[name] || globalBoolOpts[name]
		if !known {
			for _, opts := range commandOpts {
				if tv, ok := opts[name]; ok {
					takesValue, known = tv, true
				}
			}
		}
		if !known {
			return a, fmt.Errorf("Unrecognized command or argument '%s'.", tok)
		}
		if takesValue {
			if !hasVal {
				if i+1 >= len(args) {
					return a, fmt.Errorf("Required argument missing for option: '%s'.", name)
				}
				i++
				val = args[i]
			}
			values[name] = val
			continue
		}
		b := true
		if !hasVal && i+1 < len(args) && (strings.EqualFold(args[i+1], "true") || strings.EqualFold(args[i+1], "false")) {
			i++
			val, hasVal = args[i], true
		}
		if hasVal {
			var err error
			if b, err = strconv.ParseBool(val); err != nil {
				return a, fmt.Errorf("Cannot parse argument '%s' for option '%s' as expected type 'System.Boolean'.", val, name)
			}
		}
		bools[name] = b
	}
	if len(rest) == 0 {
		return a, fmt.Errorf("Required command was not provided.")
	}
	a.command, a.positional = rest[0], rest[1:]
	want, ok := commandArgs[a.command]
	if !ok {
		return a, fmt.Errorf("Unrecognized command or argument '%s'.", a.command)
	}
	for name := range values {
		if !globalValueOpts[name] {
			if _, ok := commandOpts[a.command][name]; !ok {
				return a, fmt.Errorf("Unrecognized command or argument '%s'.", name)
			}
		}
	}
	for name := range bools {
		if !globalBoolOpts[name] {
			if _, ok := commandOpts[a.command][name]; !ok {
				return a, fmt.Errorf("Unrecognized command or argument '%s'.", name)
			}
		}
	}
	if len(a.positional) < want {
		return a, fmt.Errorf("Required argument missing for command: '%s'.", a.command)
	}
	if len(a.positional) > want {
		return a, fmt.Errorf("Unrecognized command or argument '%s'.", a.positional[want])
	}
	a.hostURL = values["--hosturl"]
	if v, ok := values["--password"]; ok {
		a.password = &v
	}
	if v, ok := values["--poll-interval"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return a, fmt.Errorf("Cannot parse argument '%s' for option '--poll-interval' as expected type 'System.Int32'.", v)
		}
		a.pollInterval = n
	}
	a.json, a.wait, a.skipQueue, a.quiet = bools["--json"], bools["--wait"], bools["--skip-queue"], bools["--quiet"]
	return a, nil
}

// runUtil is the duplicati-server-util stand-in; it returns the process exit code.
func runUtil(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a, err := parseUtilArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	raw := a.hostURL
	if raw == "" {
		raw = getenv("DUPLICATI_SIM_HOSTURL")
	}
	if raw == "" {
		raw = defaultHostURL
	}
	host, err := normalizeHostURL(raw)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Stand-in for the util's sign-in methods: --password, else the env var standing in for
	// the DB sign-in token, else an empty password.
	password := getenv("DUPLICATI_SIM_PASSWORD")
	if a.password != nil {
		password = *a.password
	}
	o := &output{w: stdout, json: a.json, command: a.command, success: true}
	var code int
	switch a.command {
	case "status":
		err = cmdStatus(o, host, password)
	case "list-backups":
		err = cmdListBackups(o, host, password)
	case "health":
		err = cmdHealth(o, host)
	case "run":
		err = cmdRun(o, host, password, a)
	}
	if err != nil {
		code = o.fail(err)
	} else {
		code = o.exitCode
	}
	o.finish()
	return code
}

func cmdStatus(o *output, host, password string) error {
	c, err := connect(o, host, password)
	if err != nil {
		return err
	}
	st, err := c.serverState()
	if err != nil {
		return err
	}
	if c.quirks().StatusGarbage {
		// A changed output format: nothing a line-prefix parser recognises.
		active := "-"
		if st.ActiveTask != nil {
			active = fmt.Sprintf("#%d/%s", st.ActiveTask.Item1, deref(st.ActiveTask.Item2))
		}
		o.msg("ServerStatus { State = %s, Current = %s, Pending = %d }", strings.ToUpper(st.ProgramState), active, len(st.SchedulerQueueIds))
		return nil
	}
	o.msg("Server state: %s", st.ProgramState)
	o.set("ServerState", st.ProgramState)
	type taskObj struct {
		Task     int64
		BackupId *string
	}
	if st.ActiveTask != nil {
		o.msg("Active task: [Task %d]: BackupId = %s", st.ActiveTask.Item1, deref(st.ActiveTask.Item2))
		o.set("ActiveTask", taskObj{st.ActiveTask.Item1, st.ActiveTask.Item2})
	} else {
		o.msg("Active task: None")
		o.set("ActiveTask", nil)
	}
	if len(st.SchedulerQueueIds) > 0 {
		o.msg("Scheduled tasks:")
		tasks := []taskObj{}
		for _, t := range st.SchedulerQueueIds {
			o.msg("  [Task %d]: BackupId = %s", t.Item1, deref(t.Item2))
			tasks = append(tasks, taskObj{t.Item1, t.Item2})
		}
		o.set("SchedulerTasks", tasks)
	} else {
		o.msg("Scheduler tasks: Empty")
		o.set("SchedulerTasks", nil)
	}
	return nil
}

func cmdListBackups(o *output, host, password string) error {
	c, err := connect(o, host, password)
	if err != nil {
		return err
	}
	l, err := c.listBackups()
	if err != nil {
		return err
	}
	type entry struct {
		Id, Name string
		Metadata map[string]string
		Schedule json.RawMessage
	}
	out := []entry{}
	if len(l) == 0 {
		o.msg("No backups found")
	}
	for _, e := range l {
		o.msg("%s: %s", e.Backup.ID, e.Backup.Name)
		if e.Backup.Description != "" {
			o.msg("  %s", e.Backup.Description)
		}
		o.msg("")
		sched := e.Schedule
		if len(sched) == 0 {
			sched = json.RawMessage("null")
		}
		out = append(out, entry{e.Backup.ID, e.Backup.Name, e.Backup.Metadata, sched})
	}
	o.set("Backups", out)
	return nil
}

func cmdHealth(o *output, host string) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(host + "health")
	healthy := err == nil && resp.StatusCode == http.StatusOK
	if err == nil {
		resp.Body.Close()
	}
	if healthy {
		o.msg("Server is healthy")
		return nil
	}
	o.msg("Server is unhealthy")
	o.exitCode, o.success = 1, false
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
