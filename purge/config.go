package purge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Factory builds one adapter from its site.yaml settings.
type Factory func(ctx context.Context, s *Settings) (CDN, error)

var (
	factoriesMu sync.RWMutex
	factories   = map[string]Factory{}
)

// Register makes a CDN kind ("fastly") known to FromConfig. Adapters cannot be wired in
// here directly (they import this package), so package purge/cdns registers them all;
// a program that purges imports it once.
func Register(kind string, f Factory) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	factories[kind] = f
}

// Kinds are the CDN kinds stump knows, in the order the docs list them.
var Kinds = []string{"varnish", "fastly", "cloudfront", "cloudflare"}

// FromConfig builds the adapters of a site's `cdn:` list (build/config.Site.CDN): each
// entry a one-key map from a kind to its settings, e.g.
//
//	cdn:
//	  - fastly: { service: SERVICE_ID, token_env: FASTLY_API_TOKEN, soft: true }
//
// Errors name the setting by its path ("cdn[1].fastly.service is required"). Tokens
// are read from the environment through env (os.Getenv when nil), from the variable
// that token_env names; they never appear in errors.
func FromConfig(ctx context.Context, cdn []map[string]any, env func(string) string) ([]CDN, error) {
	if env == nil {
		env = os.Getenv
	}
	var out []CDN
	names := map[string]int{}
	for i, entry := range cdn {
		at := fmt.Sprintf("cdn[%d]", i)
		if len(entry) != 1 {
			return nil, fmt.Errorf("%s must name one CDN (%s) with its settings", at, strings.Join(Kinds, ", "))
		}
		for kind, raw := range entry {
			factoriesMu.RLock()
			f, ok := factories[kind]
			factoriesMu.RUnlock()
			if !ok {
				if !known(kind) {
					return nil, fmt.Errorf("%s: %q is not a CDN stump knows (%s)", at, kind, strings.Join(Kinds, ", "))
				}
				return nil, fmt.Errorf("%s: the %s adapter is not linked into this program (import github.com/stump-dev/stump/purge/cdns)", at, kind)
			}
			var m map[string]any
			switch v := raw.(type) {
			case nil:
			case map[string]any:
				m = v
			default:
				return nil, fmt.Errorf("%s.%s must be a map of settings, not %s", at, kind, describe(raw))
			}
			s := &Settings{Path: at + "." + kind, m: m, used: map[string]bool{}, Env: env}
			c, err := f(ctx, s)
			if err != nil {
				return nil, err
			}
			if err := s.Done(); err != nil {
				return nil, err
			}
			if j, dup := names[c.Name()]; dup {
				return nil, fmt.Errorf("%s: %s is listed twice (also cdn[%d])", at, c.Name(), j)
			}
			names[c.Name()] = i
			out = append(out, c)
		}
	}
	return out, nil
}

