package session_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/session/sessiontest"
	"github.com/solo-rt/solo/pkg/state"
)

const testTTL = time.Hour

// leaseFixture is a manager on a host without kernels, whose clock the
// test moves.
type leaseFixture struct {
	h     *sessiontest.Host
	clock *sessiontest.Clock
	m     *session.Manager
}

func newLeaseFixture(t *testing.T, sessions ...string) *leaseFixture {
	t.Helper()
	f := &leaseFixture{h: sessiontest.NewHost(t), clock: sessiontest.NewClock(time.Now().UTC().Truncate(time.Second))}
	f.m = sessiontest.MustOpen(t, f.h, session.Options{Clock: f.clock, AssetTTL: testTTL})
	for _, name := range sessions {
		_, err := f.m.Create(ctxT(t), "", name, "", "/usr/bin/python3")
		require.NoError(t, err)
	}
	return f
}

func (f *leaseFixture) dir(name string) string {
	return filepath.Join(f.h.DataDir, "sessions", state.DefaultTenant, name)
}

// file writes a file of session name's directory and returns its path.
func (f *leaseFixture) file(t *testing.T, name, rel, content string) string {
	t.Helper()
	p := filepath.Join(f.dir(name), rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// payloads returns the payloads of type typ in the log, in order.
func (f *leaseFixture) payloads(t *testing.T, typ state.EventType) []state.Payload {
	t.Helper()
	var out []state.Payload
	for env, err := range f.h.Store.Read(1, 0) {
		require.NoError(t, err)
		if env.Type == string(typ) {
			p, err := state.Decode(env)
			require.NoError(t, err)
			out = append(out, p)
		}
	}
	return out
}

// collected returns the ids of the assets the log says were collected.
func (f *leaseFixture) collected(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, p := range f.payloads(t, state.TypeAssetCollected) {
		c := p.(state.AssetCollected)
		assert.Equal(t, state.CollectLeaseExpired, c.Reason)
		ids = append(ids, c.ID)
	}
	return ids
}

// sweep runs a sweep at the clock's time; the background sweeper may have
// run one first, so the test looks at the log and the files, not at what
// this one returns.
func (f *leaseFixture) sweep(t *testing.T) {
	t.Helper()
	_, err := f.m.Sweep(ctxT(t))
	require.NoError(t, err)
}

// runningTask records a task of session name that started and is running,
// with an output file, as a worker would (there is no kernel to run it).
func (f *leaseFixture) runningTask(t *testing.T, name, output string) string {
	t.Helper()
	id := session.NewTaskID()
	f.file(t, name, filepath.Join("tasks", id+".out"), output)
	f.appendFolded(t, name,
		state.TaskSubmitted{ID: id, Code: "print(1)"},
		state.TaskStarted{ID: id, Attempt: 1},
		state.AssetAdded{ID: id, Kind: state.AssetOutput, Path: filepath.Join("tasks", id+".out")})
	return id
}

// endTask records the end of a running task with its output's lease, as
// a worker does: the lease first.
func (f *leaseFixture) endTask(t *testing.T, name, id string, size int64) {
	t.Helper()
	f.appendFolded(t, name,
		state.AssetRenewed{ID: id, Size: size, ExpiresAt: f.clock.Now().Add(testTTL)},
		state.TaskCompleted{ID: id, OutputBytes: size})
}

// appendFolded appends ps about session name, as a worker would, and
// returns once the host folded them and the manager took them in.
func (f *leaseFixture) appendFolded(t *testing.T, name string, ps ...state.Payload) {
	t.Helper()
	pos, err := f.h.Append(ctxT(t), state.Key{Tenant: state.DefaultTenant, Name: name}, ps...)
	require.NoError(t, err)
	require.NoError(t, f.m.WaitFolded(ctxT(t), pos))
}

func TestManager_AssetLease(t *testing.T) {
	f := newLeaseFixture(t, "nb", "other")
	ctx := ctxT(t)
	readPath := f.file(t, "nb", "data/read.csv", "a,b\n")
	unreadPath := f.file(t, "other", "unread.csv", "c,d\n")
	read, err := f.m.AddAsset(ctx, "", "nb", "data/read.csv")
	require.NoError(t, err)
	assert.Equal(t, state.AssetFile, read.Kind)
	assert.Equal(t, "data/read.csv", read.Path)
	assert.Equal(t, int64(4), read.Size)
	t0 := f.clock.Now()
	assert.Equal(t, t0.Add(testTTL), read.ExpiresAt)
	unread, err := f.m.AddAsset(ctx, "", "other", "unread.csv")
	require.NoError(t, err)
	held := f.runningTask(t, "nb", "printed so far\n")

	// A read within the ttl (a listing) renews the lease of what it lists.
	f.clock.Advance(testTTL * 9 / 10)
	vs, err := f.m.Assets(ctx, "", "nb")
	require.NoError(t, err)
	require.Len(t, vs, 2)
	assert.Equal(t, read.ID, vs[0].ID)
	renewedTo := f.clock.Now().Add(testTTL)
	assert.Equal(t, renewedTo, vs[0].ExpiresAt, "listed: renewed")
	assert.Equal(t, held, vs[1].ID)
	assert.Equal(t, state.AssetOutput, vs[1].Kind)
	assert.True(t, vs[1].Held, "a running task's output is held")
	assert.True(t, vs[1].ExpiresAt.IsZero())
	renewals := len(f.payloads(t, state.TypeAssetRenewed))
	_, err = f.m.Assets(ctx, "", "nb")
	require.NoError(t, err)
	assert.Equal(t, renewals, len(f.payloads(t, state.TypeAssetRenewed)), "a second read right after records no renewal")

	// Just before the first lease ends, nothing is collected.
	f.clock.Advance(testTTL/10 - time.Nanosecond)
	f.sweep(t)
	assert.Empty(t, f.collected(t), "a leased asset was collected")
	assert.FileExists(t, readPath)
	assert.FileExists(t, unreadPath)

	// Once it ended: the unread asset is collected, file and all, and the
	// collection recorded; the read one is kept.
	f.clock.Advance(time.Nanosecond)
	f.sweep(t)
	require.Equal(t, []string{unread.ID}, f.collected(t))
	assert.NoFileExists(t, unreadPath)
	assert.FileExists(t, readPath, "an asset read within its ttl was collected")
	c := f.payloads(t, state.TypeAssetCollected)[0].(state.AssetCollected)
	assert.Equal(t, state.AssetCollected{ID: unread.ID, Kind: state.AssetFile, Path: "unread.csv", Size: 4, Reason: state.CollectLeaseExpired}, c)
	_, err = f.m.Assets(ctx, "", "other")
	require.NoError(t, err)

	// Long after: the held output is still kept; the renewed lease ended.
	f.clock.Advance(100 * testTTL)
	f.sweep(t)
	assert.NoFileExists(t, readPath)
	assert.ElementsMatch(t, []string{unread.ID, read.ID}, f.collected(t))
	outPath := filepath.Join(f.dir("nb"), "tasks", held+".out")
	assert.FileExists(t, outPath, "a running task's output was collected")
	var b strings.Builder
	require.NoError(t, f.m.Output(ctx, held, false, func(p []byte) error { b.Write(p); return nil }))
	assert.Equal(t, "printed so far\n", b.String())

	// Once its task ends, its lease runs from there.
	f.endTask(t, "nb", held, 15)
	f.sweep(t)
	assert.FileExists(t, outPath)
	f.clock.Advance(testTTL)
	f.sweep(t)
	assert.NoFileExists(t, outPath)
	assert.Contains(t, f.collected(t), held)
	tk, err := f.m.Task(held)
	require.NoError(t, err)
	assert.False(t, tk.OutputCollectedAt.IsZero())
	err = f.m.Output(ctx, held, false, func([]byte) error { return nil })
	assert.True(t, errors.Is(err, session.ErrCollected), "%v", err)
	vs, err = f.m.Assets(ctx, "", "nb")
	require.NoError(t, err)
	assert.Empty(t, vs, "collected assets are not listed")
}

// TestManager_OutputReadRenews: reading a task's output renews its lease;
// an output nobody reads is collected.
func TestManager_OutputReadRenews(t *testing.T) {
	f := newLeaseFixture(t, "nb")
	ctx := ctxT(t)
	readID := f.runningTask(t, "nb", "read me\n")
	unreadID := f.runningTask(t, "nb", "nobody\n")
	f.endTask(t, "nb", readID, 8)
	f.endTask(t, "nb", unreadID, 7)

	f.clock.Advance(testTTL / 2)
	var b strings.Builder
	require.NoError(t, f.m.Output(ctx, readID, false, func(p []byte) error { b.Write(p); return nil }))
	assert.Equal(t, "read me\n", b.String())

	f.clock.Advance(testTTL/2 + time.Second)
	f.sweep(t)
	assert.Equal(t, []string{unreadID}, f.collected(t))
	b.Reset()
	require.NoError(t, f.m.Output(ctx, readID, false, func(p []byte) error { b.Write(p); return nil }),
		"an output read within its ttl was collected")
	assert.Equal(t, "read me\n", b.String())
	err := f.m.Output(ctx, unreadID, false, func([]byte) error { return nil })
	assert.True(t, errors.Is(err, session.ErrCollected), "%v", err)
	assert.Contains(t, err.Error(), unreadID)
}

// TestManager_Sweeper: the background sweeper collects an asset when the
// clock reaches the end of its lease, without anyone calling Sweep.
func TestManager_Sweeper(t *testing.T) {
	f := newLeaseFixture(t, "nb")
	ctx := ctxT(t)
	path := f.file(t, "nb", "out.bin", "xyz")
	a, err := f.m.AddAsset(ctx, "", "nb", "out.bin")
	require.NoError(t, err)
	events := f.h.Store.Subscribe(ctx, f.h.Store.Head()+1)
	f.clock.Advance(testTTL)
	for env := range events.C() {
		if env.Type != string(state.TypeAssetCollected) {
			continue
		}
		p, err := state.Decode(env)
		require.NoError(t, err)
		assert.Equal(t, a.ID, p.(state.AssetCollected).ID)
		break
	}
	require.NoError(t, ctx.Err(), "no asset_collected")
	assert.NoFileExists(t, path)
}

// TestManager_AssetBadInput: bad paths, unknown sessions and tasks get a
// clear error, and nothing is written.
func TestManager_AssetBadInput(t *testing.T) {
	f := newLeaseFixture(t, "nb")
	ctx := ctxT(t)
	dir := f.dir("nb")
	f.file(t, "nb", "ok.txt", "ok")
	f.file(t, "nb", "sub/x.txt", "x")
	outside := filepath.Join(f.h.DataDir, "outside.txt")
	require.NoError(t, os.WriteFile(outside, []byte("not yours"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link-out")))
	require.NoError(t, os.Symlink("..", filepath.Join(dir, "up")))
	require.NoError(t, os.Symlink("checkpoints", filepath.Join(dir, "ck")))
	f.file(t, "nb", "checkpoints/one.ckpt", "signed")

	cases := []struct {
		name, session, path string
		is                  error
		mention             string
	}{
		{"dot-dot", "nb", "../nb/ok.txt", session.ErrInvalid, "escapes the session's directory"},
		{"dot-dot inside", "nb", "sub/../../x", session.ErrInvalid, "escapes the session's directory"},
		{"absolute", "nb", filepath.Join(dir, "ok.txt"), session.ErrInvalid, "absolute"},
		{"empty", "nb", "", session.ErrInvalid, "empty"},
		{"a link out of the directory", "nb", "link-out", session.ErrInvalid, "escapes"},
		{"through a link out of the directory", "nb", "up/outside.txt", session.ErrInvalid, "escape"},
		{"the connection file", "nb", "kernel.json", session.ErrInvalid, "Solo's own"},
		{"a kernel's connection file", "nb", "kernels/1.json", session.ErrInvalid, "Solo's own"},
		{"a checkpoint through a link", "nb", "ck/one.ckpt", session.ErrInvalid, "Solo's own"},
		{"a directory", "nb", "sub", session.ErrInvalid, "not a regular file"},
		{"no such file", "nb", "nope.txt", session.ErrInvalid, "no such file"},
		{"unknown session", "ghost", "ok.txt", session.ErrNotFound, "default/ghost"},
		{"bad session name", "../nb", "ok.txt", session.ErrInvalid, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head := f.h.Store.Head()
			_, err := f.m.AddAsset(ctx, "", tc.session, tc.path)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.is), "%v", err)
			assert.Contains(t, err.Error(), tc.mention)
			assert.Equal(t, head, f.h.Store.Head(), "a refused asset was recorded")
		})
	}
	assert.FileExists(t, outside)

	head := f.h.Store.Head()
	_, err := f.m.Assets(ctx, "", "ghost")
	assert.True(t, errors.Is(err, session.ErrNotFound), "%v", err)
	ghost := session.NewTaskID()
	err = f.m.Output(ctx, ghost, false, func([]byte) error { return nil })
	assert.True(t, errors.Is(err, session.ErrTaskNotFound), "%v", err)
	assert.Contains(t, err.Error(), ghost)
	assert.Equal(t, head, f.h.Store.Head())

	// The same file twice is one asset, its lease renewed.
	a, err := f.m.AddAsset(ctx, "", "nb", "ok.txt")
	require.NoError(t, err)
	f.clock.Advance(testTTL / 2)
	b, err := f.m.AddAsset(ctx, "", "nb", "./sub/../ok.txt")
	require.NoError(t, err)
	assert.Equal(t, a.ID, b.ID)
	assert.Equal(t, f.clock.Now().Add(testTTL), b.ExpiresAt)
	vs, err := f.m.Assets(ctx, "", "nb")
	require.NoError(t, err)
	assert.Len(t, vs, 1)
}
