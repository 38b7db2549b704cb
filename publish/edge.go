package publish

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/stump-dev/stump/publish/store"
)

// An edge that resolves atomic deploys itself (the generated Fastly VCL) reads a
// layered tree only once its code does: a deploy made live as a layer before the edge
// knows how to fall back to the base would lose every page the layer does not hold.
// The command that activates such an edge (stump edge deploy --fastly) says so in the
// target, in the edge stamp; a Deployer with NeedEdgeStamp writes layers, and rolls
// back to one, only where the stamp says the edge reads them.

// edgeKey is the edge stamp of a target.
var edgeKey = path.Join(internalPrefix, "edge.json")

// EdgeStamp says what the edge that serves a target can read.
type EdgeStamp struct {
	// Layers: the edge falls back from a deploy's layer to its base.
	Layers bool `json:"layers"`
	// By names the edge, e.g. "fastly service SU1Z0isxPaozGVKXdv0eY version 12".
	By   string    `json:"by"`
	Time time.Time `json:"time"`
}

// WriteEdgeStamp records what the edge serving s can read.
func WriteEdgeStamp(ctx context.Context, s store.Store, st EdgeStamp) error {
	if _, err := writeJSON(ctx, s, edgeKey, st, store.PutOptions{}); err != nil {
		return fmt.Errorf("write the edge stamp: %w", err)
	}
	return nil
}

// ReadEdgeStamp reads the edge stamp of s (ok false: there is none).
func ReadEdgeStamp(ctx context.Context, s store.Store) (st EdgeStamp, ok bool, err error) {
	_, ok, err = readJSON(ctx, s, edgeKey, &st)
	return st, ok, err
}

// DeleteEdgeStamp removes the edge stamp of s: later deploys write full trees.
func DeleteEdgeStamp(ctx context.Context, s store.Store) error {
	if err := s.Delete(ctx, edgeKey); err != nil {
		return fmt.Errorf("delete the edge stamp: %w", err)
	}
	return nil
}

// edgeReadsLayers reports whether the edge can serve a layered tree of this target:
// always, unless NeedEdgeStamp; then only when the edge stamp says so and is at least
// EdgeSettle old. The answer is read once per operation (init forgets it; planTree
// runs more than once for one deploy).
func (d *Deployer) edgeReadsLayers(ctx context.Context) (bool, error) {
	if !d.NeedEdgeStamp {
		return true, nil
	}
	if d.edgeLayers != nil {
		return *d.edgeLayers, nil
	}
	st, ok, err := ReadEdgeStamp(ctx, d.Store)
	if err != nil {
		return false, err
	}
	// A version Fastly has just activated takes a while to reach every POP.
	v := ok && st.Layers && d.Now().Sub(st.Time) >= EdgeSettle
	if ok && st.Layers && !v {
		d.Log.Info("the edge was deployed moments ago: this deploy is a full tree", "site", d.Site, "edge", st.By, "since", st.Time)
	}
	d.edgeLayers = &v
	return v, nil
}

// EdgeSettle is how long after the edge stamp's Time a layer may go live: the time a
// new Fastly version takes to reach every POP, with room to spare.
const EdgeSettle = 2 * time.Minute

// LayerLiveError says the live deploy is a layer, which an edge that cannot read layers
// would serve with every unchanged page missing.
type LayerLiveError struct{ Site, Deploy, Base string }

func (e *LayerLiveError) Error() string {
	return fmt.Sprintf("site %s has a layered deploy live (%s over %s)", e.Site, e.Deploy, e.Base)
}

// DropEdgeLayers readies the target for an edge that cannot read layers, under the
// site's lock: with a layer live it fails with *LayerLiveError (unless force);
// otherwise it deletes the edge stamp (not with dryRun), so no later deploy is a layer.
// The lock is held until release is called: call it once the edge has changed, so that
// no publish makes a layer live in between.
func (d *Deployer) DropEdgeLayers(ctx context.Context, force, dryRun bool) (release func(), err error) {
	d.init()
	lk, err := acquire(ctx, d.Store, d.Lock, "edge", "")
	if err != nil {
		return nil, err
	}
	unlock := func() { _ = lk.release(context.WithoutCancel(ctx)) }
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	ptr, _, err := ReadPointer(ctx, d.Store)
	if err != nil {
		return nil, err
	}
	if ptr.Live != "" {
		live, err := readRecord(ctx, d.Store, ptr.Live, false, nil)
		if err != nil {
			return nil, err
		}
		if live.Base != "" && !force {
			return nil, &LayerLiveError{Site: d.Site, Deploy: live.ID, Base: live.Base}
		}
	}
	if !dryRun {
		if err := lk.fenced(ctx, func(ctx context.Context) error { return DeleteEdgeStamp(ctx, d.Store) }); err != nil {
			return nil, err
		}
	}
	return unlock, nil
}
