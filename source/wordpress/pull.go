package wordpress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stump-dev/stump/build/config"
	"github.com/stump-dev/stump/internal/atomicfile"
)

// Options configure a pull or an import.
type Options struct {
	// SiteDir is the site's folder (sites/<site>): content goes to SiteDir/content, the
	// state to SiteDir/.wordpress.json.
	SiteDir string
	// BasePath is the path of the site's baseURL ("/" or "/sub/"): media URLs in bodies
	// are written root-relative with it, so they work in lists and feeds too.
	BasePath string
	// Config is the site's source.wordpress.
	Config config.WordPress
	// Password is the application password (STUMP_WP_PASSWORD). Never logged.
	Password string
	// CacheDir keeps downloaded media between pulls ("" for none).
	CacheDir string
	// Full pulls everything, not only what changed since the last pull.
	Full bool
	// Retries, RetryWait and PageSize tune the client (0: its defaults).
	Retries   int
	RetryWait time.Duration
	PageSize  int
	HTTP      *http.Client
	Log       *slog.Logger
	// Now is the clock (default time.Now), for scheduled posts.
	Now func() time.Time
}

// Report says what a pull or an import did.
type Report struct {
	API      string    `json:"api,omitempty"`
	Requests int64     `json:"requests"`
	Fetched  int       `json:"fetched"`           // items fetched (changed or new)
	Written  []string  `json:"written,omitempty"` // files written, relative to the site folder
	Removed  []string  `json:"removed,omitempty"` // files removed
	Warnings []Warning `json:"warnings,omitempty"`
	// NextScheduled is the earliest publication time of a scheduled post, zero when none:
	// the site should be built again then.
	NextScheduled time.Time `json:"next_scheduled,omitzero"`
}

// Changed reports whether the pull changed any content file.
func (r *Report) Changed() bool { return len(r.Written) > 0 || len(r.Removed) > 0 }

// postFields are the fields a pull asks for (with _embed for authors, terms and the
// featured image), so one request a page of 100 brings everything.
const postFields = "id,type,status,date_gmt,modified_gmt,slug,link,parent,title,content,excerpt,author,featured_media,_links,_embedded"

// Pull fetches what changed in WordPress since the last pull and writes it into the
// site's content folder; it removes what was deleted, trashed or unpublished. Every
// request is made before the first file is written: a pull that fails (WordPress down,
// wrong password, a bad page) changes nothing. The steps:
//
//  1. discover the API root and check the credentials;
//  2. per post type: the items modified since the last pull (modified_after), the count
//     of published items, and when it does not add up, the full list of ids (deletions,
//     unpublished items);
//  3. map, render shortcodes, sanitize; fetch gallery media; download media;
//  4. write the page bundles that changed, remove the gone ones, save the state.
func Pull(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	st, err := loadState(o.SiteDir)
	if err != nil {
		return nil, err
	}
	c, err := Discover(ctx, o.Config.URL, o.clientOptions())
	if err != nil {
		return nil, err
	}
	rep := &Report{API: c.Root().String()}
	defer func() { rep.Requests = c.Requests() }()
	o.Log.Debug("wordpress: API root", "root", rep.API)

	var home struct {
		Home string `json:"home"`
	}
	if _, err := c.Get(ctx, "", url.Values{"_fields": {"home"}}, &home); err != nil {
		return rep, fmt.Errorf("reading the site's index: %w", err)
	}
	homeURL, err := url.Parse(home.Home)
	if err != nil || homeURL.Host == "" {
		return rep, fmt.Errorf("the site's index names no home URL (%q)", home.Home)
	}
	auth := o.Config.User != ""
	if auth {
		var me struct {
			ID int `json:"id"`
		}
		if _, err := c.Get(ctx, "wp/v2/users/me", url.Values{"_fields": {"id"}, "context": {"edit"}}, &me); err != nil {
			if errors.Is(err, ErrAuth) {
				return rep, fmt.Errorf("WordPress refused the application password of user %q (check source.wordpress.user and STUMP_WP_PASSWORD): %w", o.Config.User, err)
			}
			return rep, fmt.Errorf("checking the credentials: %w", err)
		}
	}
	types, err := postTypes(ctx, c)
	if err != nil {
		return rep, err
	}
	var items []*Item
	gone := map[string][]string{}
	since := map[string]string{}
	for _, kind := range o.kinds() {
		t, ok := types[kind]
		if !ok {
			var have []string
			for k := range types {
				have = append(have, k)
			}
			sort.Strings(have)
			return rep, fmt.Errorf("WordPress has no post type with REST base %q (it has %s)", kind, strings.Join(have, ", "))
		}
		got, g, s, err := pullKind(ctx, c, o, st.typ(kind), kind, t, homeURL, auth)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", kind, err)
		}
		items = append(items, got...)
		gone[kind], since[kind] = g, s
	}
	rep.Fetched = len(items)
	galleryMedia := func(ctx context.Context, ids []int) (map[int]*GalleryImage, error) {
		return restMediaByID(ctx, c, ids)
	}
	isMedia := func(u string) bool { return isMediaURL(u, homeURL, c.Root()) }
	if err := apply(ctx, o, st, c, items, gone, galleryMedia, isMedia, rep); err != nil {
		return rep, err
	}
	for kind, s := range since {
		if s != "" {
			st.typ(kind).Since = s
		}
	}
	if _, err := st.save(o.SiteDir); err != nil {
		return rep, err
	}
	rep.NextScheduled = nextScheduled(st, o.Now())
	return rep, nil
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BasePath == "" {
		o.BasePath = "/"
	}
	return o
}

