package solo

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/session/sessiontest"
)

// TestFollower_SessionHost: the runtime's follower gives the session
// manager what it relies on (read-your-writes, every envelope told once,
// in order, before a wait for it returns), and it is the one subscriber
// that folds the log: the manager, which runs from Open on, has none.
func TestFollower_SessionHost(t *testing.T) {
	r, err := Open(context.Background(), Options{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(context.Background()) })
	require.NotNil(t, r.Sessions(), "the session manager runs")

	sessiontest.CheckHost(t, sessionHost{r})

	// A subscription counts once it has caught up and gone live, and
	// stays live unless it falls behind (an overflow): after Open's and
	// CheckHost's appends, each waited for, a follower that is not live is
	// not following.
	st := r.Store().Stats()
	require.Zero(t, st.Overflows, "the follower fell behind: the count below proves nothing")
	assert.Equal(t, 1, st.Subscribers, "one subscriber follows the log")
}
