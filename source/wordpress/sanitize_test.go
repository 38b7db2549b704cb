package wordpress

import (
	"strings"
	"testing"

	"github.com/stump-dev/stump/build/markdown"
)

// TestSanitizerRemovesHostileMarkup feeds the sanitizer the usual attacks and checks
// that none survives and each shows in the report.
func TestSanitizerRemovesHostileMarkup(t *testing.T) {
	s := NewSanitizer(DefaultEmbedHosts)
	cases := []struct {
		in       string
		bad      []string // must not be in the output (case-insensitive)
		keep     []string // must be in the output
		reported string   // must be in the report
	}{
		{`<p>hi<script>alert(1)</script></p>`, []string{"<script", "alert(1)"}, []string{"<p>hi</p>"}, "script"},
		{`<img src="a.png" onerror="alert(1)">`, []string{"onerror"}, []string{`src="a.png"`}, "img[onerror]"},
		{`<a href="javascript:alert(1)">x</a>`, []string{"javascript:"}, []string{"x"}, "a[href] javascript:alert(1)"},
		{`<a href="JaVaScRiPt:alert(1)">x</a>`, []string{"javascript:"}, nil, "a[href]"},
		{`<a href="&#106;avascript:alert(1)">x</a>`, []string{"javascript:", "&#106;"}, nil, "a[href]"},
		{`<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>`, []string{"data:"}, nil, "a[href]"},
		{`<iframe src="https://evil.example/x"></iframe>`, []string{"iframe", "evil"}, nil, "iframe src=https://evil.example/x"},
		{`<iframe src="http://www.youtube.com/embed/a"></iframe>`, []string{"iframe"}, nil, "iframe src=http://www.youtube.com/embed/a"},
		{`<iframe src="https://www.youtube.com/embed/a" onload="x()"></iframe>`, []string{"onload"}, []string{`<iframe src="https://www.youtube.com/embed/a"`}, "iframe[onload]"},
		{`<p style="background:url(javascript:x)">a</p>`, []string{"style", "javascript"}, []string{"<p>a</p>"}, "p[style]"},
		{`<svg onload="alert(1)"><circle/></svg>`, []string{"svg", "onload"}, nil, "svg"},
		{`<form action="https://evil.example"><input name="pw"></form>`, []string{"form", "input"}, nil, "form"},
		{`<object data="x.swf"></object><embed src="x.swf">`, []string{"object", "embed"}, nil, "object"},
		{`<div class="ok" id="a1"><figure><img src="a.png" srcset="a.png 1x, b.png 2x" alt=""><figcaption>c</figcaption></figure></div>`,
			nil, []string{`class="ok"`, "<figcaption>c</figcaption>", `srcset="a.png 1x, b.png 2x"`}, ""},
		{`<style>p{}</style><p>a</p>`, []string{"<style", "p{}"}, []string{"<p>a</p>"}, "style"},
	}
	for _, c := range cases {
		out, removed := s.Clean(c.in)
		for _, b := range c.bad {
			if strings.Contains(strings.ToLower(out), strings.ToLower(b)) {
				t.Errorf("Clean(%s) = %s, still holds %q", c.in, out, b)
			}
		}
		for _, k := range c.keep {
			if !strings.Contains(out, k) {
				t.Errorf("Clean(%s) = %s, lost %q", c.in, out, k)
			}
		}
		rep := summarize(removed)
		if c.reported != "" && !strings.Contains(rep, c.reported) {
			t.Errorf("Clean(%s): report %q lacks %q", c.in, rep, c.reported)
		}
		if c.reported == "" && rep != "" {
			t.Errorf("Clean(%s): nothing should be removed, report %q (out %s)", c.in, rep, out)
		}
	}
}

func TestShortcodes(t *testing.T) {
	env := shortcodeEnv{
		embedHosts: map[string]bool{"www.youtube.com": true},
		gallery: func(ids []int) []GalleryImage {
			var out []GalleryImage
			for _, id := range ids {
				if id == 7 {
					out = append(out, GalleryImage{URL: "https://cms/a.jpg", Alt: "A", Srcset: "https://cms/a-300.jpg 300w, https://cms/a.jpg 900w", Width: 900, Height: 600})
				}
			}
			return out
		},
	}
	cases := []struct{ in, want, unknown string }{
		{`[caption id="attachment_1" align="alignleft" width="300"]<img src="x.jpg" alt="y"> The caption[/caption]`,
			`<figure class="wp-caption alignleft" id="attachment_1"><img src="x.jpg" alt="y"><figcaption class="wp-caption-text">The caption</figcaption></figure>`, ""},
		{`[caption align="al\"ign" id="x onload=1"]<img src="x.jpg">[/caption]`, `<figure class="wp-caption"><img src="x.jpg"></figure>`, ""},
		{`[gallery ids="7,8" columns="2"]`, `<div class="gallery gallery-columns-2"><figure class="gallery-item"><img src="https://cms/a.jpg" alt="A" srcset="https://cms/a-300.jpg 300w, https://cms/a.jpg 900w" width="900" height="600" loading="lazy"></figure></div>`, ""},
		{`[embed]https://www.youtube.com/watch?v=abc_D-1[/embed]`, `<iframe src="https://www.youtube.com/embed/abc_D-1"`, ""},
		{`[embed]https://vimeo.com/123[/embed]`, `<a href="https://vimeo.com/123">`, ""}, // vimeo is not an embed host here
		{`[embed]https://example.org/x"><script>[/embed]`, `x%22%3E%3Cscript%3E`, ""},
		{`[video mp4="https://cms/v.mp4" poster="https://cms/p.jpg" width="640"]`, `<video controls preload="metadata" src="https://cms/v.mp4" poster="https://cms/p.jpg" width="640">`, ""},
		{`[contact-form-7 id="3"] and [sic] and [1]`, `[contact-form-7 id="3"] and [sic] and [1]`, "[contact-form-7]"},
		{`[[caption]]`, `[caption]`, ""},
	}
	for _, c := range cases {
		got, unknown := renderShortcodes(c.in, env)
		if !strings.Contains(got, c.want) {
			t.Errorf("renderShortcodes(%s) =\n%s\nwant it to hold\n%s", c.in, got, c.want)
		}
		if strings.Join(unknown, ",") != c.unknown {
			t.Errorf("renderShortcodes(%s): unknown %v, want %q", c.in, unknown, c.unknown)
		}
	}
}

// TestWrapBodyIsOneHTMLBlock: the body passes through the Markdown renderer untouched
// (Markdown syntax in text, indented lines after blank lines, blank lines in <pre>).
func TestWrapBodyIsOneHTMLBlock(t *testing.T) {
	in := "<p>*not emphasis* and _this_</p>\n\n    <p>indented after a blank line</p>\n\n<pre>a\n\n  \nb</pre>\n"
	got := wrapBody(in)
	for _, l := range strings.Split(got, "\n") {
		if strings.TrimSpace(l) == "" && l != "" {
			t.Errorf("a blank line survives: %q", got)
		}
	}
	if !strings.HasPrefix(got, "<div class=\"wp-content\">\n") || !strings.Contains(got, "<pre>a\n<!-- -->\n  <!-- -->\nb</pre>") {
		t.Errorf("wrapBody = %q", got)
	}
	res, err := markdown.New(markdown.Options{Unsafe: true}).Render([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Content) != got {
		t.Errorf("the Markdown renderer changed the body:\n%q\nwant\n%q", res.Content, got)
	}
}
