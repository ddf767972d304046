package solo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/vault"
)

// Secrets are the runtime's vault (see package vault): its sealed values
// kept in solo.db's own bucket, its key in a file outside it
// (Options.VaultKeyFile, default vault.key in the data dir), and the
// secret_set and secret_removed events that record every change with the
// name and version only, never a value nor a hash of it. A spec names
// secrets in EnvSecrets; each start of the service reads them afresh (see
// resolveLaunch). Get it with [Runtime.Secrets]. Deciding who may set or
// remove is the caller's job (the API's).
//
// The vault is written first (fsynced), then the event: a crash between
// the two leaves a version the log does not record, which the next set
// supersedes.
type Secrets struct {
	rt *Runtime
	v  *vault.Vault
}

// SecretMeta describes a secret without its value.
type SecretMeta = vault.Meta

// SecretSetResult is what a set did: the secret's new version, the
// services of its tenant whose specs use it, and those restarted.
type SecretSetResult struct {
	Secret    SecretMeta
	Users     []string
	Restarted []string
}

var (
	// ErrSecretNotFound is returned for a secret that does not exist.
	ErrSecretNotFound = vault.ErrNotFound
	// ErrVaultKeyMissing is returned when the vault's key file is gone
	// while it holds secrets sealed with it.
	ErrVaultKeyMissing = vault.ErrKeyMissing
	// ErrInvalidSecret is returned for an empty value, or one over 64 KiB.
	ErrInvalidSecret = vault.ErrInvalid
)

// openVault opens the vault in r's database; a bad key file is refused.
func (r *Runtime) openVault() error {
	path := r.opts.VaultKeyFile
	if path == "" {
		path = filepath.Join(r.home, "vault.key")
	}
	v, err := vault.Open(r.local, path, r.opts.Now)
	if err != nil {
		return err
	}
	r.secrets = &Secrets{rt: r, v: v}
	return nil
}

// Secrets returns the runtime's vault.
func (r *Runtime) Secrets() *Secrets { return r.secrets }

// Set stores value as the next version of tenant's secret name and records
// secret_set. It reports the services of the tenant whose specs use the
// secret, and restarts them when restart is set (each with
// [Runtime.Restart]), so that they take the new value now rather than at
// their next start.
func (s *Secrets) Set(ctx context.Context, tenant, name string, value []byte, restart bool) (SecretSetResult, error) {
	if err := s.rt.writable(); err != nil {
		return SecretSetResult{}, err
	}
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return SecretSetResult{}, fmt.Errorf("secret set: %w", err)
	}
	m, err := s.v.Set(key.Tenant, key.Name, value)
	if err != nil {
		return SecretSetResult{}, fmt.Errorf("secret set %s: %w", key, err)
	}
	if _, err := s.rt.append(ctx, key, state.SecretSet{Name: key.Name, Version: m.Version}, actorFrom(ctx)); err != nil {
		return SecretSetResult{}, fmt.Errorf("secret set %s: record: %w", key, err)
	}
	res := SecretSetResult{Secret: m, Users: s.users(key)}
	if restart {
		for _, u := range res.Users {
			if _, err := s.rt.Restart(ctx, key.Tenant, u); err != nil {
				return res, fmt.Errorf("secret set %s: stored as version %d; restart %s: %w", key, m.Version, u, err)
			}
			res.Restarted = append(res.Restarted, u)
		}
	}
	return res, nil
}

// users returns the names of the desired services of key's tenant whose
// specs name the secret, sorted.
func (s *Secrets) users(key state.Key) []string {
	var out []string
	for _, svc := range s.rt.world.services(key.Tenant) {
		if svc.Desired && slices.Contains(slices.Collect(maps.Values(svc.Spec.EnvSecrets)), key.Name) {
			out = append(out, svc.Name)
		}
	}
	return out
}

// List returns tenant's secrets, sorted by name, without values.
func (s *Secrets) List(tenant string) ([]SecretMeta, error) {
	if tenant == "" {
		tenant = state.DefaultTenant
	}
	if err := state.ValidName(tenant); err != nil {
		return nil, fmt.Errorf("secret ls: tenant: %w", err)
	}
	return s.v.List(tenant)
}

// Remove deletes tenant's secret name and records secret_removed. A
// service that still names it fails its next start ("secret NAME not
// found").
func (s *Secrets) Remove(ctx context.Context, tenant, name string) (SecretMeta, error) {
	if err := s.rt.writable(); err != nil {
		return SecretMeta{}, err
	}
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return SecretMeta{}, fmt.Errorf("secret rm: %w", err)
	}
	m, err := s.v.Remove(key.Tenant, key.Name)
	if err != nil {
		return SecretMeta{}, fmt.Errorf("secret rm %s: %w", key, err)
	}
	if _, err := s.rt.append(ctx, key, state.SecretRemoved{Name: key.Name, Version: m.Version}, actorFrom(ctx)); err != nil {
		return SecretMeta{}, fmt.Errorf("secret rm %s: record: %w", key, err)
	}
	return m, nil
}

// values reads the secrets a spec names, for one start: the
// variable and its value, sorted by variable. An error names the secret
// and never holds a value.
func (s *Secrets) values(spec state.Spec) ([][2]string, error) {
	out := make([][2]string, 0, len(spec.EnvSecrets))
	for _, k := range sortedKeys(spec.EnvSecrets) {
		name := spec.EnvSecrets[k]
		val, _, err := s.v.Get(spec.Tenant, name)
		if err != nil {
			if errors.Is(err, vault.ErrKeyMissing) {
				return nil, fmt.Errorf("%s: secret %s: %w", k, name, err)
			}
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, [2]string{k, string(val)})
	}
	return out, nil
}
