package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backup-stack/backup-stack/hcl"
	"github.com/backup-stack/backup-stack/internal/exitcode"
)

func restDuplicati(url string, tokenFile string) hcl.Duplicati {
	return hcl.Duplicati{URL: url, TokenFile: tokenFile, RunTimeout: 5 * time.Second, WaitTimeout: time.Minute}
}

// backend says once, in the journal, that an http:// url to another host sends the token in
// clear; a loopback or https url says nothing.
func TestBackendWarnsOfCleartext(t *testing.T) {
	tok := secretFile(t, goodToken, 0o600)
	for _, c := range []struct {
		url, want string
	}{
		{"http://192.168.1.5:8200", "duplicati: url is plain http:// to 192.168.1.5, which is not a loopback address: the password or token crosses the network in clear; use https://"},
		{"http://duplicati:8200", "plain http:// to duplicati,"},
		{"http://127.0.0.1:8200", ""},
		{"http://[::1]:8200", ""},
		{"http://localhost:8200", ""},
		{"https://duplicati.example:8200", ""},
	} {
		var buf bytes.Buffer
		if _, err := backend(restDuplicati(c.url, tok), time.Minute, 0, slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		out := buf.String()
		switch {
		case c.want == "" && out != "":
			t.Errorf("%s: logged %q", c.url, out)
		case c.want != "" && (strings.Count(out, "crosses the network in clear") != 1 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, c.want)):
			t.Errorf("%s: logged %q, want one warning saying %q", c.url, out, c.want)
		}
		if strings.Contains(out, goodToken) {
			t.Errorf("the token is in the log: %q", out)
		}
	}
}

// ca_file reaches the REST client: with it the private CA's server is trusted, without it
// not; a bad ca_file is a usage error.
func TestBackendCAFile(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ActiveTask":null,"ProgramState":"Running","SchedulerQueueIds":[]}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	tok := secretFile(t, goodToken, 0o600)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)

	d := restDuplicati(srv.URL, tok)
	b, err := backend(d, time.Minute, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.State(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v, want a certificate error", err)
	}

	d.CAFile = ca
	if b, err = backend(d, time.Minute, 0, quiet); err != nil {
		t.Fatal(err)
	}
	if st, err := b.State(context.Background()); err != nil || !st.Idle() {
		t.Fatalf("with ca_file: %v %v", st, err)
	}

	for _, c := range []struct {
		name string
		d    hcl.Duplicati
		want string
	}{
		{"missing", func() hcl.Duplicati { d := restDuplicati(srv.URL, tok); d.CAFile = ca + ".missing"; return d }(), "ca_file: open " + ca + ".missing"},
		{"not PEM", func() hcl.Duplicati { d := restDuplicati(srv.URL, tok); d.CAFile = tok; return d }(), "holds no PEM certificate"},
		{"http url", func() hcl.Duplicati { d := restDuplicati("http://127.0.0.1:8200", tok); d.CAFile = ca; return d }(), "is plain http://"},
	} {
		_, err := backend(c.d, time.Minute, 0, quiet)
		if err == nil || !strings.Contains(err.Error(), c.want) || codeOf(err) != exitcode.Usage {
			t.Errorf("%s: %v (code %d), want a usage error saying %q", c.name, err, codeOf(err), c.want)
		}
	}
}
