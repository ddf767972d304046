package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

const (
	// sweepRetry spaces sweeps after one that failed (a file that cannot
	// be deleted, a log that cannot be written), so that a lasting fault
	// is retried, not spun on.
	sweepRetry = time.Minute
	// maxSweepWait is the longest the sweeper's timer waits, so that a
	// jump of the wall clock is caught up with.
	maxSweepWait = time.Hour
)

// reservedPaths are the names of a session's directory that Solo keeps:
// they are never a caller's asset.
var reservedPaths = []string{"kernel.json", "kernels", "checkpoints", "tasks"}

// AssetView is an asset as [Manager.Assets] lists it, and as the API
// sends it: see [wire.AssetView], where it is defined.
type AssetView = wire.AssetView

// leaseEnd is the one rule of an asset's lease: when it ends, or held if
// it is kept whatever the time. t is the task of an output, nil for a
// file. The output of a task that has not ended is held. Otherwise the
// lease is the recorded ExpiresAt (a worker records an output's lease
// just before its task's end, in the same append). An output with none
// ends ttl after its task's end (or after it was added, if its task is
// unknown): its task ended in a way that recorded no lease (a daemon
// crash, a removed session), and the task's end, which is in the log,
// starts it.
func leaseEnd(a *state.Asset, t *state.Task, ttl time.Duration) (end time.Time, held bool) {
	switch {
	case t != nil && !t.State.Final():
		return time.Time{}, true
	case !a.ExpiresAt.IsZero():
		return a.ExpiresAt, false
	case t == nil:
		return a.AddedAt.Add(ttl), false
	}
	return t.EndedAt.Add(ttl), false
}

// collectable is the sweep's decision: an asset is collected only once its
// lease has ended, and never while held.
func collectable(a *state.Asset, t *state.Task, ttl time.Duration, now time.Time) bool {
	end, held := leaseEnd(a, t, ttl)
	return !held && !now.Before(end)
}

// renewDue reports whether a read at now renews a lease that ends at end:
// when at least an eighth of the ttl has passed since it was granted, so
// that a busy reader records a renewal at most eight times per ttl, not
// once per read.
func renewDue(end, now time.Time, ttl time.Duration) bool {
	return end.Sub(now) <= ttl-ttl/8
}

// cleanAssetPath checks a path a caller wants to make an asset and returns
// it cleaned: relative to the session's directory, inside it, and not one
// of Solo's own files.
func cleanAssetPath(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%w: asset path is empty", ErrInvalid)
	case filepath.IsAbs(p):
		return "", fmt.Errorf("%w: asset path %q is absolute: give it relative to the session's directory", ErrInvalid, p)
	case !filepath.IsLocal(p):
		return "", fmt.Errorf("%w: asset path %q escapes the session's directory", ErrInvalid, p)
	}
	rel := filepath.Clean(p)
	if rel == "." {
		return "", fmt.Errorf("%w: asset path %q is the session's directory: name a file in it", ErrInvalid, p)
	}
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	if slices.Contains(reservedPaths, first) {
		return "", fmt.Errorf("%w: asset path %q is Solo's own (kernel.json, kernels/, checkpoints/ and tasks/ are kept by Solo)", ErrInvalid, p)
	}
	return rel, nil
}

// resolveAsset checks that rel names a regular file of the session's
// directory dir, through any symbolic link on its way, and returns its
// path relative to dir with the links resolved, and its size.
func resolveAsset(dir, rel string) (string, int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", 0, err
	}
	defer root.Close()
	// os.Root refuses a link that leads out of dir, whatever the path.
	if _, err := root.Lstat(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", 0, fmt.Errorf("%w: asset path %q: no such file in the session's directory", ErrInvalid, rel)
		}
		return "", 0, fmt.Errorf("%w: asset path %q: %w", ErrInvalid, rel, err)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", 0, err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(dir, rel))
	if err != nil {
		return "", 0, fmt.Errorf("%w: asset path %q: %w", ErrInvalid, rel, err)
	}
	resolved, err := filepath.Rel(realDir, real)
	if err != nil || !filepath.IsLocal(resolved) {
		return "", 0, fmt.Errorf("%w: asset path %q escapes the session's directory", ErrInvalid, rel)
	}
	if resolved, err = cleanAssetPath(resolved); err != nil {
		return "", 0, fmt.Errorf("%w (through a link: %q)", err, rel)
	}
	st, err := root.Lstat(resolved)
	if err != nil {
		return "", 0, fmt.Errorf("%w: asset path %q: %w", ErrInvalid, rel, err)
	}
	if !st.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%w: asset path %q is not a regular file (%s)", ErrInvalid, rel, st.Mode().Type())
	}
	return resolved, st.Size(), nil
}

