package solo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// Who a tenant's service runs as. This file is the one home of that rule:
// [isConfined] says which services it applies to, [confinement.account]
// whom such a service runs as, and resolveLaunch applies it at deploy
// (checkRunnable, before anything is written) and at every start.

// localActor is the actor of the local admin's and the library's writes.
const localActor = "local"

// isConfined reports whether a service runs as its tenant's users rather
// than as the daemon's: every service of a tenant other than the default,
// and every one a token deployed (a token is always confined to its
// tenant). actor is the deploy's ("" or "local" for the local admin and
// the library). The local admin's services of the default tenant keep
// running as the daemon's user unless their spec names another.
func isConfined(tenant, actor string) bool {
	return tenant != state.DefaultTenant || (actor != "" && actor != localActor)
}

// confinement is whom a confined service may run as: its tenant's policy,
// and its dynamic user when the policy names no user.
type confinement struct {
	tenant  string
	policy  state.TenantPolicy
	dynamic uint32 // the tenant's dynamic uid and gid; 0 when its policy names users
}

// confinement returns the confinement of a service of tenant, or nil when
// confined is false. A tenant whose policy names no user gets its dynamic
// user: with record, one not yet allocated is allocated and recorded
// (tenant_user_allocated) before it returns; without, the one it would
// get now is used, and nothing is written.
func (r *Runtime) confinement(ctx context.Context, tenant string, confined, record bool) (*confinement, error) {
	if !confined {
		return nil, nil
	}
	c := &confinement{tenant: tenant}
	t, ok := r.world.tenant(tenant)
	if ok && t.Policy != nil {
		c.policy = *t.Policy
	}
	if len(c.policy.Users) > 0 {
		return c, nil
	}
	if ok && t.DynamicUser != nil {
		c.dynamic = t.DynamicUser.UID
		return c, nil
	}
	if !record {
		uid, err := pickDynamicUID(tenant, r.dynamicTaken(), accountExists)
		c.dynamic = uid
		return c, err
	}
	uid, err := r.allocateDynamicUser(ctx, tenant)
	c.dynamic = uid
	return c, err
}

// allocateDynamicUser records tenant's dynamic user, unless it has one,
// and returns it. Allocations are serialised, so two tenants never get
// the same number.
func (r *Runtime) allocateDynamicUser(ctx context.Context, tenant string) (uint32, error) {
	r.allocMu.Lock()
	defer r.allocMu.Unlock()
	if t, ok := r.world.tenant(tenant); ok && t.DynamicUser != nil {
		return t.DynamicUser.UID, nil
	}
	uid, err := pickDynamicUID(tenant, r.dynamicTaken(), accountExists)
	if err != nil {
		return 0, err
	}
	if _, err := r.append(ctx, state.Key{Tenant: tenant, Name: tenant}, state.TenantUserAllocated{UID: uid, GID: uid}, actorFrom(ctx)); err != nil {
		return 0, fmt.Errorf("tenant %s: record its dynamic user: %w", tenant, err)
	}
	r.log.Info("dynamic user allocated", "tenant", tenant, "uid", uid)
	return uid, nil
}

// dynamicTaken returns the dynamic uids of every tenant.
func (r *Runtime) dynamicTaken() map[uint32]bool {
	taken := map[uint32]bool{}
	for _, t := range r.world.tenants() {
		if t.DynamicUser != nil {
			taken[t.DynamicUser.UID] = true
		}
	}
	return taken
}

// accountExists reports whether id is a user or a group of this host
// (the passwd and group files, or NSS).
func accountExists(id uint32) bool {
	s := strconv.FormatUint(uint64(id), 10)
	if _, err := user.LookupId(s); err == nil {
		return true
	}
	_, err := user.LookupGroupId(s)
	return err == nil
}

// errNoDynamicUID is returned when every number of the dynamic range is
// taken.
var errNoDynamicUID = errors.New("no free dynamic uid")

