package state

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWorld_ApplyTenant(t *testing.T) {
	l := newTestLog(t)
	l.add("alpha", "alpha", TenantPolicySet{TenantPolicy{Users: []string{"nobody"}}})
	l.add("alpha", "alpha", TenantPolicySet{TenantPolicy{Users: []string{"daemon", "nobody"}, Groups: []string{"web"}}})
	l.add("beta", "beta", TenantUserAllocated{UID: 61300, GID: 61300})
	l.add("beta", "beta", TenantUserAllocated{UID: 61400, GID: 61400}) // a repeat: the first stands
	l.deploy("web", 1)
	w := mustFold(t, l)

	a, ok := w.Tenant("alpha")
	require.True(t, ok)
	require.Equal(t, &TenantPolicy{Users: []string{"daemon", "nobody"}, Groups: []string{"web"}}, a.Policy, "the last set replaces the whole policy")
	require.Equal(t, uint64(2), a.PolicyPos)
	require.Nil(t, a.DynamicUser)

	b, ok := w.Tenant("beta")
	require.True(t, ok)
	require.Nil(t, b.Policy)
	require.Equal(t, &TenantUserAllocated{UID: 61300, GID: 61300}, b.DynamicUser)

	_, ok = w.Tenant(DefaultTenant)
	require.False(t, ok, "a deploy makes no tenant record")
	require.Equal(t, []string{"alpha", "beta"}, []string{w.Tenants()[0].Name, w.Tenants()[1].Name})

	c := w.Clone()
	c.tenants["alpha"].Policy.Users[0] = "changed"
	require.Equal(t, "daemon", a.Policy.Users[0], "a clone shares nothing")
}

func TestTenantPolicy_Validate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     TenantPolicy
		field string
	}{
		{"ok", TenantPolicy{Users: []string{"nobody", "1001"}, Groups: []string{"web"}}, ""},
		{"empty", TenantPolicy{}, ""},
		{"empty user", TenantPolicy{Users: []string{""}}, "users"},
		{"colon", TenantPolicy{Users: []string{"a:b"}}, "users"},
		{"twice", TenantPolicy{Groups: []string{"web", "web"}}, "groups"},
		{"too many", TenantPolicy{Groups: make([]string, MaxGroups+1)}, "groups"},
		{"quotas and rate", TenantPolicy{Limits: Limits{Services: 10, Sessions: 2, Tasks: 50}, Rate: 5, Burst: 10}, ""},
		{"negative services", TenantPolicy{Limits: Limits{Services: -1}}, QuotaServices},
		{"negative sessions", TenantPolicy{Limits: Limits{Sessions: -1}}, QuotaSessions},
		{"negative tasks", TenantPolicy{Limits: Limits{Tasks: -5}}, QuotaTasks},
		{"negative rate", TenantPolicy{Rate: -1, Burst: 1}, "rate"},
		{"negative burst", TenantPolicy{Rate: 1, Burst: -1}, "burst"},
		{"rate without burst", TenantPolicy{Rate: 1}, "burst"},
		{"burst without rate", TenantPolicy{Burst: 3}, "rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *PolicyError
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Equal(t, tc.field, fe.Field)
			_, err = NewEvent("t", "t", TenantPolicySet{tc.p})
			require.ErrorIs(t, err, ErrInvalidEvent)
		})
	}
	_, err := NewEvent("t", "t", TenantUserAllocated{UID: 0, GID: 0})
	require.ErrorIs(t, err, ErrInvalidEvent, "root is never a dynamic user")
}