// AddAsset marks a regular file of a session's directory (the kernel's
// working directory) as an asset of the session: it is kept under a lease
// of [Options.AssetTTL], renewed when it is listed, and deleted by the
// sweep once the lease has ended. path is relative to the session's
// directory; one that is absolute, escapes it (with ".." or a link), is
// not a regular file, or is Solo's own (kernel.json, kernels/,
// checkpoints/, tasks/) returns [ErrInvalid] and records nothing. A file that already is an
// asset keeps its id, and its lease is renewed. It returns once
// asset_added is durable.
func (m *Manager) AddAsset(ctx context.Context, tenant, name, path string) (AssetView, error) {
	if err := m.writable(); err != nil {
		return AssetView{}, err
	}
	key, err := validKey(tenant, name)
	if err != nil {
		return AssetView{}, fmt.Errorf("add asset: %w", err)
	}
	rel, err := cleanAssetPath(path)
	if err != nil {
		return AssetView{}, fmt.Errorf("add asset to %s: %w", key, err)
	}
	if err := m.elsewhere(key); err != nil {
		return AssetView{}, fmt.Errorf("add asset to %s: %w", key, err)
	}
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	if s, ok := m.session(key); !ok || !s.Live() {
		return AssetView{}, fmt.Errorf("add asset to %s: %w", key, ErrNotFound)
	}
	rel, size, err := resolveAsset(m.sessionDir(key), rel)
	if err != nil {
		return AssetView{}, fmt.Errorf("add asset to %s: %w", key, err)
	}
	now := m.clock.Now().UTC()
	var id string
	m.read(func(ss *state.Sessions) {
		for _, a := range ss.Assets(key.Tenant, key.Name) {
			if a.Kind == state.AssetFile && a.Path == rel {
				id = a.ID
			}
		}
	})
	var p state.Payload
	if id != "" {
		p = state.AssetRenewed{ID: id, Size: size, ExpiresAt: now.Add(m.opts.AssetTTL)}
	} else {
		id = NewTaskID()
		p = state.AssetAdded{ID: id, Kind: state.AssetFile, Path: rel, Size: size, ExpiresAt: now.Add(m.opts.AssetTTL)}
	}
	if err := m.append(ctx, key, p); err != nil {
		return AssetView{}, fmt.Errorf("add asset to %s: %w", key, err)
	}
	var v AssetView
	var ok bool
	m.read(func(ss *state.Sessions) {
		var a *state.Asset
		if a, ok = ss.Asset(state.AssetKey{Tenant: key.Tenant, Session: key.Name, ID: id}); ok {
			v = m.assetView(ss, a)
		}
	})
	if !ok {
		// Removed between the check and the append: the fold ignored it.
		return AssetView{}, fmt.Errorf("add asset to %s: %w", key, ErrNotFound)
	}
	return v, nil // a file: no task writes it
}

// Assets lists the assets of a live session, oldest first. Listing is a
// read: it renews each listed lease that is due (see [renewDue]), in one
// durable append, before it returns. A renewal that cannot be recorded is
// logged, and the listing shows the leases as they are.
func (m *Manager) Assets(ctx context.Context, tenant, name string) ([]AssetView, error) {
	key, err := validKey(tenant, name)
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	if s, ok := m.session(key); !ok || !s.Live() {
		return nil, fmt.Errorf("assets of %s: %w", key, ErrNotFound)
	}
	if err := m.elsewhere(key); err != nil {
		return nil, fmt.Errorf("assets of %s: %w", key, err)
	}
	var keys []state.AssetKey
	m.read(func(ss *state.Sessions) {
		for _, a := range ss.Assets(key.Tenant, key.Name) {
			keys = append(keys, a.AssetKey)
		}
	})
	m.renewLocked(ctx, key, keys)
	out := []AssetView{}
	m.read(func(ss *state.Sessions) {
		for _, a := range ss.Assets(key.Tenant, key.Name) {
			out = append(out, m.assetView(ss, a))
		}
	})
	m.withLiveSizes(out)
	return out, nil
}