func known(kind string) bool {
	for _, k := range Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Settings are one CDN entry's settings with typed, path-naming accessors. Each
// accessor marks its key used; Done reports keys nobody read (typos).
type Settings struct {
	// Path is the entry's place in site.yaml ("cdn[1].fastly").
	Path string
	// Env reads an environment variable.
	Env  func(string) string
	m    map[string]any
	used map[string]bool
}

// NewSettings wraps a settings map (for adapters' own tests and for callers that do not
// go through FromConfig).
func NewSettings(path string, m map[string]any, env func(string) string) *Settings {
	if env == nil {
		env = func(string) string { return "" }
	}
	return &Settings{Path: path, m: m, used: map[string]bool{}, Env: env}
}

// Errorf is an error about one setting, named by its path.
func (s *Settings) Errorf(key, format string, args ...any) error {
	return fmt.Errorf("%s.%s %s", s.Path, key, fmt.Sprintf(format, args...))
}

func (s *Settings) get(key string) (any, bool) {
	s.used[key] = true
	v, ok := s.m[key]
	return v, ok && v != nil
}

// Has reports whether key is set.
func (s *Settings) Has(key string) bool {
	v, ok := s.m[key]
	return ok && v != nil
}

// String reads a string setting; required makes an absent or empty one an error.
func (s *Settings) String(key string, required bool) (string, error) {
	v, ok := s.get(key)
	if !ok {
		if required {
			return "", s.Errorf(key, "is required")
		}
		return "", nil
	}
	str, isStr := v.(string)
	if !isStr {
		return "", s.Errorf(key, "must be a string, not %s", describe(v))
	}
	str = strings.TrimSpace(str)
	if str == "" && required {
		return "", s.Errorf(key, "is required")
	}
	return str, nil
}

// OneOf reads a string setting that must be one of choices (the first is the default).
func (s *Settings) OneOf(key string, choices ...string) (string, error) {
	v, err := s.String(key, false)
	if err != nil {
		return "", err
	}
	if v == "" {
		return choices[0], nil
	}
	for _, c := range choices {
		if v == c {
			return v, nil
		}
	}
	return "", s.Errorf(key, "must be one of %s, not %q", strings.Join(choices, ", "), v)
}

// Bool reads a boolean setting (false when absent).
func (s *Settings) Bool(key string) (bool, error) {
	v, ok := s.get(key)
	if !ok {
		return false, nil
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		if p, err := strconv.ParseBool(b); err == nil {
			return p, nil
		}
	}
	return false, s.Errorf(key, "must be true or false, not %s", describe(v))
}

// Int reads an integer setting in [lo, hi], def when absent.
func (s *Settings) Int(key string, def, lo, hi int) (int, error) {
	v, ok := s.get(key)
	if !ok {
		return def, nil
	}
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		if x > math.MaxInt32 {
			return 0, s.Errorf(key, "must be at most %d, not %d", hi, x)
		}
		n = int64(x)
	case float64:
		if x != math.Trunc(x) {
			return 0, s.Errorf(key, "must be a whole number, not %v", x)
		}
		n = int64(x)
	case string:
		p, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, s.Errorf(key, "must be a whole number, not %q", x)
		}
		n = p
	default:
		return 0, s.Errorf(key, "must be a whole number, not %s", describe(v))
	}
	if n < int64(lo) || n > int64(hi) {
		return 0, s.Errorf(key, "must be between %d and %d, not %d", lo, hi, n)
	}
	return int(n), nil
}

// Strings reads a list of strings (a single string is a list of one).
func (s *Settings) Strings(key string, required bool) ([]string, error) {
	v, ok := s.get(key)
	if !ok {
		if required {
			return nil, s.Errorf(key, "is required")
		}
		return nil, nil
	}
	var out []string
	switch x := v.(type) {
	case string:
		out = []string{x}
	case []string:
		out = x
	case []any:
		for i, e := range x {
			str, ok := e.(string)
			if !ok || strings.TrimSpace(str) == "" {
				return nil, fmt.Errorf("%s.%s[%d] must be a non-empty string, not %s", s.Path, key, i, describe(e))
			}
			out = append(out, strings.TrimSpace(str))
		}
	default:
		return nil, s.Errorf(key, "must be a list of strings, not %s", describe(v))
	}
	if required && len(out) == 0 {
		return nil, s.Errorf(key, "is required")
	}
	return out, nil
}

// Token reads the credential from the environment variable that key (token_env) names,
// defEnv when the setting is absent. The error names the variable, never a value.
func (s *Settings) Token(key, defEnv string) (Secret, error) {
	name, err := s.String(key, false)
	if err != nil {
		return "", err
	}
	if name == "" {
		name = defEnv
	}
	if strings.ContainsAny(name, " =$") {
		return "", s.Errorf(key, "must name an environment variable (like %s), not hold a token", defEnv)
	}
	tok := strings.TrimSpace(s.Env(name))
	if tok == "" {
		return "", fmt.Errorf("%s: the API token is read from the environment variable %s, which is empty or unset", s.Path, name)
	}
	return Secret(tok), nil
}

// Done reports settings that no accessor read: a typo would otherwise be ignored.
func (s *Settings) Done() error {
	var unknown []string
	for k := range s.m {
		if !s.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	var knownKeys []string
	for k := range s.used {
		knownKeys = append(knownKeys, k)
	}
	sort.Strings(knownKeys)
	return fmt.Errorf("%s: unknown setting %s (known: %s)", s.Path, strings.Join(quoteAll(unknown), ", "), strings.Join(knownKeys, ", "))
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strconv.Quote(x)
	}
	return out
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(x)
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("a %T", v)
}

// ErrNotBuilt is returned for a CDN kind whose adapter is not part of this build.
var ErrNotBuilt = errors.New("adapter not built")
