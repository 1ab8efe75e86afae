package templates

import (
	"bytes"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
)

// TestTemplatesParse: every template is a unit file go-systemd reads, and
// the rootless render service calls `backup-stack render`.
func TestTemplatesParse(t *testing.T) {
	for _, set := range []struct {
		names []string
		read  func(string) ([]byte, error)
	}{{Names, FS.ReadFile}, {RenderNames, RenderFS.ReadFile}} {
		for _, n := range set.names {
			b, err := set.read(n)
			if err != nil {
				t.Fatal(err)
			}
			opts, err := unit.DeserializeOptions(bytes.NewReader(b))
			if err != nil || len(opts) == 0 {
				t.Errorf("%s: %v (%d options)", n, err, len(opts))
			}
			for _, o := range opts {
				if o.Name == "ExecStart" && !strings.HasPrefix(o.Value, HelperPlaceholder+" ") {
					t.Errorf("%s: ExecStart=%s does not run the helper", n, o.Value)
				}
				if n == "backup-generator-render.service" && o.Name == "ExecStart" && !strings.Contains(o.Value, " render ") {
					t.Errorf("%s: ExecStart=%s does not call render", n, o.Value)
				}
			}
		}
	}
}
