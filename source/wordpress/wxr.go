package wordpress

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// A WXR file (WordPress eXtended RSS, what Tools → Export writes). Elements are matched
// by local name, so exports of WXR 1.0 to 1.2 all read.
type wxrFile struct {
	Channel struct {
		Link        string    `xml:"link"`
		BaseSiteURL string    `xml:"base_site_url"`
		BaseBlogURL string    `xml:"base_blog_url"`
		Authors     []wxrUser `xml:"author"`
		Items       []wxrItem `xml:"item"`
	} `xml:"channel"`
}

type wxrUser struct {
	Login   string `xml:"author_login"`
	Display string `xml:"author_display_name"`
}

type wxrItem struct {
	Title   string `xml:"title"`
	Link    string `xml:"link"`
	Creator string `xml:"creator"`
	Encoded []struct {
		XMLName xml.Name
		Value   string `xml:",chardata"`
	} `xml:"encoded"`
	PostID        int    `xml:"post_id"`
	DateGMT       string `xml:"post_date_gmt"`
	ModifiedGMT   string `xml:"post_modified_gmt"`
	Name          string `xml:"post_name"`
	Status        string `xml:"status"`
	Parent        int    `xml:"post_parent"`
	Type          string `xml:"post_type"`
	Password      string `xml:"post_password"`
	AttachmentURL string `xml:"attachment_url"`
	Categories    []struct {
		Domain   string `xml:"domain,attr"`
		Nicename string `xml:"nicename,attr"`
		Name     string `xml:",chardata"`
	} `xml:"category"`
	Meta []struct {
		Key   string `xml:"meta_key"`
		Value string `xml:"meta_value"`
	} `xml:"postmeta"`
}

// ImportWXR reads a WordPress export and writes its published posts, pages and custom
// post types (those of o.Config.Types) into the site, with the same mapping as Pull.
// Media still reachable at their URLs are downloaded (those that are not are warnings).
// Items of those types that an earlier pull or import wrote and the file lacks are
// removed: an import is a full pull from the file.
func ImportWXR(ctx context.Context, r io.Reader, o Options) (*Report, error) {
	o = o.withDefaults()
	var f wxrFile
	dec := xml.NewDecoder(r)
	dec.Strict = false
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("reading the WXR file: %w", err)
	}
	homeRaw := f.Channel.BaseBlogURL
	if homeRaw == "" {
		homeRaw = f.Channel.Link
	}
	home, err := url.Parse(strings.TrimSpace(homeRaw))
	if err != nil || home.Host == "" {
		return nil, fmt.Errorf("the WXR file names no site URL (base_blog_url or channel link)")
	}
	st, err := loadState(o.SiteDir)
	if err != nil {
		return nil, err
	}
	authors := map[string]string{}
	for _, a := range f.Channel.Authors {
		authors[a.Login] = a.Display
	}
	attachments := map[int]*GalleryImage{}
	for _, it := range f.Channel.Items {
		if it.Type == "attachment" && it.AttachmentURL != "" {
			img := &GalleryImage{URL: strings.TrimSpace(it.AttachmentURL), Caption: excerptOf(it)}
			for _, m := range it.Meta {
				if m.Key == "_wp_attachment_image_alt" {
					img.Alt = m.Value
				}
			}
			attachments[it.PostID] = img
		}
	}
	wanted := map[string]bool{}
	for _, k := range o.kinds() {
		wanted[k] = true
	}
	var items []*Item
	seen := map[string]map[string]bool{}
	for _, w := range f.Channel.Items {
		kind := kindOfType(w.Type, wanted)
		if !wanted[kind] || (w.Status != "publish" && w.Status != "future") || w.Password != "" || w.PostID <= 0 {
			continue
		}
		it := &Item{
			ID: w.PostID, Kind: kind, Hierarchical: w.Type == "page", Status: w.Status,
			Title: PlainText(w.Title), Slug: w.Name, Path: permalinkPath(strings.TrimSpace(w.Link), home),
			Date: parseGMT(w.DateGMT), Modified: parseGMT(w.ModifiedGMT),
			Body: autop(contentOf(w)), Excerpt: PlainText(excerptOf(w)), Terms: map[string][]string{},
		}
		if it.Status == "future" {
			it.Path = "" // a scheduled post has no pretty permalink yet
		}
		if name := authors[w.Creator]; name != "" {
			it.Author = name
		} else {
			it.Author = w.Creator
		}
		for _, c := range w.Categories {
			if k := taxonomyKey(c.Domain); k != "" && strings.TrimSpace(c.Name) != "" {
				it.Terms[k] = append(it.Terms[k], strings.TrimSpace(c.Name))
			}
		}
		for k := range it.Terms {
			sort.Strings(it.Terms[k])
			it.Terms[k] = dedupe(it.Terms[k])
		}
		for _, m := range w.Meta {
			if m.Key == "_thumbnail_id" {
				if id, err := strconv.Atoi(m.Value); err == nil && attachments[id] != nil {
					img := *attachments[id]
					it.Featured = &img
				}
			}
		}
		if seen[kind] == nil {
			seen[kind] = map[string]bool{}
		}
		seen[kind][strconv.Itoa(it.ID)] = true
		items = append(items, it)
	}
	gone := map[string][]string{}
	for kind := range wanted {
		for id := range st.typ(kind).Items {
			if !seen[kind][id] {
				gone[kind] = append(gone[kind], id)
			}
		}
		sort.Strings(gone[kind])
	}
	c := NewClient(home, o.clientOptions())
	rep := &Report{Fetched: len(items)}
	defer func() { rep.Requests = c.Requests() }()
	galleryMedia := func(_ context.Context, ids []int) (map[int]*GalleryImage, error) {
		out := map[int]*GalleryImage{}
		for _, id := range ids {
			if a := attachments[id]; a != nil {
				out[id] = a
			}
		}
		return out, nil
	}
	hosts := []*url.URL{home}
	if u, err := url.Parse(strings.TrimSpace(f.Channel.BaseSiteURL)); err == nil && u.Host != "" {
		hosts = append(hosts, u)
	}
	isMedia := func(u string) bool { return isMediaURL(u, hosts...) }
	if err := apply(ctx, o, st, c, items, gone, galleryMedia, isMedia, rep); err != nil {
		return rep, err
	}
	if _, err := st.save(o.SiteDir); err != nil {
		return rep, err
	}
	rep.NextScheduled = nextScheduled(st, o.Now())
	return rep, nil
}

