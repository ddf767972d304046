package state

import (
	"encoding/json"
	"fmt"
)

// SnapshotVersion is the format version [World.MarshalSnapshot] writes and
// the only one [UnmarshalSnapshot] reads.
const SnapshotVersion = 3

type snapshot struct {
	Version  int        `json:"version"`
	Pos      uint64     `json:"pos"`
	Services []*Service `json:"services"`
	Boot     *Boot      `json:"boot,omitempty"`
	Shutdown *Shutdown  `json:"shutdown,omitempty"`
	Sessions *Sessions  `json:"sessions,omitempty"`
	// Tenants came after version 3 began; a version 3 snapshot without
	// them was taken before any tenant event existed.
	Tenants []*Tenant `json:"tenants,omitempty"`
}

// MarshalSnapshot encodes w as JSON, services sorted, so that equal worlds
// give equal bytes. [UnmarshalSnapshot] gives back a World deep-equal to w.
func (w *World) MarshalSnapshot() ([]byte, error) {
	b, err := encodeJSON(snapshot{
		Version:  SnapshotVersion,
		Pos:      w.pos,
		Services: w.Services(),
		Boot:     w.boot,
		Shutdown: w.shutdown,
		Sessions: w.Sessions(),
		Tenants:  w.Tenants(),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal snapshot: %w", err)
	}
	return b, nil
}

// UnmarshalSnapshot decodes what [World.MarshalSnapshot] wrote. It returns
// [ErrSnapshotVersion] for another format version and [ErrBadSnapshot] for
// anything that is not a snapshot.
func UnmarshalSnapshot(b []byte) (*World, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("unmarshal snapshot: %w: %w", ErrBadSnapshot, err)
	}
	if v.Version != SnapshotVersion {
		return nil, fmt.Errorf("unmarshal snapshot: %w: %d, want %d", ErrSnapshotVersion, v.Version, SnapshotVersion)
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("unmarshal snapshot: %w: %w", ErrBadSnapshot, err)
	}
	w := NewWorld()
	w.pos, w.boot, w.shutdown = s.Pos, s.Boot, s.Shutdown
	if s.Sessions != nil {
		w.sessions = s.Sessions
	}
	for i, t := range s.Tenants {
		if t == nil {
			return nil, fmt.Errorf("unmarshal snapshot: %w: tenant %d is null", ErrBadSnapshot, i)
		}
		if w.tenants == nil {
			w.tenants = map[string]*Tenant{}
		}
		w.tenants[t.Name] = t
	}
	for i, svc := range s.Services {
		if svc == nil {
			return nil, fmt.Errorf("unmarshal snapshot: %w: service %d is null", ErrBadSnapshot, i)
		}
		k := Key{svc.Tenant, svc.Name}
		if _, dup := w.services[k]; dup {
			return nil, fmt.Errorf("unmarshal snapshot: %w: service %s appears twice", ErrBadSnapshot, k)
		}
		w.services[k] = svc
	}
	return w, nil
}

// MarshalJSON encodes w as its snapshot, so a World can be embedded in other
// JSON.
func (w *World) MarshalJSON() ([]byte, error) { return w.MarshalSnapshot() }

// UnmarshalJSON decodes a snapshot into w.
func (w *World) UnmarshalJSON(b []byte) error {
	n, err := UnmarshalSnapshot(b)
	if err != nil {
		return err
	}
	*w = *n
	return nil
}
