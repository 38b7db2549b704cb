package wordpress

import (
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Shortcodes that survive into content (a WXR export's raw content, or the rendered
// content of a plugin that is no longer active) are rendered here before sanitizing:
// [caption], [gallery], [embed], [video], [audio]. Any other [name ...] that looks like a
// shortcode is left as text and reported.

// GalleryImage is one image of a [gallery]: its URL, alt text, caption and srcset.
type GalleryImage struct {
	URL, Alt, Caption, Srcset string
	Width, Height             int
}

// shortcodeEnv is what rendering shortcodes needs from outside.
type shortcodeEnv struct {
	// gallery returns the images of attachment ids ([gallery ids="1,2"]).
	gallery func(ids []int) []GalleryImage
	// embedHosts decides whether [embed] of a URL becomes an iframe.
	embedHosts map[string]bool
}

// shortcodeRE matches an opening shortcode tag: [name attrs] or [name attrs /].
var shortcodeRE = regexp.MustCompile(`\[([A-Za-z][A-Za-z0-9_-]*)((?:\s+[^\]]*)?)\]`)

// attrRE matches name="v", name='v', name=v and bare values.
var attrRE = regexp.MustCompile(`([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"|([A-Za-z0-9_-]+)\s*=\s*'([^']*)'|([A-Za-z0-9_-]+)\s*=\s*([^\s'"]+)|"([^"]*)"|(\S+)`)

func parseAttrs(s string) map[string]string {
	out := map[string]string{}
	n := 0
	for _, m := range attrRE.FindAllStringSubmatch(s, -1) {
		switch {
		case m[1] != "":
			out[strings.ToLower(m[1])] = html.UnescapeString(m[2])
		case m[3] != "":
			out[strings.ToLower(m[3])] = html.UnescapeString(m[4])
		case m[5] != "":
			out[strings.ToLower(m[5])] = html.UnescapeString(m[6])
		default:
			v := m[7] + m[8]
			if v == "/" {
				continue
			}
			out[strconv.Itoa(n)] = v
			n++
		}
	}
	return out
}

// renderShortcodes renders the known shortcodes of s and returns the unknown ones found.
func renderShortcodes(s string, env shortcodeEnv) (string, []string) {
	if !strings.Contains(s, "[") {
		return s, nil
	}
	var unknown []string
	var b strings.Builder
	for {
		loc := shortcodeRE.FindStringSubmatchIndex(s)
		if loc == nil {
			b.WriteString(s)
			break
		}
		// [[escaped]] is shown as [escaped], as WordPress does.
		if loc[0] > 0 && s[loc[0]-1] == '[' && loc[1] < len(s) && s[loc[1]] == ']' {
			b.WriteString(s[:loc[0]-1])
			b.WriteString(s[loc[0]:loc[1]])
			s = s[loc[1]+1:]
			continue
		}
		name := strings.ToLower(s[loc[2]:loc[3]])
		attrs := parseAttrs(strings.TrimSuffix(strings.TrimSpace(s[loc[4]:loc[5]]), "/"))
		rest := s[loc[1]:]
		inner, after, closed := "", rest, false
		closeTag := "[/" + s[loc[2]:loc[3]] + "]"
		if i := strings.Index(strings.ToLower(rest), strings.ToLower(closeTag)); i >= 0 && !strings.HasSuffix(strings.TrimSpace(s[loc[4]:loc[5]]), "/") {
			inner, after, closed = rest[:i], rest[i+len(closeTag):], true
		}
		var out string
		ok := true
		switch name {
		case "caption", "wp_caption":
			out = renderCaption(attrs, inner, env)
		case "gallery":
			out = renderGallery(attrs, env)
			if closed {
				out += inner
			}
		case "embed":
			u := strings.TrimSpace(inner)
			if u == "" {
				u = attrs["src"]
			}
			out = renderEmbed(u, env)
		case "video", "audio":
			out = renderMedia(name, attrs)
		default:
			ok = false
		}
		if !ok {
			if looksLikeShortcode(name, s[loc[4]:loc[5]], closed) {
				unknown = append(unknown, "["+name+"]")
			}
			b.WriteString(s[:loc[1]])
			s = rest
			continue
		}
		b.WriteString(s[:loc[0]])
		b.WriteString(out)
		s = after
		if !closed {
			s = rest
		}
	}
	return b.String(), unknown
}

// looksLikeShortcode tells a shortcode from bracketed prose ("[sic]", "[1]"): it has
// attributes (name=...), a closing tag, or a name with _ or -.
func looksLikeShortcode(name, attrs string, closed bool) bool {
	return closed || strings.Contains(attrs, "=") || strings.ContainsAny(name, "_-")
}

var (
	alignRE   = regexp.MustCompile(`^[a-z]+$`)
	htmlIDRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	videoIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	vimeoIDRE = regexp.MustCompile(`^[0-9]+$`)
)

var leadingImgRE = regexp.MustCompile(`(?s)^\s*((?:<a\b[^>]*>\s*)?<img\b[^>]*>(?:\s*</a>)?)(.*)$`)

func renderCaption(attrs map[string]string, inner string, env shortcodeEnv) string {
	inner, _ = renderShortcodes(inner, env)
	img, caption := inner, attrs["caption"]
	if m := leadingImgRE.FindStringSubmatch(inner); m != nil {
		img = m[1]
		if caption == "" {
			caption = strings.TrimSpace(m[2])
		}
	}
	class := "wp-caption"
	if a := attrs["align"]; alignRE.MatchString(a) {
		class += " " + a
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="%s"`, class)
	if id := attrs["id"]; htmlIDRE.MatchString(id) {
		fmt.Fprintf(&b, ` id="%s"`, id)
	}
	b.WriteString(">")
	b.WriteString(img)
	if caption != "" {
		b.WriteString(`<figcaption class="wp-caption-text">` + caption + `</figcaption>`)
	}
	b.WriteString("</figure>")
	return b.String()
}

func renderGallery(attrs map[string]string, env shortcodeEnv) string {
	var ids []int
	for _, f := range strings.Split(attrs["ids"]+","+attrs["include"], ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			ids = append(ids, n)
		}
	}
	if len(ids) == 0 || env.gallery == nil {
		return ""
	}
	cols := 3
	if n, err := strconv.Atoi(attrs["columns"]); err == nil && n > 0 && n < 10 {
		cols = n
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="gallery gallery-columns-%d">`, cols)
	for _, img := range env.gallery(ids) {
		b.WriteString(`<figure class="gallery-item">`)
		fmt.Fprintf(&b, `<img src="%s" alt="%s"`, html.EscapeString(img.URL), html.EscapeString(img.Alt))
		if img.Srcset != "" {
			fmt.Fprintf(&b, ` srcset="%s"`, html.EscapeString(img.Srcset))
		}
		if img.Width > 0 && img.Height > 0 {
			fmt.Fprintf(&b, ` width="%d" height="%d"`, img.Width, img.Height)
		}
		b.WriteString(` loading="lazy">`)
		if img.Caption != "" {
			b.WriteString(`<figcaption class="gallery-caption">` + html.EscapeString(img.Caption) + `</figcaption>`)
		}
		b.WriteString(`</figure>`)
	}
	b.WriteString(`</div>`)
	return b.String()
}

// renderEmbed turns a YouTube or Vimeo URL into a player iframe when its host is an
// embed host, and anything else into a link.
func renderEmbed(raw string, env shortcodeEnv) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return html.EscapeString(raw)
	}
	src := ""
	host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	switch host {
	case "youtube.com", "m.youtube.com":
		if v := u.Query().Get("v"); videoIDRE.MatchString(v) {
			src = "https://www.youtube.com/embed/" + v
		}
	case "youtu.be":
		if v := strings.Trim(u.Path, "/"); videoIDRE.MatchString(v) {
			src = "https://www.youtube.com/embed/" + v
		}
	case "vimeo.com":
		if v := strings.Trim(u.Path, "/"); vimeoIDRE.MatchString(v) {
			src = "https://player.vimeo.com/video/" + v
		}
	}
	if src != "" {
		if su, _ := url.Parse(src); env.embedHosts[su.Hostname()] {
			return `<figure class="wp-embed"><iframe src="` + src + `" width="560" height="315" title="Embedded video" allowfullscreen loading="lazy"></iframe></figure>`
		}
	}
	e := html.EscapeString(u.String())
	return `<p class="wp-embed"><a href="` + e + `">` + e + `</a></p>`
}

func renderMedia(kind string, attrs map[string]string) string {
	src := attrs["src"]
	for _, k := range []string{"mp4", "webm", "ogv", "m4v", "mp3", "ogg", "m4a", "wav"} {
		if src == "" {
			src = attrs[k]
		}
	}
	if src == "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<%s controls preload="metadata" src="%s"`, kind, html.EscapeString(src))
	if kind == "video" {
		if p := attrs["poster"]; p != "" {
			fmt.Fprintf(&b, ` poster="%s"`, html.EscapeString(p))
		}
		for _, k := range []string{"width", "height"} {
			if n, err := strconv.Atoi(attrs[k]); err == nil && n > 0 {
				fmt.Fprintf(&b, ` %s="%d"`, k, n)
			}
		}
	}
	fmt.Fprintf(&b, `><a href="%s">%s</a></%s>`, html.EscapeString(src), html.EscapeString(src), kind)
	return b.String()
}
