package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

// utilArgs is the parsed command line of the stand-in util.
type utilArgs struct {
	hostURL          *string
	password         *string
	serverDatafolder *string
	settingsFile     string
	settingsKey      string
	json             bool
	command          string
	positional       []string
	wait             bool
	skipQueue        bool
	quiet            bool
	detailed         bool
	pollInterval     int
}

// options returns the options of a release: global ones that take a value, global bools,
// and per command option -> takes a value.
func options(p duplicatisim.Profile) (globalValue, globalBool map[string]bool, command map[string]map[string]bool) {
	globalValue = map[string]bool{"--hosturl": true, "--password": true, "--server-datafolder": true,
		"--settings-file": true, "--settings-encryption-key": true, "--secret-provider": true,
		"--secret-provider-cache": true, "--secret-provider-pattern": true, "--host-cert": true}
	globalBool = map[string]bool{"--insecure": true}
	command = map[string]map[string]bool{
		"status":       {},
		"health":       {},
		"list-backups": {},
		"run":          {"--wait": false, "--quiet": false, "--poll-interval": true},
	}
	if p.UtilJSON {
		globalBool["--json"], globalBool["--portable-mode"] = true, true
		command["list-backups"]["--detailed"] = false
		command["run"]["--skip-queue"] = false
	}
	if p.UtilDataFolderCheck {
		globalBool["--allow-insecure-datafolder"], globalBool["--ignore-revocation-failure"] = true, true
	}
	return
}

var commandArgs = map[string]int{"status": 0, "health": 0, "list-backups": 0, "run": 1}

// parseUtilArgs parses like System.CommandLine: options anywhere, "--opt value", "--opt=value"
// or "--opt:value", only the options the release p has. Errors are usage errors (stderr,
// exit 1).
func parseUtilArgs(args []string, p duplicatisim.Profile) (utilArgs, error) {
	globalValueOpts, globalBoolOpts, commandOpts := options(p)
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
		if name == "--json" {
			// OutputInterceptorBinder: JSON mode is on when the --json token is present at all.
			a.json = true
		}
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
	if v, ok := values["--hosturl"]; ok {
		a.hostURL = &v
	}
	if v, ok := values["--password"]; ok {
		a.password = &v
	}
	if v, ok := values["--server-datafolder"]; ok {
		a.serverDatafolder = &v
	}
	a.settingsFile, a.settingsKey = values["--settings-file"], values["--settings-encryption-key"]
	if v, ok := values["--poll-interval"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return a, fmt.Errorf("Cannot parse argument '%s' for option '--poll-interval' as expected type 'System.Int32'.", v)
		}
		a.pollInterval = n
	}
	a.wait, a.skipQueue, a.quiet, a.detailed = bools["--wait"], bools["--skip-queue"], bools["--quiet"], bools["--detailed"]
	return a, nil
}

// rawHostURL finds --hosturl before the real parse (which needs the release, which needs
// the server): the last "--hosturl X", "--hosturl=X" or "--hosturl:X".
func rawHostURL(args []string) string {
	v := ""
	for i, tok := range args {
		switch {
		case tok == "--hosturl" && i+1 < len(args):
			v = args[i+1]
		case strings.HasPrefix(tok, "--hosturl=") || strings.HasPrefix(tok, "--hosturl:"):
			v = tok[len("--hosturl="):]
		}
	}
	return v
}

// runUtil is the duplicati-server-util stand-in; it returns the process exit code. The
// release it imitates is the simulator's (GET /sim/quirks: Version), the newest when the
// simulator cannot be asked. DUPLICATI_SIM_HOSTURL stands for the default --hosturl (the
// server in the same container).
func runUtil(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }
	raw := rawHostURL(args)
	if raw == "" {
		raw = getenv("DUPLICATI_SIM_HOSTURL")
	}
	probe := raw
	if probe == "" {
		probe = "http://127.0.0.1:8200"
	}
	var q simQuirks
	if h, err := normalizeHostURL(probe); err == nil {
		q = fetchQuirks(h)
	}
	prof, err := duplicatisim.ProfileFor(q.Version)
	if err != nil {
		prof, _ = duplicatisim.ProfileFor("")
	}
	a, err := parseUtilArgs(args, prof)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if raw == "" {
		raw = prof.UtilDefaultHost
	}
	host, err := normalizeHostURL(raw)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if prof.UtilDataFolderCheck && !allowInsecure(args, lookupEnv) {
		if msg := checkDataFolder(dataFolder(a, getenv)); msg != "" {
			// Settings.Load throws while the handler's first parameter is bound, before the
			// OutputInterceptor exists: the exception handler has nothing to print to.
			if q.DataFolderMessage {
				fmt.Fprintln(stdout, "Duplicati.Library.Interface.UserInformationException: "+msg)
			}
			return 1
		}
	}
	password := ""
	if a.password != nil {
		password = *a.password
	}
	key := a.settingsKey
	if key == "" {
		key = getenv("SETTINGS_ENCRYPTION_KEY")
	}
	store := &settingsStore{path: settingsPath(a.settingsFile, getenv), key: key != "", datafolder: a.serverDatafolder}
	o := &output{w: stdout, json: a.json, trailing: prof.UtilTrailingLine, command: a.command, success: true}
	c := newConn(o, host, password, prof, store)
	var code int
	switch a.command {
	case "status":
		err = cmdStatus(c, q)
	case "list-backups":
		err = cmdListBackups(c, a)
	case "health":
		code = cmdHealth(o, host)
	case "run":
		err = cmdRun(c, q, a)
	}
	switch {
	case err != nil:
		code = o.fail(err)
	case code == 0:
		code = o.exitCode
	}
	o.finish()
	return code
}

