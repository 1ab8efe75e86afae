package shimport

import (
	"fmt"
	"strings"
)

// expand evaluates one raw shell word of an assignment the way the shell
// would, as far as that is possible without running anything: quotes,
// backslashes, $NAME, ${NAME}, ${NAME:-word} and ${NAME-word} of
// variables set earlier in the file. Anything else (command substitution,
// arithmetic, positional parameters, variables the file does not set,
// tilde) is an error saying what.
func expand(w string, vars map[string]string) (string, error) {
	var b strings.Builder
	i := 0
	if strings.HasPrefix(w, "~") {
		return "", fmt.Errorf("~ (the home directory) is expanded by the shell")
	}
	for i < len(w) {
		c := w[i]
		switch c {
		case '\\':
			if i+1 < len(w) {
				if w[i+1] != '\n' {
					b.WriteByte(w[i+1])
				}
				i += 2
			} else {
				i++
			}
		case '\'':
			j := strings.IndexByte(w[i+1:], '\'')
			b.WriteString(w[i+1 : i+1+j])
			i += j + 2
		case '"':
			i++
			for i < len(w) && w[i] != '"' {
				switch w[i] {
				case '\\':
					if i+1 < len(w) && strings.IndexByte("$`\"\\\n", w[i+1]) >= 0 {
						if w[i+1] != '\n' {
							b.WriteByte(w[i+1])
						}
						i += 2
						continue
					}
					b.WriteByte('\\')
					i++
				case '$':
					s, n, err := dollar(w[i:], vars)
					if err != nil {
						return "", err
					}
					b.WriteString(s)
					i += n
				case '`':
					return "", fmt.Errorf("command substitution `...`")
				default:
					b.WriteByte(w[i])
					i++
				}
			}
			i++
		case '`':
			return "", fmt.Errorf("command substitution `...`")
		case '$':
			if strings.HasPrefix(w[i:], "$'") {
				s, n, err := ansiC(w[i:])
				if err != nil {
					return "", err
				}
				b.WriteString(s)
				i += n
				continue
			}
			s, n, err := dollar(w[i:], vars)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			i += n
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

// dollar evaluates the expansion at the start of s ("$..."); it returns
// the value and how many bytes it took.
func dollar(s string, vars map[string]string) (string, int, error) {
	if len(s) < 2 {
		return "$", 1, nil
	}
	c := s[1]
	switch {
	case c == '(':
		if strings.HasPrefix(s, "$((") {
			return "", 0, fmt.Errorf("arithmetic $((...))")
		}
		return "", 0, fmt.Errorf("command substitution $(...)")
	case c == '{':
		end := matchBrace(s)
		if end < 0 {
			return "", 0, fmt.Errorf("unterminated ${")
		}
		inner := s[2:end]
		j := 0
		for j < len(inner) && isNameByte(inner[j], j == 0) {
			j++
		}
		name, rest := inner[:j], inner[j:]
		if name == "" {
			return "", 0, fmt.Errorf("the expansion ${%s}", inner)
		}
		v, set := vars[name]
		switch {
		case rest == "":
			if !set {
				return "", 0, fmt.Errorf("$%s, which this file does not set", name)
			}
			return v, end + 1, nil
		case strings.HasPrefix(rest, ":-") || strings.HasPrefix(rest, "-"):
			def := strings.TrimPrefix(strings.TrimPrefix(rest, ":"), "-")
			if set && (v != "" || !strings.HasPrefix(rest, ":")) {
				return v, end + 1, nil
			}
			d, err := expand(def, vars)
			if err != nil {
				return "", 0, err
			}
			return d, end + 1, nil
		default:
			return "", 0, fmt.Errorf("the expansion ${%s}", inner)
		}
	case isNameByte(c, true):
		j := 1
		for j < len(s) && isNameByte(s[j], false) {
			j++
		}
		name := s[1:j]
		v, set := vars[name]
		if !set {
			return "", 0, fmt.Errorf("$%s, which this file does not set", name)
		}
		return v, j, nil
	case (c >= '0' && c <= '9') || strings.IndexByte("@*#?$!-", c) >= 0:
		return "", 0, fmt.Errorf("the special parameter $%c", c)
	}
	return "$", 1, nil
}

// matchBrace is the index of the } closing the ${ at the start of s.
func matchBrace(s string) int {
	depth := 0
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			if j := strings.IndexByte(s[i+1:], '\''); j >= 0 {
				i += j + 1
			}
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// ansiC decodes bash's $'...' quoting (the common escapes only).
func ansiC(s string) (string, int, error) {
	var b strings.Builder
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c == '\'' {
			return b.String(), i + 1, nil
		}
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\', '\'', '"', '?':
			b.WriteByte(s[i])
		default:
			return "", 0, fmt.Errorf("the escape \\%c in $'...'", s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated $'...'")
}

// shellRefs lists the variables a piece of shell refers to ($NAME,
// ${NAME...}), outside single quotes and comments, in order, once each.
func shellRefs(s string) []string {
	var out []string
	seen := map[string]bool{}
	inDouble := false
	wordStart := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			wordStart = false
			continue
		case c == '\'' && !inDouble:
			if j := strings.IndexByte(s[i+1:], '\''); j >= 0 {
				i += j + 1
			}
		case c == '"':
			inDouble = !inDouble
		case c == '#' && !inDouble && wordStart:
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '$' && i+1 < len(s):
			j := i + 1
			if s[j] == '{' {
				j++
			}
			k := j
			for k < len(s) && isNameByte(s[k], k == j) {
				k++
			}
			if k > j {
				n := s[j:k]
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
		wordStart = c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')'
	}
	return out
}
