package duplicati

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/internal/duplicatisim"
)

// BenchmarkRunLatency measures how long after the simulated job ends Run returns
// ("end-to-return" = Run's return time minus the sim's Event.Finished), per route and poll
// interval. ns/op is the whole Run (enqueue, a 300ms job, detection, result lookup).
//
//	go test -run '^$' -bench RunLatency -benchtime 10x ./internal/duplicati
func BenchmarkRunLatency(b *testing.B) {
	for _, bc := range []struct {
		route string
		poll  time.Duration // 0 = the route's default
	}{
		{"api", 0}, {"api", 100 * time.Millisecond},
		{"exec", 0}, {"exec", 250 * time.Millisecond},
	} {
		name := bc.route + "/poll=default"
		if bc.poll > 0 {
			name = fmt.Sprintf("%s/poll=%s", bc.route, bc.poll)
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, docs(300*time.Millisecond, "Success"), duplicatisim.Quirks{}, envOpts{})
			be := e.backend(b, bc.route, func(o *Options) {
				o.PollInterval = bc.poll
				o.Logf = nil
			})
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				oc, err := be.Run(context.Background(), "Docs")
				ret := time.Now()
				if err != nil {
					b.Fatal(err)
				}
				ev, ok := eventFor(e.sim, oc)
				if !ok || ev.Finished.IsZero() {
					b.Fatalf("no finished event for %+v", oc)
				}
				lat = append(lat, ret.Sub(ev.Finished))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			var sum time.Duration
			for _, l := range lat {
				sum += l
			}
			b.ReportMetric(float64(sum.Milliseconds())/float64(len(lat)), "ms-end-to-return")
			b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "ms-end-to-return-max")
		})
	}
}
