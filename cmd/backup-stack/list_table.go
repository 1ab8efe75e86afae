package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// tableOpts is how the overview is drawn.
type tableOpts struct {
	// Width is the number of columns to fit into; 0 draws every column
	// with its whole text (output that is not a terminal: grep and
	// scripts see whole reasons).
	Width int
	Color bool
	Now   time.Time
}

// ANSI SGR colours; only used when tableOpts.Color is set.
const (
	sgrBold   = "1"
	sgrRed    = "31"
	sgrGreen  = "32"
	sgrYellow = "33"
	sgrCyan   = "36"
	sgrAlarm  = "1;31"
)

// tableCell is one cell's text and the colour it is drawn in ("" = none).
type tableCell struct {
	text, sgr string
}

// tableColumn is a column of the overview. drop is the order in which columns go when the
// table does not fit (1 first; 0 = never dropped); the flexible column
// takes the room left and is cut to it.
type tableColumn struct {
	head  string
	drop  int
	flex  bool
	max   int // cut to this many runes when the width is bounded (0 = no cap)
	value func(r stackStatus, now time.Time) tableCell
}

// minFlex is the narrowest the detail column is drawn; below it, columns are dropped.
const minFlex = 24

var overviewColumns = []tableColumn{
	{head: "STACK", max: 18, value: func(r stackStatus, _ time.Time) tableCell { return tableCell{text: r.Stack} }},
	{head: "STATE", value: stateCell},
	{head: "LAST RUN", value: func(r stackStatus, now time.Time) tableCell {
		if r.LastRun == nil {
			return tableCell{text: "never"}
		}
		return tableCell{text: relativeTime(*r.LastRun, now)}
	}},
	{head: "RESULT", value: resultCell},
	{head: "TOOK", drop: 1, value: func(r stackStatus, _ time.Time) tableCell {
		return tableCell{text: cellDuration(r.Duration, r.LastRun != nil)}
	}},
	{head: "DOWN", drop: 2, value: func(r stackStatus, _ time.Time) tableCell {
		return tableCell{text: cellDuration(r.Downtime, r.LastRun != nil)}
	}},
	{head: "NEXT RUN", drop: 3, value: func(r stackStatus, now time.Time) tableCell {
		switch {
		case r.NextRunAt != nil:
			return tableCell{text: relativeTime(*r.NextRunAt, now)}
		case r.NextRun != "":
			return tableCell{text: r.NextRun}
		}
		return tableCell{text: "-"}
	}},
	{head: "DETAIL", flex: true, value: detailCell},
}

func stateCell(r stackStatus, _ time.Time) tableCell {
	switch r.State {
	case stateRunning:
		return tableCell{"running", sgrCyan}
	case stateWaiting:
		return tableCell{"waiting", sgrYellow}
	case stateHeld:
		return tableCell{"held", sgrYellow}
	case stateLeftDown:
		return tableCell{"LEFT DOWN", sgrAlarm} // capitals: it needs a person (backup-stack recover)
	case stateUnknown:
		return tableCell{"unknown", sgrYellow}
	}
	return tableCell{text: "idle"}
}

func resultCell(r stackStatus, _ time.Time) tableCell {
	switch {
	case r.LastResult == "":
		return tableCell{text: "-"}
	case r.LastResult == "success":
		return tableCell{"success", sgrGreen}
	case strings.HasPrefix(r.LastResult, "success"):
		// "success, result unknown": counted as a success, said in the detail.
		return tableCell{"success?", sgrYellow}
	}
	return tableCell{r.LastResult, sgrRed}
}

// detailCell says what is going on now, or else what the last run left to know:
// the unit's live status text, why the stack is left down, why the last run failed.
func detailCell(r stackStatus, now time.Time) tableCell {
	switch {
	case r.State == stateLeftDown:
		text := "backup-stack recover restores it"
		if r.LeftDownSince != nil {
			text += " (interrupted " + relativeTime(*r.LeftDownSince, now) + ")"
		}
		if r.NoStackFile {
			text = "(no stack file now) " + text
		}
		return tableCell{text, sgrRed}
	case (r.State == stateRunning || r.State == stateWaiting) && r.StatusText != "":
		return tableCell{text: shortReason(r.StatusText)}
	case r.State == stateUnknown:
		return tableCell{"no user manager reachable", sgrYellow}
	case r.Reason != "":
		return tableCell{text: shortReason(r.Reason)}
	case len(r.Failures) > 0:
		return tableCell{text: shortReason(strings.Join(r.Failures, "; "))}
	case len(r.Unknown) > 0:
		return tableCell{text: "result unknown: " + strings.Join(r.Unknown, ", ")}
	}
	return tableCell{}
}