func (o Options) clientOptions() ClientOptions {
	timeout := 30 * time.Second
	if d, err := time.ParseDuration(o.Config.Timeout); err == nil && d > 0 {
		timeout = d
	}
	return ClientOptions{User: o.Config.User, Password: o.Password, Concurrency: o.Config.Concurrency,
		Timeout: timeout, Retries: o.Retries, RetryWait: o.RetryWait, PageSize: o.PageSize, HTTP: o.HTTP, Log: o.Log}
}

// kinds are the REST bases pulled, sorted (default posts and pages).
func (o Options) kinds() []string {
	k := append([]string(nil), o.Config.Types...)
	if len(k) == 0 {
		k = []string{"posts", "pages"}
	}
	sort.Strings(k)
	return dedupe(k)
}

// postType is what a pull needs to know of a post type.
type postType struct {
	Slug         string `json:"slug"`
	RestBase     string `json:"rest_base"`
	Hierarchical bool   `json:"hierarchical"`
}

// postTypes reads wp/v2/types, by REST base.
func postTypes(ctx context.Context, c *Client) (map[string]postType, error) {
	var raw map[string]postType
	if _, err := c.Get(ctx, "wp/v2/types", nil, &raw); err != nil {
		return nil, fmt.Errorf("reading the post types: %w", err)
	}
	out := map[string]postType{}
	for _, t := range raw {
		if t.RestBase != "" {
			out[t.RestBase] = t
		}
	}
	return out, nil
}

