package e2e

import (
	"bufio"
	"bytes"
	corpusbin "encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	hhcl "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestEscapingCorpusRealSystemd is the escaping proof with the real systemd as the oracle
// (issue 12). A corpus of hostile words is put, one word per stack, into the fields of a
// stack file that reach unit files:
//
//	arg     a pre_stop hook's argument     (an ExecStartPre= line of backup@S.service)
//	prog    a pre_stop hook's program path (the same line)
//	finish  a post_backup hook's argument  (an X-FinishHook= line of the same drop-in)
//	unit    the stack's unit name          (Conflicts= of backup-hold@S.service)
//	file    the stack file's name          (SourcePath= of both drop-ins)
//
// All stacks live in one config dir. `backup-stack validate` runs once and says which files
// it refuses (file:line:col); the manager is daemon-reloaded once. Then, for every stack that
// validate accepted, what systemd made of the drop-ins is read back over the manager's own
// D-Bus socket (exact strings; `systemctl show` joins argv with blanks, which cannot tell
// "a b" from "a", "b") and compared with the value HCL decodes from the file, byte for byte:
// the words a hook line hands to the helper (after systemd's exec-time "$$" -> "$"), the
// stack unit in Conflicts=, the file in SourcePath=. Every accepted stack must also be read
// whole: loaded, its 50-stack.conf in DropInPaths, a sentinel hook line written after the
// hostile line present, ExecStart= run and ExecStopPost= finish in place, and not one line of
// the manager's log (its console, captured on a pty) about its units. For every refused
// file the generator must have written nothing: refused files never reach systemd.
//
// A control unit whose drop-in holds a noncharacter proves that this oracle sees what
// systemd does with a value it will not read (the lines after it vanish, the log says so).
func TestEscapingCorpusRealSystemd(t *testing.T) {
	t.Parallel()
	start := time.Now()
	binary(t, "backup-generator")
	binary(t, "backup-stack")
	words := corpusWords()
	e := newEnv(t)
	console := corpusCaptureConsole(e)

	stacksDir := filepath.Join(e.configDir(), "stacks")
	e.writeConfig("defaults {\n  restore_policy = \"previous\"\n}\n")
	var cases []*corpusCase
	skipped := map[string]int{}
	for _, w := range words {
		for _, place := range corpusPlaces {
			k := len(cases)
			c := &corpusCase{k: k, word: w, place: place,
				stack:    fmt.Sprintf("c%sn%04d", e.id, k),
				marker:   fmt.Sprintf("corpus-mark-%04d", k),
				sentinel: fmt.Sprintf("corpus-sentinel-%04d", k)}
			fileName := c.stack + ".hcl"
			if place == "file" {
				fileName = c.stack + "-" + w.value + ".hcl"
				if strings.ContainsAny(w.value, "/\x00") || len(fileName) > 255 {
					skipped[place]++ // not a file name at all
					continue
				}
			}
			c.file = filepath.Join(stacksDir, fileName)
			hcl, want, err := c.render()
			if err != nil {
				t.Fatalf("corpus word %s (%q) in %s: %v", w.label, corpusShort(w.value), place, err)
			}
			c.want = want
			if err := os.WriteFile(c.file, []byte(hcl), 0o644); err != nil {
				t.Fatalf("writing %q: %v", c.file, err)
			}
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		if c.nfcOnly {
			t.Logf("note: %s %s %q has escapes, so HCL's NFC form %q is what the hook must get (and validate must warn)", c.place, c.word.label, c.word.value, c.want)
		}
	}

	// The oracle's control: a unit of our own whose drop-in has a noncharacter on its 3rd line.
	ctlUnit := "corpus-ctl-" + e.id + ".service"
	ctlDropIn := filepath.Join(e.config, "systemd", "user", ctlUnit+".d", "50-ctl.conf")
	e.writeUserUnit(ctlUnit, "[Unit]\nDescription=e2e corpus control\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n")
	e.writeUserUnit(ctlUnit+".d/50-ctl.conf", "[Service]\nExecStartPre=/bin/echo corpus-before\nExecStartPre=/bin/echo \"x\uFDD0y\"\nExecStartPre=/bin/echo corpus-after\n")

	// validate, once.
	tv := time.Now()
	vout, vcode, err := e.runHelper(3*time.Minute, "validate")
	if err != nil {
		t.Fatalf("backup-stack validate: %v: %s", err, oneLine(vout))
	}
	refusedBy, warnedBy := corpusParseValidate(t, vout, e.id)
	byK := map[int]*corpusCase{}
	for _, c := range cases {
		byK[c.k] = c
	}
	for k, lines := range refusedBy {
		c, ok := byK[k]
		if !ok {
			t.Errorf("validate reports an error for stack %04d, which is not a corpus stack: %q", k, lines)
			continue
		}
		c.refused, c.refusal = true, lines
	}
	nRefused := len(refusedBy)
	if nRefused > 0 && vcode == 0 {
		t.Errorf("validate refused %d file(s) but exited 0", nRefused)
	}
	if nRefused == 0 && vcode != 0 {
		t.Errorf("validate exited %d without an error line for any corpus file: %s", vcode, oneLine(vout))
	}
	if m := regexp.MustCompile(`(\d+) stack\(s\) valid, (\d+) file\(s\) with errors`).FindStringSubmatch(vout); m == nil {
		t.Errorf("validate printed no summary line: %s", oneLine(vout))
	} else if valid, _ := strconv.Atoi(m[1]); valid != len(cases)-nRefused {
		t.Errorf("validate says %s stack(s) valid, %s file(s) with errors; its error lines name %d of the %d files", m[1], m[2], nRefused, len(cases))
	}
	t.Logf("timing: validate %s", time.Since(tv).Round(time.Millisecond))

	// Every backup@ unit is ordered After= the one of the stack before it, so loading one
	// loads the whole chain; inactive units that nothing references are unloaded again at
	// once, and reading them one by one would load the chain every time. An active anchor
	// ordered After= all of them keeps them loaded (it starts nothing).
	var showUnits []string
	for _, c := range cases {
		showUnits = append(showUnits, "backup@"+c.stack+".service", "backup-hold@"+c.stack+".service")
	}
	anchor := "corpus-anchor-" + e.id + ".service"
	e.writeUserUnit(anchor, "[Unit]\nDescription=e2e corpus: keeps the corpus units loaded\nDefaultDependencies=no\nAfter="+
		strings.Join(showUnits, " ")+" "+ctlUnit+"\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")

	// daemon-reload, once: the generator runs, the manager reads what it wrote.
	tr := time.Now()
	e.daemonReload()
	t.Logf("timing: daemon-reload %s", time.Since(tr).Round(time.Millisecond))
	if out, err := e.systemctl("start", anchor); err != nil {
		t.Fatalf("start %s: %v: %s", anchor, err, oneLine(out))
	}
	t.Logf("timing: anchor (loads every unit) %s", time.Since(tr).Round(time.Millisecond))

	bus, err := corpusDialBus(filepath.Join(e.run, "systemd", "private"))
	if err != nil {
		t.Fatalf("connecting to the manager's private bus: %v", err)
	}
	defer bus.close()
	tq := time.Now()

	// The control first: if the oracle cannot see a drop-in that systemd stopped reading,
	// nothing below proves anything.
	ctlPre, err := bus.execProp(ctlUnit, "ExecStartPre")
	if err != nil {
		t.Fatalf("control %s: %v", ctlUnit, err)
	}
	if corpusHasWord(ctlPre, "corpus-after") || !corpusHasWord(ctlPre, "corpus-before") {
		t.Errorf("oracle control: systemd should have read %s up to its noncharacter line only; ExecStartPre=%q", ctlDropIn, ctlPre)
	}

	// Batched `systemctl show` of every backup@ and backup-hold@ unit.
	shown := corpusShowAll(e, showUnits, "Id,LoadState,DropInPaths,ExecStartPre,ExecStart,ExecStopPost")

	genDir := filepath.Join(e.run, "systemd", "generator")
	var accepted, refused int
	perPlace := map[string][2]int{} // accepted, refused
	var refusedList, acceptedLabels []string
	var disagree []string
	for _, c := range cases {
		pp := perPlace[c.place]
		bsvc, hsvc := "backup@"+c.stack+".service", "backup-hold@"+c.stack+".service"
		dropIn := filepath.Join(genDir, bsvc+".d", "50-stack.conf")
		holdDropIn := filepath.Join(genDir, hsvc+".d", "50-stack.conf")
		_, errB := os.Stat(dropIn)
		_, errH := os.Stat(holdDropIn)
		if c.refused {
			refused++
			pp[1]++
			perPlace[c.place] = pp
			refusedList = append(refusedList, fmt.Sprintf("%s %s %q: %s", c.place, c.word.label, corpusShort(c.word.value), corpusShort(c.refusal[0])))
			// Refused files never reach systemd.
			if errB == nil || errH == nil {
				t.Errorf("%s: validate refused %s (%s %q) but the generator wrote its drop-in(s) (%s: %v, %s: %v)",
					c.stack, c.file, c.place, c.word.value, dropIn, errB == nil, holdDropIn, errH == nil)
			}
			for _, u := range []string{bsvc, hsvc} {
				if p := shown[u]; strings.Contains(p["DropInPaths"], "/"+u+".d/50-stack.conf") {
					t.Errorf("%s: refused file %q reached systemd: %s DropInPaths=%s", c.stack, c.file, u, p["DropInPaths"])
				}
			}
			continue
		}
		accepted++
		pp[0]++
		perPlace[c.place] = pp
		acceptedLabels = append(acceptedLabels, c.place+" "+c.word.label)
		fail := func(format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			disagree = append(disagree, fmt.Sprintf("%s %s %q: %s", c.place, c.word.label, corpusShort(c.word.value), corpusShort(msg)))
			t.Errorf("PRODUCT BUG? validate accepted %s word %s %q (stack %s, %s) but: %s", c.place, c.word.label, c.word.value, c.stack, c.file, msg)
		}
		if c.nfcOnly && len(warnedBy[c.k]) == 0 {
			t.Errorf("%s: %s %s %q can only be written in NFC (%q), but validate gave no warning for %s", c.stack, c.place, c.word.label, c.word.value, c.want, c.file)
		}
		if errB != nil || errH != nil {
			fail("the generator wrote no drop-in for it (%v; %v): validate and the generator disagree", errB, errH)
			continue
		}
		for _, u := range []string{bsvc, hsvc} {
			p := shown[u]
			own := filepath.Join(genDir, u+".d", "50-stack.conf")
			if p["LoadState"] != "loaded" {
				fail("%s LoadState=%q", u, p["LoadState"])
			}
			if !corpusListHas(p["DropInPaths"], own) {
				fail("%s DropInPaths=%q lacks %s", u, p["DropInPaths"], own)
			}
		}
		c.check(t, bus, shown[bsvc], fail)
	}
	t.Logf("timing: reading %d units back %s", len(showUnits), time.Since(tq).Round(time.Millisecond))

	// The manager's log: the control's complaint must be there (else the capture is blind),
	// and no line may be about an accepted stack's units.
	time.Sleep(300 * time.Millisecond)
	logText := console.text()
	ctlSeen := false
	for _, l := range strings.Split(logText, "\n") {
		if strings.Contains(l, ctlDropIn) && strings.Contains(l, "not UTF-8 clean") {
			ctlSeen = true
		}
	}
	if !ctlSeen {
		t.Errorf("oracle control: the manager's log has no \"not UTF-8 clean\" line for %s; captured log (%d bytes): %s", ctlDropIn, len(logText), oneLine(lastBytes([]byte(logText), 2000)))
	}
	for _, c := range cases {
		if c.refused {
			continue
		}
		for _, l := range strings.Split(logText, "\n") {
			if strings.Contains(l, "@"+c.stack+".service") || strings.Contains(l, "@"+c.stack+".timer") {
				disagree = append(disagree, fmt.Sprintf("%s %s %q: manager log: %s", c.place, c.word.label, corpusShort(c.word.value), corpusShort(l)))
				t.Errorf("PRODUCT BUG? validate accepted %s word %s %q (stack %s) but the manager logged: %q", c.place, c.word.label, c.word.value, c.stack, l)
			}
		}
	}

	places := make([]string, 0, len(perPlace))
	for _, p := range corpusPlaces {
		places = append(places, fmt.Sprintf("%s %d/%d (skipped %d)", p, perPlace[p][0], perPlace[p][0]+perPlace[p][1], skipped[p]))
	}
	t.Logf("corpus: %d stacks, %d words, %d accepted, %d refused; accepted/written per place: %s", len(cases), len(words), accepted, refused, strings.Join(places, ", "))
	t.Logf("refused (%d):\n  %s", len(refusedList), strings.Join(refusedList, "\n  "))
	t.Logf("accepted (%d): %s", len(acceptedLabels), strings.Join(acceptedLabels, "; "))
	if len(disagree) > 0 {
		t.Logf("systemd disagreed with validate on %d stack(s):\n  %s", len(disagree), strings.Join(disagree, "\n  "))
	} else {
		t.Logf("systemd read every accepted value back identically")
	}
	t.Logf("timing: total %s", time.Since(start).Round(time.Millisecond))
}

// corpusPlaces are the fields a word is put into (see TestEscapingCorpusRealSystemd).
var corpusPlaces = []string{"arg", "prog", "finish", "unit", "file"}

// corpusWord is one hostile value with a readable label.
type corpusWord struct {
	label string
	value string
}

// corpusWords is the corpus: every class of Unicode noncharacter (and the characters just
// outside the classes), specifier and variable syntax, quoting and escapes, blanks, empty and
// very long words, characters from every plane, a combining sequence, every C0 control,
// DEL, NEL, LS and PS. Lone surrogates cannot be held in a Go string and are left out.
func corpusWords() []corpusWord {
	var w []corpusWord
	add := func(label, v string) { w = append(w, corpusWord{label, v}) }
	for _, r := range []rune{0xFDD0, 0xFDE7, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFE, 0x1FFFF, 0x2FFFE, 0x7FFFF,
		0xEFFFE, 0xFFFFE, 0xFFFFF, 0x10FFFE, 0x10FFFF} {
		add(fmt.Sprintf("nonchar U+%04X", r), "x"+string(r)+"y")
	}
	add("nonchar U+FDD0 alone", "\uFDD0")
	add("nonchar U+10FFFF alone", "\U0010FFFF")
	for _, r := range []rune{0xFDCF, 0xFDF0, 0xFFFD, 0xFEFF, 0x1FFFD, 0x10FFFD} {
		add(fmt.Sprintf("edge U+%04X", r), "x"+string(r)+"y")
	}
	for _, s := range []string{"%", "%%", "%i", "%n", "%%i", "100%", "%{x}", "$", "$$", "${X}", "$X", "$$X", "$${X}", "a$", "a$b",
		`\`, `\\`, `\n`, `\x41`, `\;`, "\n", "\t", "\r", `"`, `'`, `it's "q"`, ";", " ; ", "a b", "   ", "",
		"-", "--", "-x", "@x", ":x", "+x", "!x", "|x", "#x", "[x]", "k=v", "*", "~", "?"} {
		add(fmt.Sprintf("%q", s), s)
	}
	var long strings.Builder
	mix := []rune("aé中😀%$\\\"' ;\t")
	for i := 0; i < 2000; i++ {
		long.WriteRune(mix[i%len(mix)])
	}
	add("2000-char mixed word", long.String())
	add("70000-byte word", strings.Repeat("x", 70000))
	var big strings.Builder
	for big.Len() < 70000-4 {
		big.WriteRune(mix[big.Len()%len(mix)])
	}
	for big.Len() < 70000 {
		big.WriteByte('z')
	}
	add("70000-byte mixed word", big.String())
	for _, r := range []rune{0xE9, 0x4E2D, 0x1F600, 0xE0001, 0xF0000, 0x100000} {
		add(fmt.Sprintf("plane %d U+%04X", r>>16, r), "x"+string(r)+"y")
	}
	add("NFD e+U+0301", "e\u0301")
	add("NFD e+U+0301 with a tab", "e\u0301\t")
	add("NUL", "a\x00b")
	for r := rune(1); r < 0x20; r++ {
		add(fmt.Sprintf("ctl U+%04X", r), "a"+string(r)+"b")
	}
	add("ctl U+007F", "a\x7fb")
	add("U+0085", "a\u0085b")
	add("U+2028", "a\u2028b")
	add("U+2029", "a\u2029b")
	return w
}

// corpusCase is one word in one place, in its own stack file.
type corpusCase struct {
	k        int
	word     corpusWord
	place    string
	stack    string
	file     string
	marker   string
	sentinel string
	want     string // the value the stack file spells (see corpusAsWritten)
	nfcOnly  bool   // the file can only spell HCL's NFC form of the word (escapes); want is that
	refused  bool
	refusal  []string
}

// render returns the stack file and the decoded value systemd must hand back.
func (c *corpusCase) render() (string, string, error) {
	meant := c.word.value
	switch c.place {
	case "prog":
		meant = "/opt/corpus/" + c.word.value
	case "unit":
		meant = c.stack + "u" + c.word.value + ".service"
	}
	lit := corpusHCLString(meant)
	want := ""
	if c.place != "file" {
		v, err := corpusHCLDecode(lit)
		if err != nil {
			return "", "", err
		}
		want = corpusAsWritten(lit, v)
		c.nfcOnly = want != meant
	}
	var b strings.Builder
	fmt.Fprintf(&b, "stack %q {\n  jobs = [\"corpus\"]\n", c.stack)
	switch c.place {
	case "arg":
		fmt.Fprintf(&b, "  hook \"pre_stop\" {\n    command = [\"/bin/echo\", %q, %s]\n  }\n", c.marker, lit)
	case "prog":
		fmt.Fprintf(&b, "  hook \"pre_stop\" {\n    command = [%s, %q]\n  }\n", lit, c.marker)
	case "finish":
		fmt.Fprintf(&b, "  hook \"post_backup\" {\n    command = [\"/bin/echo\", %q, %s]\n  }\n", c.marker, lit)
	case "unit":
		fmt.Fprintf(&b, "  unit = %s\n", lit)
	case "file":
		want = c.file
	}
	// The sentinel: a hook line the generator writes after the hostile one (pre_backup
	// lines follow pre_stop lines and the hold/wait steps on ExecStartPre=).
	fmt.Fprintf(&b, "  hook \"pre_backup\" {\n    command = [\"/bin/true\", %q]\n  }\n}\n", c.sentinel)
	return b.String(), want, nil
}

// check compares what systemd read for an accepted stack with the HCL value; show is the
// `systemctl show` of backup@S.service.
func (c *corpusCase) check(t *testing.T, bus *corpusBus, show map[string]string, fail func(string, ...any)) {
	t.Helper()
	bsvc, hsvc := "backup@"+c.stack+".service", "backup-hold@"+c.stack+".service"
	pre, err := bus.execProp(bsvc, "ExecStartPre")
	if err != nil {
		fail("ExecStartPre over D-Bus: %v", err)
		return
	}
	// The two readings agree (systemctl show joins argv with blanks).
	for _, cmd := range pre {
		if line := "{ path=" + cmd.path + " ; argv[]=" + strings.Join(cmd.argv, " ") + " ; "; !strings.Contains(show["ExecStartPre"], line) {
			fail("systemctl show has no ExecStartPre %q (it says %q)", corpusShort(line), corpusShort(show["ExecStartPre"]))
		}
	}
	expanded := make([][]string, len(pre))
	for i, cmd := range pre {
		words, err := corpusExecExpand(cmd.argv)
		if err != nil {
			if c.place == "arg" || c.place == "prog" {
				if corpusHasWord(pre[i:i+1], c.marker) {
					fail("its hook line %q: %v", cmd.argv, err)
				}
			}
			continue
		}
		expanded[i] = words
	}
	// Read whole: the sentinel (written after the hostile line) is there.
	if !corpusHasWordIn(expanded, c.sentinel) {
		fail("ExecStartPre= has no sentinel line %q: systemd did not read the drop-in whole; ExecStartPre=%q", c.sentinel, pre)
	}
	switch c.place {
	case "arg", "prog":
		var want []string
		if c.place == "arg" {
			want = []string{"/bin/echo", c.marker, c.want}
		} else {
			want = []string{c.want, c.marker}
		}
		found := 0
		for _, words := range expanded {
			for j, w := range words {
				if w != c.marker {
					continue
				}
				found++
				if j == 0 {
					fail("hook line %q: the marker is its first word", corpusShortList(words))
					continue
				}
				got := words[j-1:]
				if !corpusEqual(got, want) {
					fail("the hook is handed %q, want %q (whole line %q)", corpusShortList(got), corpusShortList(want), corpusShortList(words))
				}
			}
		}
		if found != 1 {
			fail("%d ExecStartPre= lines carry the hook's marker %q, want 1; ExecStartPre=%q", found, c.marker, corpusShortList(corpusFlat(expanded)))
		}
	case "unit":
		conf, err := bus.strvProp(hsvc, "org.freedesktop.systemd1.Unit", "Conflicts")
		if err != nil {
			fail("Conflicts of %s: %v", hsvc, err)
		} else if !corpusContains(conf, c.want) {
			fail("%s Conflicts=%q lacks the stack unit %q", hsvc, conf, c.want)
		}
	case "file":
		for _, u := range []string{bsvc, hsvc} {
			sp, err := bus.strProp(u, "org.freedesktop.systemd1.Unit", "SourcePath")
			if err != nil {
				fail("SourcePath of %s: %v", u, err)
			} else if sp != c.want {
				fail("%s SourcePath=%q, want %q", u, sp, c.want)
			}
		}
	}
	// The rest of the unit is in place: ExecStart= run, ExecStopPost= finish (the restore).
	for _, p := range []struct{ prop, step string }{{"ExecStart", "run"}, {"ExecStopPost", "finish"}} {
		cmds, err := bus.execProp(bsvc, p.prop)
		if err != nil {
			fail("%s over D-Bus: %v", p.prop, err)
			continue
		}
		ok := false
		for _, cmd := range cmds {
			if corpusContains(cmd.argv, p.step) && corpusContains(cmd.argv, c.stack) {
				ok = true
			}
		}
		if !ok {
			fail("%s= has no %q step for %s: %q", p.prop, p.step, c.stack, cmds)
		}
	}
}

// corpusParseValidate maps the corpus stack number of every file that validate reports an
// error for to those error lines; each must carry file:line:col.
func corpusParseValidate(t *testing.T, out, id string) (map[int][]string, map[int][]string) {
	t.Helper()
	re := regexp.MustCompile(`c` + regexp.QuoteMeta(id) + `n(\d{4})`)
	pos := regexp.MustCompile(`:(\d+):(\d+): error: `)
	refused, warned := map[int][]string{}, map[int][]string{}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, ": warning: ") {
			if m := re.FindStringSubmatch(l); m != nil {
				k, _ := strconv.Atoi(m[1])
				warned[k] = append(warned[k], l)
			}
			continue
		}
		if !strings.HasPrefix(l, "error: ") && !strings.Contains(l, ": error: ") {
			continue
		}
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("validate error line names no corpus stack: %q", l)
			continue
		}
		if !pos.MatchString(l) {
			t.Errorf("validate error line without file:line:col: %q", l)
		}
		k, _ := strconv.Atoi(m[1])
		refused[k] = append(refused[k], l)
	}
	return refused, warned
}