// assetView returns a's view as the host's sessions ss have it (see
// [Host.ReadSessions]); [Manager.withLiveSizes] then gives a running
// task's output the size its file has.
func (m *Manager) assetView(ss *state.Sessions, a *state.Asset) AssetView {
	t, _ := ss.Task(a.ID)
	if a.Kind != state.AssetOutput {
		t = nil
	}
	end, held := leaseEnd(a, t, m.opts.AssetTTL)
	v := AssetView{ID: a.ID, Kind: a.Kind, Path: a.Path, Size: a.Size, Held: held}
	if !held {
		v.ExpiresAt = end
	}
	if a.Kind == state.AssetOutput && t != nil {
		v.Size = max(v.Size, t.OutputBytes)
	}
	return v
}

// withLiveSizes sets the size of each output in vs whose task runs to the
// bytes its file holds, all written.
func (m *Manager) withLiveSizes(vs []AssetView) {
	for i := range vs {
		if vs[i].Kind != state.AssetOutput {
			continue
		}
		m.mu.Lock()
		lt := m.live[vs[i].ID]
		m.mu.Unlock()
		if lt != nil {
			vs[i].Size, _, _ = lt.written()
		}
	}
}

// renewLocked renews the leases of the assets keys of session key that
// are due, at the manager's clock, in one append; m.leaseMu is held. A
// renewal is best effort: one that cannot be recorded is logged and the
// read goes on.
func (m *Manager) renewLocked(ctx context.Context, key state.Key, keys []state.AssetKey) {
	now := m.clock.Now().UTC()
	var ps []state.Payload
	m.read(func(ss *state.Sessions) {
		for _, k := range keys {
			a, ok := ss.Asset(k)
			if !ok {
				continue
			}
			t, _ := ss.Task(a.ID)
			if a.Kind != state.AssetOutput {
				t = nil
			}
			end, held := leaseEnd(a, t, m.opts.AssetTTL)
			if held || !renewDue(end, now, m.opts.AssetTTL) {
				continue
			}
			size := a.Size
			if t != nil {
				size = max(size, t.OutputBytes)
			}
			ps = append(ps, state.AssetRenewed{ID: a.ID, Size: size, ExpiresAt: now.Add(m.opts.AssetTTL)})
		}
	})
	if len(ps) == 0 {
		return
	}
	if err := m.append(ctx, key, ps...); err != nil {
		m.log.Warn("cannot record the renewal of asset leases", "session", key.String(), "assets", len(ps), "error", err)
	}
}

// outputLease is the lease an output gets when its task ends.
func (m *Manager) outputLease(id string, size int64) state.AssetRenewed {
	return state.AssetRenewed{ID: id, Size: size, ExpiresAt: m.clock.Now().UTC().Add(m.opts.AssetTTL)}
}

