package wordpress

import (
	"sort"
	"strings"
	"time"
)

// rendered is a WordPress {"rendered": ...} field.
type rendered struct {
	Rendered  string `json:"rendered"`
	Protected bool   `json:"protected"`
}

// restPost is a post, page or custom post type item as the REST API returns it (with
// _embed=author,wp:term,wp:featuredmedia).
type restPost struct {
	ID            int      `json:"id"`
	Type          string   `json:"type"`
	Status        string   `json:"status"`
	DateGMT       string   `json:"date_gmt"`
	ModifiedGMT   string   `json:"modified_gmt"`
	Slug          string   `json:"slug"`
	Link          string   `json:"link"`
	Parent        int      `json:"parent"`
	Title         rendered `json:"title"`
	Content       rendered `json:"content"`
	Excerpt       rendered `json:"excerpt"`
	Author        int      `json:"author"`
	FeaturedMedia int      `json:"featured_media"`
	Embedded      struct {
		Author   []restAuthor `json:"author"`
		Terms    [][]restTerm `json:"wp:term"`
		Featured []restMedia  `json:"wp:featuredmedia"`
	} `json:"_embedded"`
}

type restAuthor struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

type restTerm struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Taxonomy string `json:"taxonomy"`
}

type restMedia struct {
	ID           int      `json:"id"`
	SourceURL    string   `json:"source_url"`
	AltText      string   `json:"alt_text"`
	Caption      rendered `json:"caption"`
	MediaDetails struct {
		Width  int                 `json:"width"`
		Height int                 `json:"height"`
		Sizes  map[string]restSize `json:"sizes"`
	} `json:"media_details"`
}

type restSize struct {
	SourceURL string `json:"source_url"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// Item is one post, page or custom post type entry, from the REST API or a WXR file:
// what the mapping to a stump page needs.
type Item struct {
	ID           int
	Kind         string // the REST base: posts, pages, events
	Hierarchical bool   // pages: kept at their path, not in a section
	Status       string // publish or future
	Title        string // plain text
	Slug         string
	Path         string // the permalink's path on the site ("" when WordPress has no pretty one)
	Date         time.Time
	Modified     time.Time
	Body         string // HTML (rendered, or raw content run through autop for WXR)
	Excerpt      string // plain text
	Author       string
	Terms        map[string][]string // front matter key (categories, tags, <taxonomy>) → names
	Featured     *GalleryImage
	Protected    bool // a password-protected post: never published
}

// taxonomyKey is the front matter key of a WordPress taxonomy.
func taxonomyKey(tax string) string {
	switch tax {
	case "category":
		return "categories"
	case "post_tag":
		return "tags"
	case "post_format", "nav_menu", "link_category":
		return ""
	}
	return strings.ToLower(tax)
}

// parseGMT reads WordPress's GMT times ("2026-01-02T03:04:05", no zone).
func parseGMT(s string) time.Time {
	for _, l := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			if t.Year() < 1000 {
				return time.Time{}
			}
			return t.UTC()
		}
	}
	return time.Time{}
}

// image is a media item as an image: its URL, alt text, caption, and a srcset of its
// sizes (and its full size), narrowest first.
func (m restMedia) image() *GalleryImage {
	if m.SourceURL == "" {
		return nil
	}
	img := &GalleryImage{URL: m.SourceURL, Alt: m.AltText, Caption: PlainText(m.Caption.Rendered),
		Width: m.MediaDetails.Width, Height: m.MediaDetails.Height}
	seen := map[int]bool{}
	var parts []string
	type cand struct {
		url string
		w   int
	}
	var cands []cand
	for _, s := range m.MediaDetails.Sizes {
		if s.Width > 0 && s.SourceURL != "" {
			cands = append(cands, cand{s.SourceURL, s.Width})
		}
	}
	if m.MediaDetails.Width > 0 {
		cands = append(cands, cand{m.SourceURL, m.MediaDetails.Width})
	}
	sort.Slice(cands, func(i, j int) bool {
		return cands[i].w < cands[j].w || cands[i].w == cands[j].w && cands[i].url < cands[j].url
	})
	for _, c := range cands {
		if seen[c.w] {
			continue
		}
		seen[c.w] = true
		parts = append(parts, c.url+" "+itoa(c.w)+"w")
	}
	if len(parts) > 1 {
		img.Srcset = strings.Join(parts, ", ")
	}
	return img
}