// corpusShowAll runs one `systemctl --user show -p PROPS units...` and splits its output per
// unit (blocks are separated by a blank line; the corpus has no word holding "\n\n").
func corpusShowAll(e *env, units []string, props string) map[string]map[string]string {
	e.t.Helper()
	var all strings.Builder
	for i := 0; i < len(units); i += corpusShowBatch {
		batch := units[i:min(i+corpusShowBatch, len(units))]
		out, err := e.systemctlTimeout(time.Minute, append([]string{"show", "-p", props}, batch...)...)
		if err != nil {
			e.t.Fatalf("systemctl --user show (%d units from %s): %v: %s", len(batch), batch[0], err, oneLine(out))
		}
		all.WriteString(strings.TrimRight(out, "\n"))
		all.WriteString("\n\n")
	}
	out := all.String()
	res := map[string]map[string]string{}
	for _, block := range strings.Split(strings.TrimRight(out, "\n"), "\n\n") {
		m := map[string]string{}
		lines := strings.Split(block, "\n")
		key := ""
		for _, l := range lines {
			k, v, ok := strings.Cut(l, "=")
			if ok && corpusPropName(k) {
				key = k
				if m[k] != "" {
					m[k] += "\n"
				}
				m[k] += v
				continue
			}
			if key != "" { // a line of a value that holds a newline
				m[key] += "\n" + l
			}
		}
		res[m["Id"]] = m
	}
	for _, u := range units {
		if _, ok := res[u]; !ok {
			e.t.Fatalf("systemctl show printed no block for %s (%d blocks for %d units)", u, len(res), len(units))
		}
	}
	return res
}