// drawTable writes the overview: a header and one line per row, every line
// at most opts.Width columns (when bounded) and never wrapped.
func drawTable(w io.Writer, rows []stackStatus, opts tableOpts) error {
	cells := make([][]tableCell, len(rows))
	for i, r := range rows {
		for _, c := range overviewColumns {
			cells[i] = append(cells[i], c.value(r, opts.Now))
		}
	}
	widths := tableLayout(cells, opts.Width)
	// Narrower than the columns that never go: the lines themselves are cut,
	// which colour escapes would get in the way of.
	tooNarrow := opts.Width > 0 && lineWidth(widths) > opts.Width
	var b strings.Builder
	line := func(get func(i int) tableCell) {
		var parts []string
		last := -1
		for i := range overviewColumns {
			if widths[i] > 0 {
				last = i
			}
		}
		for i := range overviewColumns {
			if widths[i] == 0 {
				continue
			}
			c := get(i)
			text := cutRunes(c.text, widths[i])
			pad := ""
			if i != last { // no trailing blanks
				pad = strings.Repeat(" ", widths[i]-utf8.RuneCountInString(text))
			}
			if opts.Color && !tooNarrow && c.sgr != "" && text != "" {
				text = "\x1b[" + c.sgr + "m" + text + "\x1b[0m"
			}
			parts = append(parts, text+pad)
		}
		l := strings.TrimRight(strings.Join(parts, "  "), " ")
		if tooNarrow {
			l = cutRunes(l, opts.Width)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	line(func(i int) tableCell { return tableCell{overviewColumns[i].head, sgrBold} })
	for _, row := range cells {
		line(func(i int) tableCell { return row[i] })
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// lineWidth is the width of a line drawn with these column widths.
func lineWidth(widths []int) int {
	n, total := 0, 0
	for _, w := range widths {
		if w > 0 {
			total += w
			n++
		}
	}
	return total + 2*max(n-1, 0)
}

// tableLayout returns each column's width (0 = dropped) so that the table fits
// into width columns (0 = unbounded): capped columns are cut first, then
// columns are dropped in their drop order, and the flexible column takes
// what is left. Only a very narrow width cuts the first column further.
func tableLayout(cells [][]tableCell, width int) []int {
	const gap = 2
	widths := make([]int, len(overviewColumns))
	for i, c := range overviewColumns {
		widths[i] = utf8.RuneCountInString(c.head)
		for _, row := range cells {
			widths[i] = max(widths[i], utf8.RuneCountInString(row[i].text))
		}
		if width > 0 && c.max > 0 {
			widths[i] = min(widths[i], c.max)
		}
	}
	if width <= 0 {
		return widths
	}
	flex := -1
	fixed := func() int {
		n, total := 0, 0
		for i, w := range widths {
			if i != flex && w > 0 {
				total += w
				n++
			}
		}
		return total + gap*n // the gap before the flexible column included
	}
	for i, c := range overviewColumns {
		if c.flex {
			flex = i
		}
	}
	need := 0 // the room the flexible column asks for: minFlex, or less when its cells are short
	if flex >= 0 {
		need = min(minFlex, widths[flex])
	}
	for next := 1; fixed()+need > width; next++ {
		dropped := false
		for i, c := range overviewColumns {
			if c.drop == next {
				widths[i], dropped = 0, true
			}
		}
		if !dropped {
			break // nothing left to drop
		}
	}
	if flex >= 0 {
		widths[flex] = min(widths[flex], max(width-fixed(), 0))
		if widths[flex] < utf8.RuneCountInString(overviewColumns[flex].head) {
			widths[flex] = 0
		}
	}
	if over := fixed() - gap - width; flex >= 0 && widths[flex] == 0 && over > 0 {
		// A very narrow terminal: cut the stack names, down to 8 runes (drawTable cuts the rest).
		widths[0] = max(widths[0]-over, min(widths[0], 8))
	}
	return widths
}

// cut shortens s to n runes, marking the cut with an ellipsis.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:n])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// cellDuration is a run's duration or downtime in a table cell: tenths
// under 10 s, then whole seconds, minutes and seconds, hours and minutes.
func cellDuration(seconds float64, ran bool) string {
	if !ran {
		return "-"
	}
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// relativeTime is t relative to now, in one style for the past and the future:
// "40 s ago" / "in 40 s", then minutes, hours (up to 36 h) and days, each
// rounded to the nearest whole unit.
func relativeTime(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if d < 0 {
		d = -d
	}
	var n int64
	var unit string
	switch {
	case d < 90*time.Second:
		n, unit = int64(d.Round(time.Second)/time.Second), "s"
	case d < 90*time.Minute:
		n, unit = int64(d.Round(time.Minute)/time.Minute), "min"
	case d < 36*time.Hour:
		n, unit = int64(d.Round(time.Hour)/time.Hour), "h"
	default:
		n, unit = int64(d.Round(24*time.Hour)/(24*time.Hour)), "d"
	}
	if future {
		return fmt.Sprintf("in %d %s", n, unit)
	}
	return fmt.Sprintf("%d %s ago", n, unit)
}
