package main

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// settingsStore is ServerUtil's settings file: a JSON list of {RefreshToken, RefreshNonce,
// HostUrl, ServerDatafolder}, matched on the exact host URL. 2.1.0.x stores the refresh
// token of every sign-in there, so later calls refresh instead of signing in; later releases
// only read it (and store rotated tokens after a refresh).
type settingsStore struct {
	path       string // "" = no settings file location known (no HOME): nothing is stored
	key        bool   // an encryption key was given
	datafolder *string
}

type persisted struct {
	RefreshToken     *string
	RefreshNonce     *string `json:",omitempty"`
	HostUrl          string
	ServerDatafolder *string
}

// settingsPath is --settings-file (relative to the default folder), else settings.json in
// $XDG_CONFIG_HOME/Duplicati or ~/.config/Duplicati (.NET's ApplicationData on Linux).
func settingsPath(flag string, getenv func(string) string) string {
	if flag != "" && filepath.IsAbs(flag) {
		return flag
	}
	name := flag
	if name == "" {
		name = "settings.json"
	}
	base := getenv("XDG_CONFIG_HOME")
	if base == "" {
		if home := getenv("HOME"); home != "" {
			base = filepath.Join(home, ".config")
		}
	}
	if base == "" {
		return ""
	}
	return filepath.Join(base, "Duplicati", name)
}

func (s *settingsStore) load() []persisted {
	if s == nil || s.path == "" {
		return nil
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil
	}
	var l []persisted
	_ = json.Unmarshal(b, &l)
	return l
}

func (s *settingsStore) entry(host string) *persisted {
	for _, p := range s.load() {
		if p.HostUrl == host {
			return &p
		}
	}
	return nil
}

func (s *settingsStore) refreshToken(host string) string {
	if p := s.entry(host); p != nil && p.RefreshToken != nil {
		return *p.RefreshToken
	}
	return ""
}

func (s *settingsStore) refreshNonce(host string) string {
	if p := s.entry(host); p != nil && p.RefreshNonce != nil {
		return *p.RefreshNonce
	}
	return ""
}

// save is Settings.Save: the warning without a key, then the file is rewritten.
func (s *settingsStore) save(o *output, host, token, nonce string) error {
	if s == nil || s.path == "" {
		return nil
	}
	if !s.key {
		o.msg("Warning: The encryption key is missing, saving login token without encryption")
	}
	var out []persisted
	for _, p := range s.load() {
		if p.HostUrl != host {
			out = append(out, p)
		}
	}
	e := persisted{RefreshToken: &token, HostUrl: host, ServerDatafolder: s.datafolder}
	if nonce != "" {
		e.RefreshNonce = &nonce
	}
	out = append(out, e)
	b, _ := json.Marshal(out)
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return dotnetError{"System.IO.DirectoryNotFoundException", err.Error()}
	}
	if err := os.WriteFile(s.path, b, 0o600); err != nil {
		return dotnetError{"System.UnauthorizedAccessException", err.Error()}
	}
	return nil
}