const corpusShowBatch = 250

func corpusPropName(k string) bool {
	switch k {
	case "Id", "LoadState", "DropInPaths", "ExecStartPre", "ExecStart", "ExecStopPost":
		return true
	}
	return false
}

// corpusListHas: a blank-separated list (DropInPaths) holds p as one of its words.
func corpusListHas(list, p string) bool {
	for _, w := range strings.Fields(list) {
		if w == p {
			return true
		}
	}
	return false
}

// corpusHCLString writes s as an HCL quoted string: quotes, backslashes and every control
// character escaped, "${" and "%{" doubled, everything else as it is (UTF-8).
func corpusHCLString(s string) string {
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
			b.WriteRune(r)
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// corpusAsWritten is the value a hook must be handed for the quoted literal lit, which HCL
// decodes to decoded. A literal without escapes, "$" or "%" stands for its bytes exactly as
// the file holds them: HCL normalizes every string to NFC, and the product undoes that for
// such literals (a decomposed "e\u0301" reaches the hook as written). Where the literal has
// escapes it can only be HCL's own (NFC) value; the product warns then.
func corpusAsWritten(lit, decoded string) string {
	raw := corpusUnquoted(lit)
	if !strings.ContainsAny(raw, `\$%`) {
		return raw
	}
	return decoded
}

// corpusUnquoted is the text between the quotes of a literal written by corpusHCLString.
func corpusUnquoted(lit string) string { return lit[1 : len(lit)-1] }

// corpusHCLDecode is what HCL makes of a quoted string literal.
func corpusHCLDecode(lit string) (string, error) {
	expr, diags := hclsyntax.ParseExpression([]byte(lit), "corpus.hcl", hhcl.InitialPos)
	if diags.HasErrors() {
		return "", diags
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return "", diags
	}
	if v.Type().FriendlyName() != "string" || !v.IsKnown() || v.IsNull() {
		return "", fmt.Errorf("%s is not a string literal", lit)
	}
	return v.AsString(), nil
}

// corpusExecExpand applies what systemd does to a stored Exec argv when it runs it
// (replace_env_argv(), systemd 252): "$$" becomes "$"; "${NAME}" anywhere, and a word that
// is "$NAME" (or just "$"), would be replaced by the environment: the generator never
// means that, so it is an error here.
func corpusExecExpand(argv []string) ([]string, error) {
	out := make([]string, 0, len(argv))
	for i, a := range argv {
		if strings.HasPrefix(a, "$") && !strings.HasPrefix(a, "${") && !strings.HasPrefix(a, "$$") {
			return nil, fmt.Errorf("word %d %q would be replaced by the variable %q (or removed)", i, a, a[1:])
		}
		var b strings.Builder
		for j := 0; j < len(a); j++ {
			if a[j] != '$' || j+1 >= len(a) {
				b.WriteByte(a[j])
				continue
			}
			switch a[j+1] {
			case '$':
				b.WriteByte('$')
				j++
			case '{':
				return nil, fmt.Errorf("word %d %q holds a variable reference ${...} that systemd would expand", i, a)
			default:
				b.WriteByte('$')
			}
		}
		out = append(out, b.String())
	}
	return out, nil
}

type corpusExec struct {
	path string
	argv []string
}

func corpusHasWord(cmds []corpusExec, w string) bool {
	for _, c := range cmds {
		if corpusContains(c.argv, w) {
			return true
		}
	}
	return false
}

func corpusHasWordIn(lists [][]string, w string) bool {
	for _, l := range lists {
		if corpusContains(l, w) {
			return true
		}
	}
	return false
}

func corpusContains(list []string, w string) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}

func corpusEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func corpusFlat(lists [][]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// corpusShort keeps messages readable when a word is 70,000 bytes long.
func corpusShort(s string) string {
	if len(s) <= 160 {
		return s
	}
	cut := 120
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes, sha-ish %08x)", s[:cut], len(s), corpusHash(s))
}

func corpusShortList(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = corpusShort(s)
	}
	return out
}

func corpusHash(s string) uint32 { // FNV-1a, to tell long words apart in messages
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// ---- the manager's log -------------------------------------------------------------------

// corpusConsole collects what the manager writes to its console.
type corpusConsole struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *corpusConsole) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.ReplaceAll(c.buf.String(), "\r", "")
}

// corpusCaptureConsole makes the test's manager log to a pty that the test reads: a user
// manager logs to /dev/console (DESIGN fact 15), which the harness does not capture. The pty
// is bind-mounted onto /dev/console inside the manager's own mount namespace (nothing
// changes outside it) and the manager is re-executed, which reopens its console. This runs
// before any stack file exists, so that reexec's generator run has nothing to generate.
func corpusCaptureConsole(e *env) *corpusConsole {
	t := e.t
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening a pty: %v", err)
	}
	var ptn uint32
	var ioctlErr error
	rc, err := master.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	err = rc.Control(func(fd uintptr) {
		var unlock int32
		if _, _, en := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); en != 0 {
			ioctlErr = fmt.Errorf("TIOCSPTLCK: %v", en)
			return
		}
		if _, _, en := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&ptn))); en != 0 {
			ioctlErr = fmt.Errorf("TIOCGPTN: %v", en)
		}
	})
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		master.Close()
		t.Fatalf("pty: %v", err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", ptn)
	// Hold the slave open ourselves, so that the master never sees a hang-up (EIO) while
	// the manager re-executes.
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatalf("opening %s: %v", slavePath, err)
	}
	c := &corpusConsole{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 64<<10)
		for {
			n, err := master.Read(b)
			if n > 0 {
				c.mu.Lock()
				c.buf.Write(b[:n])
				c.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		// Runs before the harness stops the manager: its later console writes fail (EIO)
		// instead of filling a pty nobody reads.
		slave.Close()
		master.Close()
		<-done
		if t.Failed() {
			t.Logf("---- manager console (last 6000 bytes) ----\n%s", lastBytes([]byte(c.text()), 6000))
		}
	})
	out, err := exec.Command("nsenter", "--target", strconv.Itoa(e.managerPID), "--mount", "--",
		"mount", "--bind", slavePath, "/dev/console").CombinedOutput()
	if err != nil {
		t.Fatalf("bind-mounting %s onto the manager's /dev/console: %v: %s", slavePath, err, oneLine(string(out)))
	}
	if out, err := e.systemctlTimeout(time.Minute, "daemon-reexec"); err != nil {
		t.Fatalf("daemon-reexec: %v: %s", err, oneLine(out))
	}
	e.waitFor("the manager after daemon-reexec", managerStartTimeout, 50*time.Millisecond, func() bool {
		out, err := e.systemctlTimeout(10*time.Second, "show", "-p", "SystemState", "--value")
		s := strings.TrimSpace(out)
		return err == nil && (s == "running" || s == "degraded")
	})
	return c
}

