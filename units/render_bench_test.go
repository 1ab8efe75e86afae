package units

import (
	"fmt"
	"testing"

	"github.com/backup-stack/backup-stack/hcl"
)

// manyStacks is the "hooks" golden case with its one stack copied n times
// under different names.
func manyStacks(b *testing.B, n int) *hcl.Set {
	set := loadCase(b, "hooks")
	proto := *set.Stacks[0]
	set.Stacks = nil
	for i := range n {
		st := proto
		st.Name = fmt.Sprintf("stack%04d", i)
		set.Stacks = append(set.Stacks, &st)
	}
	return set
}

// BenchmarkRender1000 renders 1000 stacks with every hook kind.
func BenchmarkRender1000(b *testing.B) {
	set := manyStacks(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(set, Options{Helper: goldenHelper}); err != nil {
			b.Fatal(err)
		}
	}
}
