package session_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/solo-rt/solo/pkg/session"
)

func TestIsService(t *testing.T) {
	cases := []struct {
		name string
		want bool
	}{
		{"session.nb", true},
		{session.ServicePrefix + "a-b_c.d", true},
		{"session.", true}, // not a valid name, but in the name space
		{"session", false},
		{"sessions.nb", false},
		{"web", false},
		{"nb.session.x", false},
		{"Session.nb", false}, // names are lower case; Validate refuses this one
		{"", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, session.IsService(c.name), "%q", c.name)
	}
}
