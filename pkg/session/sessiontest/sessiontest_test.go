package sessiontest_test

import (
	"testing"

	"github.com/solo-rt/solo/pkg/session/sessiontest"
)

// TestHost: the fixture's fold keeps the promises of the runtime's.
func TestHost(t *testing.T) {
	sessiontest.CheckHost(t, sessiontest.NewHost(t))
}
