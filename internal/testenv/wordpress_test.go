package testenv

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestWordPress starts a WordPress, seeds a post through PHP and reads it back over the
// REST API with the application password (a scheduled post is visible only with it).
func TestWordPress(t *testing.T) {
	wp := WordPress(t)
	id := strings.TrimSpace(wp.PHP(t, `echo wp_insert_post(['post_title' => 'Later', 'post_status' => 'future',
		'post_date_gmt' => gmdate('Y-m-d H:i:s', time() + 3600), 'post_date' => gmdate('Y-m-d H:i:s', time() + 3600)], true);`))
	get := func(auth bool) []map[string]any {
		req, _ := http.NewRequest("GET", wp.URL+"/wp-json/wp/v2/posts?status=future&_fields=id,status", nil)
		if auth {
			req.SetBasicAuth(wp.User, wp.Password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v []map[string]any
		if resp.StatusCode != 200 {
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := get(true); len(got) != 1 || got[0]["status"] != "future" {
		t.Fatalf("with the application password: %v, want the future post %s", got, id)
	}
	if got := get(false); len(got) != 0 {
		t.Fatalf("without a password the future post is visible: %v", got)
	}
	// Stop takes WordPress down: nothing answers any more (php -S's workers included).
	wp.Stop()
	for i := 0; i < 8; i++ {
		resp, err := http.Get(wp.URL + "/wp-json/")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("WordPress still answers after Stop: HTTP %d", resp.StatusCode)
		}
	}
}