// kindOfType is the REST base stump uses for a post type of a WXR file (which names
// types, not REST bases): post is posts, page is pages, and a custom type matches the
// configured type of its name or its name plus "s" (event: events), WordPress's usual
// REST base.
func kindOfType(t string, wanted map[string]bool) string {
	switch t {
	case "post":
		return "posts"
	case "page":
		return "pages"
	}
	if !wanted[t] && wanted[t+"s"] {
		return t + "s"
	}
	return t
}

func contentOf(w wxrItem) string {
	for _, e := range w.Encoded {
		if strings.Contains(e.XMLName.Space, "content") {
			return e.Value
		}
	}
	return ""
}

func excerptOf(w wxrItem) string {
	for _, e := range w.Encoded {
		if strings.Contains(e.XMLName.Space, "excerpt") {
			return e.Value
		}
	}
	return ""
}

var (
	preRE       = regexp.MustCompile(`(?is)<pre\b.*?</pre>`)
	blankLineRE = regexp.MustCompile(`\n[ \t]*\n`)
	blockStart  = regexp.MustCompile(`(?i)^(<(p|div|h[1-6]|ul|ol|li|blockquote|pre|table|thead|tbody|tr|td|th|figure|hr|dl|dt|dd|form|section|article|aside|header|footer|nav|address|iframe|video|audio|!--)\b|\[(caption|gallery|embed|video|audio)\b|\x00pre)`)
)

// autop is WordPress's wpautop in short, for the raw content of a WXR file: paragraphs
// are separated by blank lines and lines within one are broken with <br>; blocks that
// already are HTML blocks, <pre> contents and block editor content are left alone.
func autop(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if strings.TrimSpace(s) == "" || strings.Contains(s, "<!-- wp:") {
		return s
	}
	var pres []string
	s = preRE.ReplaceAllStringFunc(s, func(m string) string {
		pres = append(pres, m)
		return "\x00pre" + strconv.Itoa(len(pres)-1) + "\x00"
	})
	var out []string
	for _, b := range blankLineRE.Split(s, -1) {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if blockStart.MatchString(b) {
			out = append(out, b)
			continue
		}
		out = append(out, "<p>"+strings.ReplaceAll(b, "\n", "<br>\n")+"</p>")
	}
	res := strings.Join(out, "\n\n")
	for i, p := range pres {
		res = strings.Replace(res, "\x00pre"+strconv.Itoa(i)+"\x00", p, 1)
	}
	return res
}