// ---- a minimal D-Bus client for the manager's private socket -----------------------------
//
// busctl cannot be used: it always sends Hello, which the manager's private (peer-to-peer)
// socket does not answer. This speaks the wire protocol directly (little endian, EXTERNAL
// auth) and knows just the types systemd's properties use.

type corpusBus struct {
	conn   net.Conn
	r      *bufio.Reader
	serial uint32
}

func corpusDialBus(path string) (*corpusBus, error) {
	conn, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		return nil, err
	}
	b := &corpusBus{conn: conn, r: bufio.NewReaderSize(conn, 1<<20)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	uid := fmt.Sprintf("%x", strconv.Itoa(os.Geteuid()))
	if _, err := conn.Write([]byte("\x00AUTH EXTERNAL " + uid + "\r\n")); err != nil {
		conn.Close()
		return nil, err
	}
	line, err := b.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "OK ") {
		conn.Close()
		return nil, fmt.Errorf("auth: %q %v", line, err)
	}
	if _, err := conn.Write([]byte("BEGIN\r\n")); err != nil {
		conn.Close()
		return nil, err
	}
	return b, nil
}

func (b *corpusBus) close() { b.conn.Close() }

// corpusEnc marshals D-Bus values (offsets relative to the start of the buffer, which is
// where alignment is counted from: the header, or the 8-aligned body).
type corpusEnc struct{ b []byte }

