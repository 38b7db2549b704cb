package build

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stump-dev/stump/build/markdown"
)

// permalinkVars are the values a permalink pattern's tokens take for one page.
type permalinkVars struct {
	date                      time.Time
	slug, title, section, dir string
	filename, stripped        string // the page's file (or bundle folder) name; without its date
	categories                []string
}

var tokenRE = regexp.MustCompile(`:([a-z]+)`)

// expandPermalink fills pattern (checked by config.CheckPermalink) for one page, Hugo's
// way: :year :month :day from the date, :slug the slug or else the title, :title the
// title, :section the top folder, :filename the file name, and so on. An empty token
// drops its path segment, and the result is a clean URL path.
func expandPermalink(pattern string, v permalinkVars) string {
	d := v.date
	out := tokenRE.ReplaceAllStringFunc(pattern, func(tok string) string {
		switch tok[1:] {
		case "year":
			return strconv.Itoa(d.Year())
		case "month":
			return pad2(int(d.Month()))
		case "monthname":
			return strings.ToLower(d.Month().String())
		case "day":
			return pad2(d.Day())
		case "weekday":
			return strconv.Itoa(int(d.Weekday()))
		case "weekdayname":
			return strings.ToLower(d.Weekday().String())
		case "yearday":
			return strconv.Itoa(d.YearDay())
		case "hour":
			return pad2(d.Hour())
		case "minute":
			return pad2(d.Minute())
		case "second":
			return pad2(d.Second())
		case "slug":
			if v.slug != "" {
				return v.slug
			}
			if s := markdown.Slugify(v.title); s != "" {
				return s
			}
			return lowerPath(v.stripped)
		case "slugorfilename", "slugorcontentbasename":
			if v.slug != "" {
				return v.slug
			}
			return lowerPath(v.stripped)
		case "title":
			if s := markdown.Slugify(v.title); s != "" {
				return s
			}
			return lowerPath(v.stripped)
		case "section":
			return lowerPath(v.section)
		case "sections":
			return lowerPath(v.dir)
		case "filename", "contentbasename":
			return lowerPath(v.filename)
		case "categories":
			var parts []string
			for _, c := range v.categories {
				if s := markdown.Slugify(c); s != "" {
					parts = append(parts, s)
				}
			}
			return strings.Join(parts, "/")
		}
		return tok
	})
	for strings.Contains(out, "//") {
		out = strings.ReplaceAll(out, "//", "/")
	}
	return cleanURL(out)
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

var fileDateRE = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})-(.+)$`)

// fileNameDate splits a name like "2014-03-20-hello-world" into its date (midnight in
// loc) and the rest.
func fileNameDate(name string, loc *time.Location) (time.Time, string, bool) {
	m := fileDateRE.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, "", false
	}
	t, err := time.ParseInLocation("2006-01-02", m[1]+"-"+m[2]+"-"+m[3], loc)
	if err != nil {
		return time.Time{}, "", false
	}
	return t, m[4], true
}
