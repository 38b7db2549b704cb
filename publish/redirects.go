package publish

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/stump-dev/stump/publish/store"
)

// Some S3-compatible stores accept x-amz-website-redirect-location and then drop it.
// The build writes every alias and redirect as a small HTML page that redirects by
// itself, so such a target still works: what must change is what the deploy records
// and expects, or verify would report every redirect after every deploy. Publish
// finds out once per target, with a probe object, and keeps the answer in the pointer.

var redirectProbeKey = path.Join(internalPrefix, "probe", "redirect")

// hasRedirects reports whether any object is a website redirect.
func hasRedirects(objects []Object) bool {
	for _, o := range objects {
		if o.Redirect != "" {
			return true
		}
	}
	return false
}

// forStore adapts objects to what the target's store keeps: where it drops website
// redirects (RedirectDropped), redirect objects are plain redirect pages. objects is
// not modified.
func forStore(objects []Object, redirectMeta string) []Object {
	if redirectMeta != RedirectDropped || !hasRedirects(objects) {
		return objects
	}
	out := make([]Object, len(objects))
	for i, o := range objects {
		o.Redirect = ""
		out[i] = o
	}
	return out
}

// probeRedirects writes a probe object with a website redirect, reads it back and
// reports RedirectKept or RedirectDropped. The probe lives under _stump/ and is left
// for the next probe to overwrite.
func (d *Deployer) probeRedirects(ctx context.Context, lk *lock) (string, error) {
	if err := lk.ensure(ctx); err != nil {
		return "", err
	}
	const want = "/stump-redirect-probe/"
	_, err := store.PutBytes(ctx, d.Store, redirectProbeKey, []byte("redirect probe\n"), store.PutOptions{Meta: store.Meta{
		ContentType: "text/plain; charset=utf-8", CacheControl: "no-store", RedirectLocation: want,
	}})
	if err != nil {
		return "", fmt.Errorf("probe whether the target keeps website redirects: %w", err)
	}
	info, err := d.Store.Head(ctx, redirectProbeKey)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("probe whether the target keeps website redirects: the probe object vanished: %w", err)
	}
	if err != nil {
		return "", fmt.Errorf("probe whether the target keeps website redirects: %w", err)
	}
	if info.Meta.RedirectLocation == want {
		return RedirectKept, nil
	}
	return RedirectDropped, nil
}