func (e *corpusEnc) align(n int) {
	for len(e.b)%n != 0 {
		e.b = append(e.b, 0)
	}
}
func (e *corpusEnc) u32(v uint32) { e.align(4); e.b = corpusbin.LittleEndian.AppendUint32(e.b, v) }
func (e *corpusEnc) str(s string) { e.u32(uint32(len(s))); e.b = append(append(e.b, s...), 0) }
func (e *corpusEnc) sig(s string) { e.b = append(append(append(e.b, byte(len(s))), s...), 0) }

// call sends a method call with string arguments and returns the reply body's values.
func (b *corpusBus) call(path, iface, member string, args ...string) ([]any, error) {
	b.serial++
	serial := b.serial
	var body corpusEnc
	for _, a := range args {
		body.str(a)
	}
	var h corpusEnc
	h.b = append(h.b, 'l', 1, 0, 1)
	h.u32(uint32(len(body.b)))
	h.u32(serial)
	lenAt := len(h.b)
	h.u32(0)
	h.align(8)
	fieldsStart := len(h.b)
	field := func(code byte, typ string, val string) {
		h.align(8)
		h.b = append(h.b, code)
		h.sig(typ)
		if typ == "g" {
			h.sig(val)
		} else {
			h.str(val)
		}
	}
	field(1, "o", path)
	field(2, "s", iface)
	field(3, "s", member)
	field(6, "s", "org.freedesktop.systemd1")
	if len(args) > 0 {
		field(8, "g", strings.Repeat("s", len(args)))
	}
	corpusbin.LittleEndian.PutUint32(h.b[lenAt:], uint32(len(h.b)-fieldsStart))
	h.align(8)
	msg := append(h.b, body.b...)
	b.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := b.conn.Write(msg); err != nil {
		return nil, err
	}
	for {
		typ, fields, bodyVals, err := b.read()
		if err != nil {
			return nil, err
		}
		rs, _ := fields[5].(uint32)
		if rs != serial || (typ != 2 && typ != 3) {
			continue // a signal or someone else's reply
		}
		if typ == 3 {
			name, _ := fields[4].(string)
			text := ""
			if len(bodyVals) > 0 {
				text, _ = bodyVals[0].(string)
			}
			return nil, fmt.Errorf("%s: %s", name, text)
		}
		return bodyVals, nil
	}
}

