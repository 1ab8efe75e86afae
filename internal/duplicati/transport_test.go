package duplicati

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The REST route never follows a redirect: the second server must not get the password
// (auth/login body), the bearer token or the PreAuth token, nor any request at all. The
// error names the Location's host.
func TestRESTDoesNotFollowRedirects(t *testing.T) {
	const (
		password = "pw-very-secret"
		bearer   = "bearer-very-secret"
		preAuth  = "preauth-very-secret"
	)
	for _, tc := range []struct {
		name  string
		code  int
		opts  Options
		login bool // auth/login answers; everything else redirects
	}{
		{"password login 307", http.StatusTemporaryRedirect, Options{Password: password}, false},
		{"password login 308", http.StatusPermanentRedirect, Options{Password: password}, false},
		{"password login 302", http.StatusFound, Options{Password: password}, false},
		{"bearer 307", http.StatusTemporaryRedirect, Options{Password: password}, true},
		{"bearer 301", http.StatusMovedPermanently, Options{Password: password}, true},
		{"preauth 307", http.StatusTemporaryRedirect, Options{Token: preAuth}, false},
		{"preauth 303", http.StatusSeeOther, Options{Token: preAuth}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var got []string
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got = append(got, fmt.Sprintf("%s %s auth=%q body=%q", r.Method, r.URL, r.Header.Get("Authorization"), b))
				mu.Unlock()
				fmt.Fprint(w, `{"AccessToken":"x","ProgramState":"Running"}`)
			}))
			defer other.Close()
			first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.login && r.URL.Path == "/api/v1/auth/login" {
					fmt.Fprintf(w, `{"AccessToken":%q}`, bearer)
					return
				}
				http.Redirect(w, r, other.URL+r.URL.Path, tc.code)
			}))
			defer first.Close()
			o := tc.opts
			o.URL = first.URL
			b, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.State(context.Background())
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("err = %v, want ErrUnreachable", err)
			}
			host := strings.TrimPrefix(other.URL, "http://")
			if msg := err.Error(); !strings.Contains(msg, "redirect to host "+host) || !strings.Contains(msg, "not followed") {
				t.Errorf("error %q does not name the Location's host %s", msg, host)
			}
			for _, secret := range []string{password, bearer, preAuth} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) > 0 {
				t.Fatalf("the redirect target received %q", got)
			}
		})
	}
}

// writePEM writes blocks to a file in dir and returns its path.
func writePEM(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ca_file: a private CA is trusted in addition to the system roots; without it the
// server's certificate is refused; a file that is not a PEM certificate is refused with
// an error that names the problem.
func TestTrustCAFile(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ActiveTask":null,"ProgramState":"Running","SchedulerQueueIds":[]}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	opts := Options{URL: srv.URL, Token: "token-of-the-test"}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.State(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: err = %v, want a certificate error", err)
	}

	b, _ = New(opts)
	if err := TrustCAFile(b, writePEM(t, "ca.pem", append([]byte("# our CA\n"), certPEM...))); err != nil {
		t.Fatal(err)
	}
	if st, err := b.State(context.Background()); err != nil || !st.Idle() {
		t.Fatalf("with ca_file: %v %v", st, err)
	}

	// Another CA does not make the server's certificate trusted.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: srv.Certificate().SerialNumber, Subject: srv.Certificate().Subject, IsCA: true, BasicConstraintsValid: true,
		NotBefore: srv.Certificate().NotBefore, NotAfter: srv.Certificate().NotAfter, KeyUsage: x509.KeyUsageCertSign}
	otherDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = New(opts)
	if err := TrustCAFile(b, writePEM(t, "other.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherDER}))); err != nil {
		t.Fatal(err)
	}
	if _, err := b.State(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("with another CA: err = %v, want a certificate error", err)
	}

	keyDER, _ := x509.MarshalECPrivateKey(key)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope.pem"), "no such file"},
		{"directory", t.TempDir(), "not a regular file"},
		{"empty", writePEM(t, "empty.pem", nil), "holds no PEM certificate"},
		{"DER", writePEM(t, "ca.der", srv.Certificate().Raw), "holds no PEM certificate"},
		{"garbage", writePEM(t, "g.pem", []byte("hello\n")), "holds no PEM certificate"},
		{"private key", writePEM(t, "k.pem", append(append([]byte{}, certPEM...), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)), `holds a "EC PRIVATE KEY" PEM block`},
		{"bad certificate", writePEM(t, "bad.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})), "certificate 1 is not a valid X.509 certificate"},
		{"truncated", writePEM(t, "t.pem", append(append([]byte{}, certPEM...), certPEM[:len(certPEM)/2]...)), "broken PEM block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := New(opts)
			err := TrustCAFile(b, tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ca_file") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}

	// https only, REST route only.
	good := writePEM(t, "ca.pem", certPEM)
	if b, _ := New(Options{URL: "http://127.0.0.1:8200", Token: "token-of-the-test"}); TrustCAFile(b, good) == nil {
		t.Error("ca_file accepted for an http:// url")
	}
	if b, _ := New(Options{Command: []string{"true"}}); TrustCAFile(b, good) == nil {
		t.Error("ca_file accepted for the exec route")
	}
}

// Certificate checks are never turned off: no InsecureSkipVerify in the program's code.
func TestNoInsecureSkipVerify(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skip("not in the module tree")
	}
	needle := "Insecure" + "SkipVerify"
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "vendor" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), needle) {
			t.Errorf("%s sets %s", p, needle)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