// Sweep collects every asset whose lease has ended (see [collectable]):
// it deletes the file, then records asset_collected (an observed fact: a
// sweep cut short between the two finds the file gone and records it
// next time). It never collects a held asset or one whose lease runs, and
// takes the lock a read takes to renew, so that a read asset is never
// collected under its reader. It returns what it collected, and the
// failures joined (each asset fails on its own). The manager's sweeper
// calls it when the next lease ends; it is exported for tests and tools.
func (m *Manager) Sweep(ctx context.Context) ([]AssetView, error) {
	if err := m.writable(); err != nil {
		return nil, err
	}
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	now := m.clock.Now()
	var due []state.Asset
	m.read(func(ss *state.Sessions) {
		for _, a := range ss.Assets("", "") {
			if s, ok := ss.Session(a.Tenant, a.Session); ok && s.Node != m.opts.Node {
				continue // its file is on that node's disk: that node collects it
			}
			t, _ := ss.Task(a.ID)
			if a.Kind != state.AssetOutput {
				t = nil
			}
			if collectable(a, t, m.opts.AssetTTL, now) {
				due = append(due, *a)
			}
		}
	})

	var errs []error
	var collected []AssetView
	bySession := map[state.Key][]state.Payload{}
	for _, a := range due {
		key := state.Key{Tenant: a.Tenant, Name: a.Session}
		size, err := m.removeAsset(key, a.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("collect asset %s of %s (%s): %w", a.ID, key, a.Path, err))
			continue
		}
		if size < 0 {
			size = a.Size
		}
		bySession[key] = append(bySession[key], state.AssetCollected{ID: a.ID, Kind: a.Kind, Path: a.Path, Size: size, Reason: state.CollectLeaseExpired})
		collected = append(collected, AssetView{ID: a.ID, Kind: a.Kind, Path: a.Path, Size: size})
	}
	for _, key := range slices.SortedFunc(maps.Keys(bySession), func(a, b state.Key) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Name, b.Name))
	}) {
		ps := bySession[key]
		if err := m.append(ctx, key, ps...); err != nil {
			errs = append(errs, fmt.Errorf("record collected assets of %s: %w", key, err))
			continue
		}
		for _, p := range ps {
			c := p.(state.AssetCollected)
			m.log.Info("collected asset: its lease expired", "session", key.String(), "asset", c.ID, "kind", c.Kind, "path", c.Path, "bytes", c.Size)
		}
	}
	return collected, errors.Join(errs...)
}

// removeAsset deletes the file rel of session key's directory, never
// outside it, and returns its size (-1 if it was already gone). A
// directory found in its place is left alone: it is not what was leased.
func (m *Manager) removeAsset(key state.Key, rel string) (int64, error) {
	root, err := os.OpenRoot(m.sessionDir(key))
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	defer root.Close()
	st, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	if st.IsDir() {
		return -1, nil
	}
	if err := root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	return st.Size(), nil
}

// nextLeaseEnd returns the earliest end of a lease, if any asset is not
// held.
func (m *Manager) nextLeaseEnd() (time.Time, bool) {
	var next time.Time
	m.read(func(ss *state.Sessions) {
		for _, a := range ss.Assets("", "") {
			if s, ok := ss.Session(a.Tenant, a.Session); ok && s.Node != m.opts.Node {
				continue // its file is on that node's disk: that node collects it
			}
			t, _ := ss.Task(a.ID)
			if a.Kind != state.AssetOutput {
				t = nil
			}
			end, held := leaseEnd(a, t, m.opts.AssetTTL)
			if !held && (next.IsZero() || end.Before(next)) {
				next = end
			}
		}
	})
	return next, !next.IsZero()
}

// sweeper runs [Manager.Sweep] when the earliest lease ends: one
// goroutine, one timer of the clock, re-armed when the assets change.
func (m *Manager) sweeper() {
	failed := false
	for {
		now := m.clock.Now()
		at, ok := m.nextLeaseEnd()
		if failed && (!ok || at.Before(now.Add(sweepRetry))) {
			at, ok = now.Add(sweepRetry), true
		}
		var fire <-chan time.Time
		stop := func() {}
		if ok {
			fire, stop = m.clock.At(minTime(at, now.Add(maxSweepWait)))
		}
		select {
		case <-fire:
			collected, err := m.Sweep(m.ctx)
			failed = err != nil
			if err != nil && m.ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				m.log.Error("asset sweep failed; will retry", "collected", len(collected), "retry_in", sweepRetry, "error", err)
			}
		case <-m.sweepWake:
		case <-m.ctx.Done():
			stop()
			return
		}
		stop()
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// wakeSweeper tells the sweeper that the assets or their tasks changed.
func (m *Manager) wakeSweeper() {
	select {
	case m.sweepWake <- struct{}{}:
	default:
	}
}

// wakesSweeper reports whether an event of type t may change when a lease
// ends.
func wakesSweeper(t state.EventType) bool {
	switch t {
	case state.TypeAssetAdded, state.TypeAssetRenewed, state.TypeAssetCollected,
		state.TypeTaskCompleted, state.TypeTaskFailed, state.TypeSessionRemoved:
		return true
	}
	return false
}
