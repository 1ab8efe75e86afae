package units

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
)

// goSystemdSerialize is what serialize replaced: Header + unit.Serialize.
func goSystemdSerialize(opts []*unit.UnitOption) []byte {
	var b bytes.Buffer
	b.WriteString(Header)
	_, _ = io.Copy(&b, unit.Serialize(opts))
	return b.Bytes()
}

// TestSerializeMatchesGoSystemd holds serialize to go-systemd's output:
// for option lists with interleaved and repeated sections, empty values
// and none at all, and for every drop-in of the golden cases.
func TestSerializeMatchesGoSystemd(t *testing.T) {
	check := func(opts []*unit.UnitOption) {
		t.Helper()
		if got, want := serialize(opts), goSystemdSerialize(opts); !bytes.Equal(got, want) {
			t.Fatalf("serialize(%v)\n%q\nwant (unit.Serialize)\n%q", opts, got, want)
		}
	}
	check(nil)
	r := rand.New(rand.NewPCG(1, 2))
	sections := []string{"Unit", "Service", "Timer", "Install", "X-Extra", "Socket"}
	values := []string{"", "a", "backup@x.service", "/usr/bin/env a\\ b", "with = sign", "ÿ ünïcode"}
	for range 2000 {
		var opts []*unit.UnitOption
		for range r.IntN(12) {
			opts = append(opts, unit.NewUnitOption(
				sections[r.IntN(len(sections))], "Key"+string(rune('A'+r.IntN(5))), values[r.IntN(len(values))]))
		}
		check(opts)
	}
	for _, name := range goldenCases(t) {
		set := loadCase(t, name)
		r := renderer{cfg: set.Config, helper: goldenHelper}
		prev := ""
		for _, st := range set.Stacks {
			files, err := r.stack(st, prev)
			if err != nil {
				t.Fatal(err)
			}
			prev = st.Name
			for _, f := range files {
				if f.Link != "" {
					continue
				}
				opts, err := unit.DeserializeOptions(bytes.NewReader(f.Content))
				if err != nil {
					t.Fatalf("%s: %v", f.Path, err)
				}
				check(opts)
				if got := goSystemdSerialize(opts); !bytes.Equal(got, f.Content) {
					t.Errorf("%s: not what unit.Serialize gives:\n%s", f.Path, firstDiff(string(got), string(f.Content)))
				}
			}
		}
	}
}

func BenchmarkSerialize(b *testing.B) {
	set := manyStacks(b, 1)
	r := renderer{cfg: set.Config, helper: goldenHelper}
	files, err := r.stack(set.Stacks[0], "stack0000")
	if err != nil {
		b.Fatal(err)
	}
	opts, err := unit.DeserializeOptions(bytes.NewReader(files[0].Content))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serialize(opts)
		}
	})
	b.Run("go-systemd", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			goSystemdSerialize(opts)
		}
	})
}
