package duplicati

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Progress is Duplicati's progressstate of our running task (REST route only: the util
// of the exec route shows no progress), for the live status line of the unit.
type Progress struct {
	TaskID int64
	Phase  string
	// Fraction is OverallProgress, 0 to 1.
	Fraction                   float64
	ProcessedBytes, TotalBytes int64
	ProcessedFiles, TotalFiles int64
	StillCounting              bool
	// Remaining is EstimatedTimeToCompletion; 0 when Duplicati gives none.
	Remaining time.Duration
}

// progressStatusEvery is how often the REST route reads progressstate for Options.Progress
// while a task runs (a var so tests can shorten it): a status line is not worth more.
var progressStatusEvery = 2 * time.Second

// progress reads progressstate; ok is false when it failed or is about another task.
func (a *apiBackend) progress(ctx context.Context, id int64) (Progress, bool) {
	var p struct {
		TaskID                    int64
		Phase                     string
		OverallProgress           float64
		ProcessedFileCount        int64
		ProcessedFileSize         int64
		TotalFileCount            int64
		TotalFileSize             int64
		StillCounting             bool
		EstimatedTimeToCompletion string
	}
	if err := a.do(ctx, http.MethodGet, "progressstate", &p); err != nil || p.TaskID != id {
		return Progress{}, false
	}
	left, _ := parseTimeSpan(p.EstimatedTimeToCompletion)
	return Progress{
		TaskID: p.TaskID, Phase: p.Phase, Fraction: p.OverallProgress,
		ProcessedBytes: p.ProcessedFileSize, TotalBytes: p.TotalFileSize,
		ProcessedFiles: p.ProcessedFileCount, TotalFiles: p.TotalFileCount,
		StillCounting: p.StillCounting, Remaining: left,
	}, true
}

// reportProgress passes the task's progress to Options.Progress, at most every
// progressStatusEvery.
func (w *apiWait) reportProgress(ctx context.Context) {
	if w.a.o.Progress == nil || time.Since(w.lastProgress) < progressStatusEvery {
		return
	}
	w.lastProgress = time.Now()
	if p, ok := w.a.progress(ctx, w.id); ok {
		w.a.o.Progress(p)
	}
}

// parseTimeSpan reads a .NET TimeSpan as System.Text.Json writes it: [-][d.]hh:mm:ss[.fffffff].
func parseTimeSpan(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a TimeSpan", s)
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var days int64
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return 0, bad
	}
	if d, h, ok := strings.Cut(f[0], "."); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			return 0, bad
		}
		days, f[0] = n, h
	}
	sec, frac, _ := strings.Cut(f[2], ".")
	var n [3]int64
	for i, v := range []string{f[0], f[1], sec} {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil || x < 0 {
			return 0, bad
		}
		n[i] = x
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(n[0])*time.Hour + time.Duration(n[1])*time.Minute + time.Duration(n[2])*time.Second
	if frac != "" {
		x, err := strconv.ParseFloat("0."+frac, 64)
		if err != nil {
			return 0, bad
		}
		d += time.Duration(x * float64(time.Second))
	}
	if neg {
		d = -d
	}
	return d, nil
}

// OnProgress makes b pass the progress of its running task to f (see Options.Progress),
// for a backend built elsewhere. Call it before Run. The exec route has no progress to
// give: there it does nothing.
func OnProgress(b Backend, f func(Progress)) {
	if a, ok := b.(*apiBackend); ok {
		a.o.Progress = f
	}
}
