package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/wire"
)

// TestServer_Nodes: without a cluster the node routes answer 404 saying
// so; with one they list the nodes and start or end a drain; a bad node
// name is refused before anything is asked; etcd without a quorum is 503;
// an unknown node 404.
func TestServer_Nodes(t *testing.T) {
	t.Run("not a cluster", func(t *testing.T) {
		f := apitest.MustServe(t, apitest.Options{})
		for _, r := range [][2]string{{"GET", "/v1/nodes"}, {"POST", "/v1/nodes/n1/drain"}, {"DELETE", "/v1/nodes/n1/drain"}} {
			code, _, body := do(t, f, r[0], r[1], "")
			assert.Equal(t, 404, code, r)
			assert.Contains(t, string(body), "not part of a cluster", r)
		}
	})
	t.Run("a cluster", func(t *testing.T) {
		var drains []string
		var nodesErr error
		f := apitest.MustServe(t, apitest.Options{API: api.Options{
			Nodes: func(context.Context) ([]wire.Node, error) {
				return []wire.Node{{Name: "n1", Alive: true, Services: 2}}, nodesErr
			},
			Drain: func(_ context.Context, node string, on bool) error {
				if node == "n9" {
					return fmt.Errorf("drain n9: %w: no such node", solo.ErrNotFound)
				}
				drains = append(drains, fmt.Sprint(node, on))
				return nil
			},
		}})
		code, _, raw := do(t, f, "GET", "/v1/nodes", "")
		require.Equal(t, 200, code)
		var reply wire.NodesReply
		require.NoError(t, json.Unmarshal(raw, &reply))
		assert.Equal(t, []wire.Node{{Name: "n1", Alive: true, Services: 2}}, reply.Nodes)

		code, _, _ = do(t, f, "POST", "/v1/nodes/n2/drain", "")
		assert.Equal(t, 200, code)
		code, _, _ = do(t, f, "DELETE", "/v1/nodes/n2/drain", "")
		assert.Equal(t, 200, code)
		code, _, body := do(t, f, "POST", "/v1/nodes/BAD/drain", "")
		assert.Equal(t, 400, code)
		assert.Contains(t, string(body), `"field":"name"`)
		code, _, _ = do(t, f, "POST", "/v1/nodes/n9/drain", "")
		assert.Equal(t, 404, code)
		assert.Equal(t, []string{"n2true", "n2false"}, drains, "a refused drain asks nothing")

		nodesErr = fmt.Errorf("nodes: %w", eventstore.ErrUnavailable)
		code, _, _ = do(t, f, "GET", "/v1/nodes", "")
		assert.Equal(t, 503, code)
	})
}
