package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// envelopes decodes an NDJSON body.
func envelopes(t *testing.T, body []byte) []eventstore.Envelope {
	t.Helper()
	var out []eventstore.Envelope
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		if line == "" {
			continue
		}
		var env eventstore.Envelope
		require.NoError(t, json.Unmarshal([]byte(line), &env), line)
		out = append(out, env)
	}
	return out
}

func TestServer_EventsFilter(t *testing.T) {
	f := apitest.MustServe(t, apitest.Options{})
	ctx := context.Background()
	for _, s := range []state.Spec{sleeper("default", "web"), sleeper("default", "db"), sleeper("other", "web")} {
		_, err := f.Runtime.Deploy(ctx, s)
		require.NoError(t, err)
		f.WaitEvent(t, 1, string(state.TypeServiceStarted), s.Tenant, s.Name)
	}

	t.Run("one service, its tenant the default", func(t *testing.T) {
		status, _, body := do(t, f, "GET", "/v1/events?service=web", "")
		require.Equal(t, http.StatusOK, status, string(body))
		envs := envelopes(t, body)
		require.Len(t, envs, 2, "deployed and started")
		for _, env := range envs {
			assert.Equal(t, "default", env.Tenant)
			assert.Equal(t, "web", env.Subject)
		}
		assert.Equal(t, string(state.TypeServiceDeployed), envs[0].Type)
	})

	t.Run("one service of another tenant, from a position", func(t *testing.T) {
		_, _, body := do(t, f, "GET", "/v1/events?service=web&tenant=other", "")
		envs := envelopes(t, body)
		require.Len(t, envs, 2)
		assert.Equal(t, "other", envs[0].Tenant)
		_, _, body = do(t, f, "GET", "/v1/events?service=web&tenant=other&from="+strconv.FormatUint(envs[1].Pos, 10), "")
		assert.Len(t, envelopes(t, body), 1)
	})

	t.Run("one tenant", func(t *testing.T) {
		_, _, body := do(t, f, "GET", "/v1/events?tenant=default", "")
		envs := envelopes(t, body)
		require.Len(t, envs, 4)
		for _, env := range envs {
			assert.Equal(t, "default", env.Tenant)
		}
	})

	t.Run("followed: only the service's new events", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, apitest.WaitTimeout)
		defer cancel()
		from := f.Runtime.Store().Head() + 1
		req, _ := http.NewRequestWithContext(ctx, "GET", f.URL("/v1/events?follow=1&service=db&from="+strconv.FormatUint(from, 10)), nil)
		resp, err := f.HTTP().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.NoError(t, f.Runtime.Kill(ctx, "default", "web"))
		require.NoError(t, f.Runtime.Kill(ctx, "default", "db"))
		sc := bufio.NewScanner(resp.Body)
		require.True(t, sc.Scan())
		var env eventstore.Envelope
		require.NoError(t, json.Unmarshal(sc.Bytes(), &env))
		assert.Equal(t, "db", env.Subject, "an event of another service came through")
		assert.Equal(t, string(state.TypeServiceKilled), env.Type)
	})

	t.Run("why", func(t *testing.T) {
		status, _, body := do(t, f, "GET", "/v1/services/default/db/why", "")
		require.Equal(t, http.StatusOK, status, string(body))
		var story wire.Story
		require.NoError(t, json.Unmarshal(body, &story))
		assert.Equal(t, "db", story.Name)
		require.NotEmpty(t, story.Lines)
		assert.True(t, strings.HasPrefix(story.Lines[0].Text, "deployed at "), story.Lines[0].Text)
		assert.Contains(t, story.Lines[2].Text, "stopped by a local caller")

		_, _, body = do(t, f, "GET", "/v1/services/default/db/why?lines=1", "")
		require.NoError(t, json.Unmarshal(body, &story))
		assert.Len(t, story.Lines, 1)
	})
}
