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
// always, unless NeedEdgeStamp; then only when the edge stamp says so. The answer is
// read once per Deployer operation (planTree runs more than once for one deploy).
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
	v := ok && st.Layers
	d.edgeLayers = &v
	return v, nil
}
