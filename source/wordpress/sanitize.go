package wordpress

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// DefaultEmbedHosts are the hosts iframes may come from when the config names none.
var DefaultEmbedHosts = []string{"www.youtube.com", "www.youtube-nocookie.com", "player.vimeo.com"}

// Sanitizer cleans untrusted HTML (a WordPress body) against an allowlist: the
// elements and attributes of user-generated content, figures, media, and iframes from
// the embed hosts only; no scripts, no styles, no event handlers, no javascript: (or
// any URL scheme but http, https, mailto, tel) URLs. It is safe for concurrent use.
type Sanitizer struct {
	policy     *bluemonday.Policy
	embedHosts map[string]bool
}

// NewSanitizer returns a sanitizer that allows iframes from embedHosts (exact host names).
func NewSanitizer(embedHosts []string) *Sanitizer {
	s := &Sanitizer{embedHosts: map[string]bool{}}
	for _, h := range embedHosts {
		s.embedHosts[strings.ToLower(h)] = true
	}
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("http", "https", "mailto", "tel")
	p.RequireNoFollowOnLinks(false)
	p.AllowElements("figure", "figcaption", "picture", "section", "mark", "small", "time")
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^[A-Za-z0-9 _-]*$`)).Globally()
	p.AllowAttrs("id").Matching(regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)).Globally()
	p.AllowAttrs("srcset", "sizes", "loading", "decoding").OnElements("img", "source")
	p.AllowAttrs("width", "height").OnElements("img", "video", "iframe")
	p.AllowElements("video", "audio", "source")
	p.AllowAttrs("controls", "preload", "poster", "src", "muted", "loop", "playsinline").OnElements("video", "audio")
	p.AllowAttrs("src", "type").OnElements("source")
	p.AllowElements("iframe")
	p.AllowAttrs("src").Matching(regexp.MustCompile(`^https://`)).OnElements("iframe")
	p.AllowAttrs("title", "allowfullscreen", "allow", "frameborder").OnElements("iframe")
	p.AllowAttrs("datetime").OnElements("time")
	p.AllowAttrs("cite").OnElements("blockquote", "q")
	s.policy = p
	return s
}

// Clean returns the sanitized HTML and what was removed ("script", "a[onclick]",
// "iframe src=https://evil.example/x", ...), in document order, repeats counted.
func (s *Sanitizer) Clean(in string) (string, []string) {
	pre := s.dropForeignIframes(in)
	out := s.policy.Sanitize(pre)
	return out, removed(in, out)
}

// dropForeignIframes removes iframes whose src is not https on an embed host (the
// element and its content), since bluemonday's allowlist cannot match hosts.
func (s *Sanitizer) dropForeignIframes(in string) string {
	if !strings.Contains(strings.ToLower(in), "<iframe") {
		return in
	}
	z := html.NewTokenizer(strings.NewReader(in))
	var b strings.Builder
	skip := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := string(z.Raw())
		tok := z.Token()
		if tok.Data == "iframe" {
			switch tt {
			case html.StartTagToken, html.SelfClosingTagToken:
				if skip > 0 || !s.allowedEmbed(attr(tok, "src")) {
					if tt == html.StartTagToken {
						skip++
					}
					continue
				}
			case html.EndTagToken:
				if skip > 0 {
					skip--
					continue
				}
			}
		}
		if skip > 0 {
			continue
		}
		b.WriteString(raw)
	}
	return b.String()
}

func (s *Sanitizer) allowedEmbed(src string) bool {
	u, err := url.Parse(strings.TrimSpace(src))
	return err == nil && u.Scheme == "https" && s.embedHosts[strings.ToLower(u.Hostname())]
}

func attr(t html.Token, name string) string {
	for _, a := range t.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// removed lists the elements and attributes of in that are not in out (a multiset
// difference over start tags and attribute names), for the per-post report.
func removed(in, out string) []string {
	name := func(k string) string {
		if i := strings.IndexByte(k, ' '); i > 0 {
			return k[:i]
		}
		return k
	}
	haveKey, haveName := map[string]int{}, map[string]int{}
	for _, k := range tagKeys(out, true) {
		haveKey[k]++
		haveName[name(k)]++
	}
	// Exact matches first (so the iframe that stayed is not the one reported), then by
	// name (a value the sanitizer rewrote is not a removal).
	var pending, gone []string
	for _, k := range tagKeys(in, true) {
		if haveKey[k] > 0 {
			haveKey[k]--
			haveName[name(k)]--
			continue
		}
		pending = append(pending, k)
	}
	for _, k := range pending {
		if haveName[name(k)] > 0 {
			haveName[name(k)]--
			continue
		}
		gone = append(gone, k)
	}
	return gone
}

// tagKeys lists "tag" for every start tag and "tag[attr]" for each of its attributes;
// with detail, URL-valued attributes and iframes carry their value after a space.
func tagKeys(s string, detail bool) []string {
	var keys []string
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return keys
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		t := z.Token()
		key := t.Data
		if detail && t.Data == "iframe" {
			key += " src=" + short(attr(t, "src"))
		}
		keys = append(keys, key)
		for _, a := range t.Attr {
			k := fmt.Sprintf("%s[%s]", t.Data, a.Key)
			if detail && (a.Key == "href" || a.Key == "src") {
				k += " " + short(a.Val)
			}
			keys = append(keys, k)
		}
	}
}

func short(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 60 {
		return v[:57] + "..."
	}
	return v
}

// summarize counts repeats: ["script", "script", "a[onclick]"] is "script ×2, a[onclick]".
func summarize(items []string) string {
	count := map[string]int{}
	var order []string
	for _, it := range items {
		if count[it] == 0 {
			order = append(order, it)
		}
		count[it]++
	}
	parts := make([]string, len(order))
	for i, it := range order {
		parts[i] = it
		if count[it] > 1 {
			parts[i] += fmt.Sprintf(" ×%d", count[it])
		}
	}
	return strings.Join(parts, ", ")
}

// PlainText strips tags and decodes entities (titles, excerpts), collapsing white space.
func PlainText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt == html.TextToken {
			b.Write(z.Text())
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