// pullKind fetches the changed items of one post type and works out the gone ones. It
// returns the items, the ids gone, and the newest modification seen.
func pullKind(ctx context.Context, c *Client, o Options, ts *TypeState, kind string, t postType, home *url.URL, auth bool) ([]*Item, []string, string, error) {
	route := "wp/v2/" + kind
	status := "publish"
	if auth {
		status = "publish,future"
	}
	q := url.Values{"status": {status}, "_embed": {"author,wp:term,wp:featuredmedia"},
		"_fields": {postFields}, "orderby": {"id"}, "order": {"asc"}}
	incremental := !o.Full && ts.Since != "" && ts.Items != nil
	if incremental {
		// One second back: modified_after is strict and WordPress keeps whole seconds,
		// so an edit in the same second as the last one pulled is not missed. Pulling
		// it again writes nothing.
		s := parseGMT(ts.Since).Add(-time.Second)
		q.Set("modified_after", s.Format(time.RFC3339))
	}
	raw, err := c.GetAll(ctx, route, q)
	if err != nil {
		return nil, nil, "", err
	}
	items, newest, err := decodeItems(raw, kind, t, home)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s: %w", c.routeURL(route, q), err)
	}
	if newest == "" || newest < ts.Since {
		newest = ts.Since
	}
	fetched := map[string]bool{}
	for _, it := range items {
		fetched[strconv.Itoa(it.ID)] = true
	}
	var gone []string
	if !incremental {
		for id := range ts.Items {
			if !fetched[id] {
				gone = append(gone, id)
			}
		}
		sort.Strings(gone)
		return dropProtected(items, &gone), gone, newest, nil
	}
	// Deletions and unpublished items: the published count must equal what we know.
	known := map[string]bool{}
	for id := range ts.Items {
		known[id] = true
	}
	for id := range fetched {
		known[id] = true
	}
	var none []json.RawMessage
	hdr, err := c.Get(ctx, route, url.Values{"status": {status}, "per_page": {"1"}, "_fields": {"id"}}, &none)
	if err != nil {
		return nil, nil, "", err
	}
	total, err := strconv.Atoi(hdr.Get("X-WP-Total"))
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s answered without X-WP-Total", c.routeURL(route, nil))
	}
	// Scheduled items whose time has come: WordPress published them without changing
	// their modification time, and their permalink is a pretty one now.
	var due []string
	for id, is := range ts.Items {
		if is.Scheduled != "" && !fetched[id] {
			if s, err := time.Parse(time.RFC3339, is.Scheduled); err == nil && !s.After(o.Now()) {
				due = append(due, id)
			}
		}
	}
	sort.Strings(due)
	if total == len(known) {
		more, m, err := fetchByID(ctx, c, route, status, due, kind, t, home)
		if err != nil {
			return nil, nil, "", err
		}
		if m > newest {
			newest = m
		}
		return dropProtected(append(items, more...), &gone), gone, newest, nil
	}
	o.Log.Debug("wordpress: counts differ, listing ids", "type", kind, "published", total, "known", len(known))
	rawIDs, err := c.GetAll(ctx, route, url.Values{"status": {status}, "_fields": {"id"}, "orderby": {"id"}, "order": {"asc"}})
	if err != nil {
		return nil, nil, "", err
	}
	all := map[string]bool{}
	for _, r := range rawIDs {
		var v struct {
			ID int `json:"id"`
		}
		if err := json.Unmarshal(r, &v); err != nil {
			return nil, nil, "", fmt.Errorf("listing ids: %w", err)
		}
		all[strconv.Itoa(v.ID)] = true
	}
	for id := range known {
		if !all[id] {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	// Published items we never saw (backdated, imported), and scheduled ones now due:
	// fetch them by id.
	missing := due
	for id := range all {
		if !known[id] {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	more, m, err := fetchByID(ctx, c, route, status, missing, kind, t, home)
	if err != nil {
		return nil, nil, "", err
	}
	if m > newest {
		newest = m
	}
	return dropProtected(append(items, more...), &gone), gone, newest, nil
}

// fetchByID fetches items by id, 100 a request.
func fetchByID(ctx context.Context, c *Client, route, status string, ids []string, kind string, t postType, home *url.URL) ([]*Item, string, error) {
	var items []*Item
	newest := ""
	for len(ids) > 0 {
		n := min(len(ids), 100)
		q := url.Values{"status": {status}, "_embed": {"author,wp:term,wp:featuredmedia"},
			"_fields": {postFields}, "include": {strings.Join(ids[:n], ",")}, "per_page": {"100"}}
		ids = ids[n:]
		raw, err := c.GetAll(ctx, route, q)
		if err != nil {
			return nil, "", err
		}
		more, m, err := decodeItems(raw, kind, t, home)
		if err != nil {
			return nil, "", err
		}
		if m > newest {
			newest = m
		}
		items = append(items, more...)
	}
	return items, newest, nil
}

// dropProtected removes password-protected items (never published) and counts them as
// gone.
func dropProtected(items []*Item, gone *[]string) []*Item {
	out := items[:0]
	for _, it := range items {
		if it.Protected {
			*gone = append(*gone, strconv.Itoa(it.ID))
			continue
		}
		out = append(out, it)
	}
	sort.Strings(*gone)
	return out
}

// decodeItems turns REST items into Items and returns the newest modified_gmt.
func decodeItems(raw []json.RawMessage, kind string, t postType, home *url.URL) ([]*Item, string, error) {
	var out []*Item
	newest := ""
	for _, r := range raw {
		var p restPost
		if err := json.Unmarshal(r, &p); err != nil {
			return nil, "", fmt.Errorf("malformed item: %w", err)
		}
		if p.ID <= 0 {
			return nil, "", fmt.Errorf("an item without an id: %.100s", r)
		}
		if p.Status != "publish" && p.Status != "future" {
			continue
		}
		mod := parseGMT(p.ModifiedGMT)
		// A scheduled post created as such carries its future date as its modification
		// time: it must not move the next pull's modified_after past real edits. (It
		// is fetched again by each pull until its time; that writes nothing.)
		if s := mod.Format(time.RFC3339); !mod.IsZero() && p.Status != "future" && s > newest {
			newest = s
		}
		it := &Item{
			ID: p.ID, Kind: kind, Hierarchical: t.Hierarchical, Status: p.Status,
			Title: PlainText(p.Title.Rendered), Slug: p.Slug, Path: permalinkPath(p.Link, home),
			Date: parseGMT(p.DateGMT), Modified: mod, Body: p.Content.Rendered,
			Excerpt:   PlainText(p.Excerpt.Rendered),
			Terms:     map[string][]string{},
			Protected: p.Content.Protected,
		}
		if len(p.Embedded.Author) > 0 {
			it.Author = p.Embedded.Author[0].Name
		}
		for _, group := range p.Embedded.Terms {
			for _, term := range group {
				if k := taxonomyKey(term.Taxonomy); k != "" && term.Name != "" {
					it.Terms[k] = append(it.Terms[k], PlainText(term.Name))
				}
			}
		}
		for k := range it.Terms {
			sort.Strings(it.Terms[k])
		}
		if len(p.Embedded.Featured) > 0 && p.FeaturedMedia > 0 {
			it.Featured = p.Embedded.Featured[0].image()
		}
		out = append(out, it)
	}
	return out, newest, nil
}

// permalinkPath is the path of link on the site (below home's path), or "" when the
// link is a plain one (?p=123) or on another host.
func permalinkPath(link string, home *url.URL) string {
	u, err := url.Parse(link)
	if err != nil || u.RawQuery != "" || !strings.EqualFold(u.Host, home.Host) {
		return ""
	}
	p := u.Path
	hp := strings.TrimSuffix(home.Path, "/")
	if hp != "" {
		if !strings.HasPrefix(p, hp+"/") {
			return ""
		}
		p = strings.TrimPrefix(p, hp)
	}
	return p
}

// restMediaByID fetches attachments by id (for [gallery]).
func restMediaByID(ctx context.Context, c *Client, ids []int) (map[int]*GalleryImage, error) {
	out := map[int]*GalleryImage{}
	for len(ids) > 0 {
		n := min(len(ids), 100)
		var s []string
		for _, id := range ids[:n] {
			s = append(s, strconv.Itoa(id))
		}
		ids = ids[n:]
		raw, err := c.GetAll(ctx, "wp/v2/media", url.Values{"include": {strings.Join(s, ",")},
			"_fields": {"id,source_url,alt_text,caption,media_details"}})
		if err != nil {
			return nil, fmt.Errorf("gallery media: %w", err)
		}
		for _, r := range raw {
			var m restMedia
			if err := json.Unmarshal(r, &m); err != nil {
				return nil, fmt.Errorf("gallery media: %w", err)
			}
			if img := m.image(); img != nil {
				out[m.ID] = img
			}
		}
	}
	return out, nil
}

// isMediaURL reports whether u is a media file on the WordPress site (or the API's
// host) that a pull downloads.
func isMediaURL(u string, hosts ...*url.URL) bool {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") {
		return false
	}
	if !mediaExts[strings.ToLower(path.Ext(p.Path))] {
		return false
	}
	for _, h := range hosts {
		if h != nil && strings.EqualFold(h.Host, p.Host) {
			return true
		}
	}
	return false
}

var galleryIDsRE = regexp.MustCompile(`\[gallery[^\]]*\b(?:ids|include)\s*=\s*["']?([0-9, ]+)`)

// apply maps items to page bundles and writes them, removes the gone ones, and updates
// st (not saved). Every network request (gallery media, media downloads) happens before
// the first write.
func apply(ctx context.Context, o Options, st *State, c *Client, items []*Item, gone map[string][]string,
	galleryMedia func(context.Context, []int) (map[int]*GalleryImage, error), isMedia func(string) bool, rep *Report) error {
	o = o.withDefaults()
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].Kind != items[j].Kind {
			return items[i].Kind < items[j].Kind
		}
		return items[i].ID < items[j].ID
	})
	embedHosts := o.Config.EmbedHosts
	if len(embedHosts) == 0 {
		embedHosts = DefaultEmbedHosts
	}
	san := NewSanitizer(embedHosts)
	hostSet := map[string]bool{}
	for _, h := range embedHosts {
		hostSet[strings.ToLower(h)] = true
	}

	// Gallery attachments, fetched at once.
	var galleryIDs []int
	for _, it := range items {
		for _, m := range galleryIDsRE.FindAllStringSubmatch(it.Body, -1) {
			for _, f := range strings.Split(m[1], ",") {
				if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
					galleryIDs = append(galleryIDs, n)
				}
			}
		}
	}
	gallery := map[int]*GalleryImage{}
	if len(galleryIDs) > 0 && galleryMedia != nil {
		sort.Ints(galleryIDs)
		var err error
		if gallery, err = galleryMedia(ctx, uniqInts(galleryIDs)); err != nil {
			return err
		}
	}
	env := shortcodeEnv{embedHosts: hostSet, gallery: func(ids []int) []GalleryImage {
		var out []GalleryImage
		for _, id := range ids {
			if g := gallery[id]; g != nil {
				out = append(out, *g)
			}
		}
		return out
	}}

	// Map every item, and give each its folder.
	owners := map[string]string{} // folder → kind/id
	for kind, t := range st.Types {
		for id, is := range t.Items {
			owners[is.Dir] = kind + "/" + id
		}
	}
	pages := make([]*page, 0, len(items))
	for _, it := range items {
		if it.Hierarchical && cleanPath(it.Path) == "/" {
			// WordPress's front page: the site's home is content/_index.md.
			rep.Warnings = append(rep.Warnings, Warning{ID: it.ID, Kind: it.Kind, Title: it.Title,
				Message: "is WordPress's front page: not pulled (the site's home page is content/_index.md)"})
			gone[it.Kind] = append(gone[it.Kind], strconv.Itoa(it.ID))
			continue
		}
		p := mapItem(it, sectionOf(o, it.Kind), san, env)
		key := it.Kind + "/" + strconv.Itoa(it.ID)
		parent := "content/" + sectionOf(o, it.Kind)
		if it.Hierarchical {
			parent = "content"
		}
		dir := parent + "/" + dirName(p)
		if prev := st.typ(it.Kind).Items[strconv.Itoa(it.ID)]; prev != nil && (prev.Dir == dir || strings.HasPrefix(prev.Dir, dir+"-")) {
			dir = prev.Dir // keep a folder already given
		}
		if owner, ok := owners[dir]; ok && owner != key {
			dir += "-" + strconv.Itoa(it.ID)
		}
		if owner, ok := owners[dir]; ok && owner != key {
			return fmt.Errorf("%s %d %q: folder %s belongs to %s", it.Kind, it.ID, it.Title, dir, owner)
		}
		if _, ok := owners[dir]; !ok {
			if err := checkNotHandWritten(o.SiteDir, dir); err != nil {
				return fmt.Errorf("%s %d %q: %w", it.Kind, it.ID, it.Title, err)
			}
		}
		if prev := st.typ(it.Kind).Items[strconv.Itoa(it.ID)]; prev != nil && prev.Dir != dir {
			delete(owners, prev.Dir)
		}
		owners[dir] = key
		p.dir = dir
		pages = append(pages, p)
	}

	// Media: everything the bodies and featured images name, downloaded once.
	media := &mediaStore{client: c, names: st.Media, data: map[string][]byte{}, failed: map[string]error{}}
	if o.CacheDir != "" {
		media.cache = filepath.Join(o.CacheDir, "media")
	}
	var urls []string
	for _, p := range pages {
		urls = append(urls, mediaRefs(p.body, isMedia)...)
		if f := p.item.Featured; f != nil {
			if isMedia(f.URL) {
				urls = append(urls, f.URL)
			}
			for _, cand := range parseSrcset(f.Srcset) {
				if isMedia(cand[0]) {
					urls = append(urls, cand[0])
				}
			}
		}
	}
	if err := media.fetchAll(ctx, urls); err != nil {
		return err
	}

	// Render each bundle in memory.
	type bundle struct {
		p     *page
		files map[string][]byte
	}
	bundles := make([]bundle, 0, len(pages))
	for _, p := range pages {
		files := map[string][]byte{}
		base := strings.TrimSuffix(o.BasePath, "/") + p.url
		if !strings.HasSuffix(base, "/") {
			base = path.Dir(base) + "/"
		}
		warnMissing := map[string]bool{}
		local := func(u string) string {
			name, ok := media.names[u]
			if !ok {
				if err := media.failed[u]; err != nil && !warnMissing[u] {
					warnMissing[u] = true
					p.warn = append(p.warn, fmt.Sprintf("media %s could not be downloaded (%v): left out", u, shortErr(err)))
				}
				return ""
			}
			data, err := media.get(name)
			if err != nil {
				if !warnMissing[u] {
					warnMissing[u] = true
					p.warn = append(p.warn, fmt.Sprintf("media %s: %v: left out", u, err))
				}
				return ""
			}
			files[name] = data
			return base + name
		}
		p.body = rewriteMedia(p.body, isMedia, local)
		var featured map[string]any
		if f := p.item.Featured; f != nil && isMedia(f.URL) {
			if src := local(f.URL); src != "" {
				featured = map[string]any{"src": src}
				if f.Alt != "" {
					featured["alt"] = f.Alt
				}
				if f.Width > 0 && f.Height > 0 {
					featured["width"], featured["height"] = f.Width, f.Height
				}
				var parts []string
				for _, cand := range parseSrcset(f.Srcset) {
					if l := local(cand[0]); l != "" {
						parts = append(parts, l+" "+cand[1])
					}
				}
				if len(parts) > 1 {
					featured["srcset"] = strings.Join(parts, ", ")
				}
			}
		}
		md, err := frontMatter(p, featured)
		if err != nil {
			return err
		}
		files["index.md"] = md
		for _, w := range p.warn {
			rep.Warnings = append(rep.Warnings, Warning{ID: p.item.ID, Kind: p.item.Kind, Title: p.item.Title, Message: w})
		}
		bundles = append(bundles, bundle{p, files})
	}

	// Write. From here on only files change.
	for _, b := range bundles {
		it := b.p.item
		ts := st.typ(it.Kind)
		id := strconv.Itoa(it.ID)
		prev := ts.Items[id]
		var names []string
		for name, data := range b.files {
			names = append(names, name)
			rel := b.p.dir + "/" + name
			full := filepath.Join(o.SiteDir, filepath.FromSlash(rel))
			if old, err := os.ReadFile(full); err == nil && bytes.Equal(old, data) {
				continue
			}
			if err := atomicfile.Write(full, data); err != nil {
				return err
			}
			rep.Written = append(rep.Written, rel)
		}
		sort.Strings(names)
		if prev != nil {
			keep := map[string]bool{}
			if prev.Dir == b.p.dir {
				for _, n := range names {
					keep[n] = true
				}
			}
			if err := removeFiles(o.SiteDir, prev, keep, rep); err != nil {
				return err
			}
		}
		is := &ItemState{Dir: b.p.dir, Files: names, Modified: it.Modified.UTC().Format(time.RFC3339)}
		if it.Status == "future" && !it.Date.IsZero() {
			is.Scheduled = it.Date.UTC().Format(time.RFC3339)
		}
		ts.Items[id] = is
	}
	kinds := make([]string, 0, len(gone))
	for k := range gone {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		ts := st.typ(kind)
		for _, id := range gone[kind] {
			prev := ts.Items[id]
			if prev == nil {
				continue
			}
			if err := removeFiles(o.SiteDir, prev, nil, rep); err != nil {
				return err
			}
			delete(ts.Items, id)
		}
	}
	sort.Strings(rep.Written)
	sort.Strings(rep.Removed)
	return nil
}