func cmdStatus(c *conn, q simQuirks) error {
	o := c.o
	if err := c.connect(); err != nil {
		return err
	}
	st, err := c.serverState()
	if err != nil {
		return err
	}
	if q.StatusGarbage {
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

const metaDateLayout = "20060102T150405Z07:00" // yyyyMMdd'T'HHmmssK

// metaTime is Utility.TryDeserializeDateTime (AssumeUniversal: the result is local time);
// zero (DateTime.MinValue) when absent or unparsable.
func metaTime(v string) (time.Time, bool) {
	t, err := time.Parse(metaDateLayout, v)
	if err != nil {
		return time.Time{}, false
	}
	return t.Local(), true
}

// cmdListBackups is ListBackups.cs; --detailed prints the metadata lines of 2.1.2.0+.
func cmdListBackups(c *conn, a utilArgs) error {
	o := c.o
	if err := c.connect(); err != nil {
		return err
	}
	l, err := c.listBackups()
	if err != nil {
		return err
	}
	if len(l) == 0 {
		o.msg("No backups found")
		return nil
	}
	type entry struct {
		Id       string
		Name     string
		Metadata map[string]string
		Schedule json.RawMessage
	}
	out := []entry{}
	for _, e := range l {
		b := e.Backup
		o.msg("%s: %s", b.ID, b.Name)
		if b.Description != "" {
			o.msg("  %s", b.Description)
		}
		if a.detailed {
			detail := func(label, key string, format func(string) (string, error)) error {
				v := strings.TrimSpace(b.Metadata[key])
				if v == "" {
					return nil
				}
				if format != nil {
					var err error
					if v, err = format(v); err != nil {
						return err
					}
				}
				if strings.TrimSpace(v) != "" {
					o.msg("  %s: %s", label, v)
				}
				return nil
			}
			date := func(s string) (string, error) {
				if t, ok := metaTime(s); ok {
					return t.Format("2006-01-02 15:04:05"), nil
				}
				return s, nil
			}
			size := func(s string) (string, error) {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return "", dotnetError{"System.FormatException", "The input string '" + s + "' was not in a correct format."}
				}
				return duplicatisim.FormatSize(float64(n)), nil
			}
			for _, d := range []struct {
				label, key string
				f          func(string) (string, error)
			}{
				{"Last backup", "LastBackupDate", date},
				{"Last duration", "LastBackupDuration", nil},
				{"Source files size", "SourceFilesSize", size},
				{"Target files size", "TargetFilesSize", size},
				{"Versions", "BackupListCount", nil},
			} {
				if err := detail(d.label, d.key, d.f); err != nil {
					return err
				}
			}
			errAt, _ := metaTime(b.Metadata["LastErrorDate"])
			lastAt, _ := metaTime(b.Metadata["LastBackupDate"])
			if msg := b.Metadata["LastErrorMessage"]; errAt.After(lastAt) && strings.TrimSpace(msg) != "" {
				o.msg("  Last error: %s - %s", errAt.Format("2006-01-02 15:04:05"), msg)
			}
		}
		o.msg("")
		sched := e.Schedule
		if len(sched) == 0 {
			sched = json.RawMessage("null")
		}
		out = append(out, entry{b.ID, b.Name, b.Metadata, sched})
	}
	o.set("Backups", out)
	return nil
}

// cmdHealth is Health.cs: GET {hosturl}health, no auth, 10s timeout; the handler's return
// value (1 when unhealthy) is the process exit code, the envelope's ExitCode stays 0.
func cmdHealth(o *output, host string) int {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(host + "health")
	healthy := err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299
	if err == nil {
		resp.Body.Close()
	}
	if healthy {
		o.set("healthy", true)
		o.msg("Server is healthy")
		return 0
	}
	o.msg("Server is unhealthy")
	o.set("healthy", false)
	o.success = false
	return 1
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
