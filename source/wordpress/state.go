package wordpress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stump-dev/stump/internal/atomicfile"
)

// StateFile is the pull state in the site folder (a dot file: never part of a build).
// It is committed with the content so CI pulls incrementally from the repository alone;
// without it a pull is a full pull, which writes the same files.
const StateFile = ".wordpress.json"

// State is what a pull remembers: per post type the newest modification pulled and the
// items written (their folder and files), and where each media URL was saved.
type State struct {
	Version int                   `json:"version"`
	Types   map[string]*TypeState `json:"types"`
	// Media maps a source URL to the name of its file (content hash + extension).
	Media map[string]string `json:"media,omitempty"`
}

// TypeState is the state of one post type (by REST base).
type TypeState struct {
	// Since is the newest modified_gmt pulled (RFC 3339, UTC).
	Since string                `json:"since,omitempty"`
	Items map[string]*ItemState `json:"items"`
}

// ItemState is one item written by a pull.
type ItemState struct {
	Dir      string   `json:"dir"`   // content/news/slug (relative to the site folder)
	Files    []string `json:"files"` // names in Dir written by the pull, sorted
	Modified string   `json:"modified"`
	// Scheduled is the publication time of a future post (RFC 3339), "" once live.
	Scheduled string `json:"scheduled,omitempty"`
}

func loadState(siteDir string) (*State, error) {
	st := &State{Version: 1, Types: map[string]*TypeState{}, Media: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(siteDir, StateFile))
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it to pull everything again)", filepath.Join(siteDir, StateFile), err)
	}
	if st.Types == nil {
		st.Types = map[string]*TypeState{}
	}
	if st.Media == nil {
		st.Media = map[string]string{}
	}
	for _, t := range st.Types {
		if t.Items == nil {
			t.Items = map[string]*ItemState{}
		}
	}
	return st, nil
}

// save writes the state when it differs from the file; it reports whether it wrote.
func (st *State) save(siteDir string) (bool, error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return false, err
	}
	b = append(b, '\n')
	p := filepath.Join(siteDir, StateFile)
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	return true, atomicfile.Write(p, b)
}

func (st *State) typ(kind string) *TypeState {
	t := st.Types[kind]
	if t == nil {
		t = &TypeState{Items: map[string]*ItemState{}}
		st.Types[kind] = t
	}
	return t
}
