package units

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
)

// TestSerializeAsGoSystemd: serialize writes what go-systemd's
// unit.Serialize writes, after the header, for options in any order of
// sections, empty values and no options included, into a buffer of
// exactly that size.
func TestSerializeAsGoSystemd(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 2))
	sections := []string{"Unit", "Service", "Timer", "Install", "X-Y"}
	for n := range 300 {
		var opts []*unit.UnitOption
		for range n % 17 {
			sec := sections[r.IntN(len(sections))]
			opts = append(opts, unit.NewUnitOption(sec, fmt.Sprintf("K%d", r.IntN(5)), strings.Repeat("v ", r.IntN(4))))
		}
		got, err := serialize(opts)
		if err != nil {
			t.Fatal(err)
		}
		want, err := io.ReadAll(unit.Serialize(opts))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != Header+string(want) {
			t.Fatalf("serialize(%v):\n%q\nunit.Serialize:\n%q", opts, got, Header+string(want))
		}
		if cap(got) != len(got) {
			t.Errorf("serialize sized its buffer %d for %d bytes", cap(got), len(got))
		}
	}
}
