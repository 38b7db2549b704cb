package purge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// What the adapters of token-authenticated HTTP APIs (Fastly, Cloudflare) share: their
// settings, their defaults and how they send a call.

// APISettings reads the settings every HTTP API adapter takes: api (the API's base URL,
// empty for the default; tests point it at a fake) and token_env (the environment
// variable holding the token, defTokenEnv when absent).
func (s *Settings) APISettings(defTokenEnv string) (api string, token Secret, err error) {
	if api, err = s.String("api", false); err != nil {
		return "", "", err
	}
	if token, err = s.Token("token_env", defTokenEnv); err != nil {
		return "", "", err
	}
	return api, token, nil
}

// CheckAPI checks what an HTTP API adapter cannot do without: the ID of what it purges
// (idName names it in the error: "service ID") and the token. kind names the adapter
// ("fastly").
func CheckAPI(kind, idName, id string, token Secret) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%s: a %s is required", kind, idName)
	}
	if token == "" {
		return fmt.Errorf("%s: an API token is required", kind)
	}
	return nil
}

// APIBase is the API's base URL: api, or def when api is empty, without a trailing
// slash.
func APIBase(api, def string) string {
	if api == "" {
		api = def
	}
	return strings.TrimSuffix(api, "/")
}

// APICall is one call of an HTTP purge API, for Send.
type APICall struct {
	// CDN names the adapter in errors ("fastly:SERVICE").
	CDN     string
	Client  *http.Client
	Backoff Backoff
	// Secret is the credential Header carries; it is scrubbed from errors.
	Secret Secret
	Method string
	URL    string
	// Body is sent as JSON (with Content-Type: application/json); nil sends no body.
	Body []byte
	// Header is set on every try (the credential and the API's own headers).
	Header http.Header
}

// Send sends c through Do: retries of throttling and 5xx answers honouring Retry-After,
// and errors that name the CDN, the call and the status, never the secret. It returns
// the body of the 2xx answer and the requests sent.
func Send(ctx context.Context, c APICall) (body []byte, tries int, err error) {
	return Do(ctx, c.Client, c.Backoff, Call{
		CDN:    c.CDN,
		Secret: c.Secret,
		New: func(ctx context.Context) (*http.Request, error) {
			var body io.Reader
			if c.Body != nil {
				body = bytes.NewReader(c.Body)
			}
			req, err := http.NewRequestWithContext(ctx, c.Method, c.URL, body)
			if err != nil {
				return nil, err
			}
			for k, v := range c.Header {
				req.Header[k] = append([]string(nil), v...)
			}
			if c.Body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, nil
		},
	})
}
