package solo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// hasher prints the sha256 of $PW, then sleeps.
func hasher(name string) solo.Spec {
	return solo.Spec{Name: name, EnvSecrets: map[string]string{"PW": "db-password"},
		Command: []string{"sh", "-c", `printf %s "$PW" | sha256sum; exec sleep 1000`}}
}

// TestSecrets_ResolvedAtEveryStart: a secret reaches the service's
// environment; a set says who uses it and, asked to, restarts them with
// the new value; a removed secret fails the next start with its name and
// the restart policy goes on; the value is in no event and no file of the
// data dir.
func TestSecrets_ResolvedAtEveryStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rt := MustOpen(t, solo.Options{DataDir: dir})
	sec := rt.Secrets()
	key := state.Key{Tenant: "default", Name: "hashy"}

	head := rt.Store().Head()
	_, err := rt.Deploy(ctx, hasher("hashy"))
	require.ErrorContains(t, err, "env_secrets")
	require.ErrorContains(t, err, "secret db-password not found")
	assert.Equal(t, head, rt.Store().Head(), "a missing secret at deploy writes nothing")

	first, second := "first-Secret-value-1", "second-Secret-value-2"
	res, err := sec.Set(ctx, "", "db-password", []byte(first), false)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.Secret.Version)
	assert.Empty(t, res.Users)

	ev := follow(t, rt, rt.Store().Head()+1)
	_, err = rt.Deploy(ctx, hasher("hashy"))
	require.NoError(t, err)
	_, p := ev.next(key, state.TypeServiceStarted)
	waitLog(t, rt, "hashy", sha(first))

	res, err = sec.Set(ctx, "default", "db-password", []byte(second), true)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res.Secret.Version)
	assert.Equal(t, []string{"hashy"}, res.Users)
	assert.Equal(t, []string{"hashy"}, res.Restarted)
	_, p2 := ev.next(key, state.TypeServiceStarted)
	assert.NotEqual(t, p.(state.Started).PID, p2.(state.Started).PID)
	waitLog(t, rt, "hashy", sha(second))

	other, err := sec.Set(ctx, "beta", "db-password", []byte("beta-value"), false)
	require.NoError(t, err)
	assert.Empty(t, other.Users, "another tenant's services are not users")

	list, err := sec.List("default")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "db-password", list[0].Name)
	assert.Equal(t, uint64(2), list[0].Version)

	_, err = sec.Remove(ctx, "default", "db-password")
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(p2.(state.Started).PID, syscall.SIGKILL))
	ev.next(key, state.TypeServiceExited) // the kill
	_, p = ev.next(key, state.TypeServiceExited)
	assert.Contains(t, p.(state.Exited).Error, "secret db-password not found")
	_, err = sec.Set(ctx, "default", "db-password", []byte(second), false)
	require.NoError(t, err)
	ev.next(key, state.TypeServiceStarted) // the policy went on
	require.NoError(t, rt.Kill(ctx, "default", "hashy"))

	for _, v := range []string{first, second, "beta-value"} {
		assertNotInLog(t, dir, rt, v)
	}
}

// TestSecrets_LostKeyFile: a daemon whose vault key file is gone opens,
// runs its services without secrets, and fails the starts of those with
// secrets with "vault key missing"; a new set is refused rather than
// sealed under a new key.
func TestSecrets_LostKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Backoff: fastBackoff})
	require.NoError(t, err)
	_, err = rt.Secrets().Set(ctx, "", "db-password", []byte("lost-key-value"), false)
	require.NoError(t, err)
	_, err = rt.Deploy(ctx, hasher("hashy"))
	require.NoError(t, err)
	_, err = rt.Deploy(ctx, sleeper("plain"))
	require.NoError(t, err)
	rt.Close(ctx)
	require.NoError(t, os.Remove(filepath.Join(dir, "vault.key")))

	rt = MustOpen(t, solo.Options{DataDir: dir})
	ev := follow(t, rt, 1)
	ev.next(state.Key{Tenant: "default", Name: "plain"}, state.TypeServiceRecovered)
	_, p := ev.next(state.Key{Tenant: "default", Name: "hashy"}, state.TypeServiceRecoveryFailed)
	assert.Contains(t, p.(state.RecoveryFailed).Reason, "vault key missing")
	st, err := rt.Status("default", "plain")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, st.State)
	_, err = rt.Secrets().Set(ctx, "", "other", []byte("x"), false)
	require.ErrorIs(t, err, solo.ErrVaultKeyMissing)
	list, err := rt.Secrets().List("")
	require.NoError(t, err)
	assert.Len(t, list, 1, "nothing else lost")
}

// TestSecrets_BadKeyFileRefusedAtOpen: a key file others may read, or of
// the wrong length, fails Open with a message that says how to fix it.
func TestSecrets_BadKeyFileRefusedAtOpen(t *testing.T) {
	kp := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(kp, make([]byte, 32), 0o644))
	_, err := solo.Open(context.Background(), solo.Options{DataDir: t.TempDir(), VaultKeyFile: kp})
	require.ErrorContains(t, err, "chmod 600")
	require.NoError(t, os.Chmod(kp, 0o600))
	require.NoError(t, os.WriteFile(kp, make([]byte, 31), 0o600))
	_, err = solo.Open(context.Background(), solo.Options{DataDir: t.TempDir(), VaultKeyFile: kp})
	require.ErrorContains(t, err, "want exactly 32")
}