// read reads one message: its type, header fields by code, and body values.
func (b *corpusBus) read() (byte, map[byte]any, []any, error) {
	fixed := make([]byte, 16)
	if _, err := ioReadFull(b.r, fixed); err != nil {
		return 0, nil, nil, err
	}
	if fixed[0] != 'l' {
		return 0, nil, nil, fmt.Errorf("big-endian message from the manager: not supported here")
	}
	bodyLen := corpusbin.LittleEndian.Uint32(fixed[4:])
	fieldsLen := corpusbin.LittleEndian.Uint32(fixed[12:])
	if bodyLen > 64<<20 || fieldsLen > 1<<20 {
		return 0, nil, nil, fmt.Errorf("message too large (%d, %d)", bodyLen, fieldsLen)
	}
	headerEnd := 16 + int(fieldsLen)
	bodyStart := (headerEnd + 7) &^ 7
	msg := make([]byte, bodyStart+int(bodyLen))
	copy(msg, fixed)
	if _, err := ioReadFull(b.r, msg[16:]); err != nil {
		return 0, nil, nil, err
	}
	d := &corpusDec{b: msg[:headerEnd], off: 12}
	arr := d.value("a(yv)")
	if d.err != nil {
		return 0, nil, nil, fmt.Errorf("header: %v", d.err)
	}
	fields := map[byte]any{}
	for _, f := range arr.([]any) {
		s := f.([]any)
		fields[s[0].(byte)] = s[1]
	}
	sig, _ := fields[8].(string)
	var vals []any
	d = &corpusDec{b: msg[bodyStart:]}
	for sig != "" {
		one, rest := corpusSigNext(sig)
		vals = append(vals, d.value(one))
		sig = rest
	}
	if d.err != nil {
		return 0, nil, nil, fmt.Errorf("body: %v", d.err)
	}
	return fixed[1], fields, vals, nil
}