// pickDynamicUID chooses tenant's dynamic uid (and gid, the same number)
// as systemd's DynamicUser does: in [state.DynamicUIDMin] to
// [state.DynamicUIDMax], first the number tenant's name hashes to, then
// the next, wrapping around, that is neither taken (another tenant's) nor
// a user or group of the host (exists). It is pure but for exists, so a
// tenant gets the same number whenever the same numbers are taken.
func pickDynamicUID(tenant string, taken map[uint32]bool, exists func(uint32) bool) (uint32, error) {
	const n = state.DynamicUIDMax - state.DynamicUIDMin + 1
	h := fnv.New32a()
	h.Write([]byte(tenant))
	start := h.Sum32() % n
	for i := uint32(0); i < n; i++ {
		uid := state.DynamicUIDMin + (start+i)%n
		if !taken[uid] && !exists(uid) {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("tenant %s: %w in %d-%d", tenant, errNoDynamicUID, state.DynamicUIDMin, state.DynamicUIDMax)
}

// denied is a spec field c's policy refuses: its message names the user
// or group and says how to allow it.
func (c *confinement) denied(field, format string, args ...any) error {
	return &launchError{field, fmt.Errorf("%w: "+format, append([]any{ErrDenied}, args...)...)}
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// account returns whom a service of c's tenant runs as: the spec's user,
// which must be in the policy; else the policy's first user; else the
// tenant's dynamic user (HOME=/, no passwd entry). A group the spec names
// must be the account's own or in the policy. Never root (uid or any gid
// 0), never the daemon's own user; a daemon not running as root cannot
// confine, and refuses. Errors wrap [ErrDenied], or are the lookup's
// (an unknown user or group), as a *launchError naming the field.
func (c *confinement) account(spec state.Spec, self supervisor.Credential) (supervisor.Account, error) {
	var a supervisor.Account
	if self.UID != 0 {
		return a, c.denied("user", "the daemon runs as uid %d, not root: it cannot run tenant %s's services as a user of their own, and never runs them as itself; run the daemon as root, or deploy into the default tenant as the local admin", self.UID, c.tenant)
	}
	name := spec.User
	if name != "" && !allowsUser(c.policy.Users, name) {
		return a, c.denied("user", "user %q is not in tenant %s's policy (users: %s); the local admin allows it with `solo tenant set %s --users ...`", name, c.tenant, listOrNone(c.policy.Users), c.tenant)
	}
	if name == "" && len(c.policy.Users) > 0 {
		name = c.policy.Users[0]
	}
	if name != "" {
		var err error
		if a, err = supervisor.LookupAccount(name, spec.Group, spec.Groups); err != nil {
			field := "user"
			if errors.Is(err, supervisor.ErrUnknownGroup) {
				field = "groups"
			}
			return a, &launchError{field, err}
		}
	} else {
		a = supervisor.Account{Credential: supervisor.Credential{UID: c.dynamic, GID: c.dynamic, Groups: []uint32{c.dynamic}}, Name: strconv.FormatUint(uint64(c.dynamic), 10), Home: "/"}
		if spec.Group != "" {
			gid, err := supervisor.LookupGroup(spec.Group)
			if err != nil {
				return a, &launchError{"group", err}
			}
			a.GID = gid
		}
		for _, g := range spec.Groups {
			gid, err := supervisor.LookupGroup(g)
			if err != nil {
				return a, &launchError{"groups", err}
			}
			a.Groups = append(a.Groups, gid)
		}
	}
	own := a.GID
	if u, err := user.LookupId(strconv.FormatUint(uint64(a.UID), 10)); err == nil {
		if g, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			own = uint32(g)
		}
	} else {
		own = c.dynamic
	}
	for _, f := range []struct {
		field  string
		groups []string
	}{{"group", []string{spec.Group}}, {"groups", spec.Groups}} {
		for _, g := range f.groups {
			if g == "" || allowsGroup(c.policy.Groups, g, own) {
				continue
			}
			return a, c.denied(f.field, "group %q is not in tenant %s's policy (groups: %s); the local admin allows it with `solo tenant set %s --groups ...`", g, c.tenant, listOrNone(c.policy.Groups), c.tenant)
		}
	}
	switch {
	case a.UID == 0 || a.GID == 0 || slices.Contains(a.Groups, 0):
		return a, c.denied("user", "tenant %s's service would run as root (uid %d, gid %d, groups %v): a tenant's services never do", c.tenant, a.UID, a.GID, a.Groups)
	case a.UID == self.UID:
		return a, c.denied("user", "tenant %s's service would run as the daemon's own user (uid %d): a tenant's services never do", c.tenant, a.UID)
	}
	return a, nil
}

// allowsUser reports whether name is one of users, by name or uid.
func allowsUser(users []string, name string) bool {
	if slices.Contains(users, name) {
		return true
	}
	uid, ok := lookupUID(name)
	if !ok {
		return false
	}
	return slices.ContainsFunc(users, func(u string) bool {
		id, ok := lookupUID(u)
		return ok && id == uid
	})
}

func lookupUID(name string) (string, bool) {
	if u, err := user.Lookup(name); err == nil {
		return u.Uid, true
	}
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		return name, true
	}
	return "", false
}

// allowsGroup reports whether group g is own (the run-as user's primary
// group) or one of groups, by name or gid.
func allowsGroup(groups []string, g string, own uint32) bool {
	gid, err := supervisor.LookupGroup(g)
	if err == nil && gid == own {
		return true
	}
	if slices.Contains(groups, g) {
		return true
	}
	return err == nil && slices.ContainsFunc(groups, func(p string) bool {
		id, err := supervisor.LookupGroup(p)
		return err == nil && id == gid
	})
}