func uniqInts(s []int) []int {
	out := s[:0]
	for i, n := range s {
		if i == 0 || n != s[i-1] {
			out = append(out, n)
		}
	}
	return out
}

func shortErr(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("HTTP %d", ae.Status)
	}
	return err.Error()
}

// sectionOf is the content folder of a non-hierarchical type: the configured section for
// posts, the REST base for the others.
func sectionOf(o Options, kind string) string {
	if kind == "posts" && o.Config.Section != "" {
		return strings.Trim(o.Config.Section, "/")
	}
	return kind
}

// marker is the comment every pulled index.md starts with (after ---).
const marker = "# Written by stump wordpress pull"

// checkNotHandWritten fails when dir (relative to the site) exists and is not a pulled
// bundle: a pull never overwrites hand-written content.
func checkNotHandWritten(siteDir, dir string) error {
	full := filepath.Join(siteDir, filepath.FromSlash(dir))
	if _, err := os.Stat(full); os.IsNotExist(err) {
		// A page file of the same URL (content/about.md next to content/about/) is
		// hand-written content too.
		if _, err := os.Stat(full + ".md"); err == nil {
			return fmt.Errorf("%s.md exists and was not written by a pull: rename it or the post's slug", dir)
		}
		return nil
	}
	b, err := os.ReadFile(filepath.Join(full, "index.md"))
	if err == nil && bytes.Contains(b, []byte(marker)) {
		return nil // written by an earlier pull whose state was not saved
	}
	return fmt.Errorf("%s exists and was not written by a pull: a pull never touches hand-written content; rename it or the post's slug", dir)
}

// removeFiles removes the files of a pulled item except keep, and its folder if empty.
func removeFiles(siteDir string, is *ItemState, keep map[string]bool, rep *Report) error {
	dir := filepath.Join(siteDir, filepath.FromSlash(is.Dir))
	for _, name := range is.Files {
		if keep[name] || strings.ContainsAny(name, `/\`) || name == ".." {
			continue
		}
		err := os.Remove(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		if err == nil {
			rep.Removed = append(rep.Removed, is.Dir+"/"+name)
		}
	}
	_ = os.Remove(dir) // only when empty
	return nil
}

// nextScheduled is the earliest publication time after now of a scheduled item.
func nextScheduled(st *State, now time.Time) time.Time {
	var next time.Time
	for _, t := range st.Types {
		for _, it := range t.Items {
			if it.Scheduled == "" {
				continue
			}
			s, err := time.Parse(time.RFC3339, it.Scheduled)
			if err != nil || !s.After(now) {
				continue
			}
			if next.IsZero() || s.Before(next) {
				next = s
			}
		}
	}
	return next
}