func ioReadFull(r *bufio.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// corpusUnitPath is a unit's object path (systemd's bus_label_escape()).
func corpusUnitPath(unit string) string {
	var b strings.Builder
	b.WriteString("/org/freedesktop/systemd1/unit/")
	for i := 0; i < len(unit); i++ {
		c := unit[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

func (b *corpusBus) prop(unit, iface, name string) (any, error) {
	vals, err := b.call(corpusUnitPath(unit), "org.freedesktop.DBus.Properties", "Get", iface, name)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", unit, name, err)
	}
	if len(vals) != 1 {
		return nil, fmt.Errorf("%s %s: %d values", unit, name, len(vals))
	}
	return vals[0], nil
}

func (b *corpusBus) strProp(unit, iface, name string) (string, error) {
	v, err := b.prop(unit, iface, name)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s %s: not a string: %T", unit, name, v)
	}
	return s, nil
}

func (b *corpusBus) strvProp(unit, iface, name string) ([]string, error) {
	v, err := b.prop(unit, iface, name)
	if err != nil {
		return nil, err
	}
	return corpusStrings(v)
}

// execProp reads an Exec*= property, a(sasbttttuii): each command's path and argv.
func (b *corpusBus) execProp(unit, name string) ([]corpusExec, error) {
	v, err := b.prop(unit, "org.freedesktop.systemd1.Service", name)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s %s: %T", unit, name, v)
	}
	var out []corpusExec
	for _, item := range list {
		st, ok := item.([]any)
		if !ok || len(st) < 2 {
			return nil, fmt.Errorf("%s %s: bad entry %v", unit, name, item)
		}
		p, _ := st[0].(string)
		argv, err := corpusStrings(st[1])
		if err != nil {
			return nil, err
		}
		out = append(out, corpusExec{path: p, argv: argv})
	}
	return out, nil
}

func corpusStrings(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not an array: %T", v)
	}
	out := make([]string, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("element %d not a string: %T", i, x)
		}
		out[i] = s
	}
	return out, nil
}

// corpusSigNext splits the first complete type off a signature.
func corpusSigNext(sig string) (string, string) {
	if sig == "" {
		return "", ""
	}
	switch sig[0] {
	case 'a':
		one, rest := corpusSigNext(sig[1:])
		return "a" + one, rest
	case '(', '{':
		open, shut := sig[0], byte(')')
		if open == '{' {
			shut = '}'
		}
		depth := 0
		for i := 0; i < len(sig); i++ {
			switch sig[i] {
			case open:
				depth++
			case shut:
				depth--
				if depth == 0 {
					return sig[:i+1], sig[i+1:]
				}
			}
		}
		return sig, ""
	}
	return sig[:1], sig[1:]
}

func corpusAlignOf(t byte) int {
	switch t {
	case 'y', 'g', 'v':
		return 1
	case 'n', 'q':
		return 2
	case 'x', 't', 'd', '(', '{':
		return 8
	}
	return 4
}

// corpusDec unmarshals little-endian D-Bus values; offsets count from the start of b.
type corpusDec struct {
	b   []byte
	off int
	err error
}

func (d *corpusDec) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || d.off+n > len(d.b) {
		d.err = errors.New("short message")
		return false
	}
	return true
}

func (d *corpusDec) align(n int) {
	pad := (n - d.off%n) % n
	if d.need(pad) {
		d.off += pad
	}
}

func (d *corpusDec) u32() uint32 {
	d.align(4)
	if !d.need(4) {
		return 0
	}
	v := corpusbin.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *corpusDec) value(t string) any {
	if d.err != nil || t == "" {
		return nil
	}
	switch t[0] {
	case 'y':
		if !d.need(1) {
			return nil
		}
		d.off++
		return d.b[d.off-1]
	case 'b':
		return d.u32() != 0
	case 'n', 'q':
		d.align(2)
		if !d.need(2) {
			return nil
		}
		d.off += 2
		return corpusbin.LittleEndian.Uint16(d.b[d.off-2:])
	case 'i':
		return int32(d.u32())
	case 'u', 'h':
		return d.u32()
	case 'x', 't', 'd':
		d.align(8)
		if !d.need(8) {
			return nil
		}
		d.off += 8
		return corpusbin.LittleEndian.Uint64(d.b[d.off-8:])
	case 's', 'o':
		n := int(d.u32())
		if !d.need(n + 1) {
			return nil
		}
		s := string(d.b[d.off : d.off+n])
		d.off += n + 1
		return s
	case 'g':
		if !d.need(1) {
			return nil
		}
		n := int(d.b[d.off])
		d.off++
		if !d.need(n + 1) {
			return nil
		}
		s := string(d.b[d.off : d.off+n])
		d.off += n + 1
		return s
	case 'v':
		sig, _ := d.value("g").(string)
		one, rest := corpusSigNext(sig)
		if rest != "" {
			d.err = fmt.Errorf("variant signature %q", sig)
			return nil
		}
		return d.value(one)
	case 'a':
		n := int(d.u32())
		elem := t[1:]
		d.align(corpusAlignOf(elem[0]))
		if !d.need(n) {
			return nil
		}
		end := d.off + n
		out := []any{}
		for d.err == nil && d.off < end {
			out = append(out, d.value(elem))
		}
		return out
	case '(', '{':
		d.align(8)
		inner := t[1 : len(t)-1]
		var out []any
		for inner != "" && d.err == nil {
			one, rest := corpusSigNext(inner)
			out = append(out, d.value(one))
			inner = rest
		}
		return out
	}
	d.err = fmt.Errorf("type %q not supported", t)
	return nil
}
