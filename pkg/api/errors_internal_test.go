package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("op a/b: %w", err) }
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		field  string
	}{
		{"field error", wrap(&state.FieldError{Field: "stop_signal", Problem: "unknown"}), 400, wire.CodeInvalid, "stop_signal"},
		{"invalid name", wrap(state.ValidName("UPPER")), 400, wire.CodeInvalid, ""},
		{"unknown kind", wrap(solo.ErrUnknownKind), 400, wire.CodeInvalid, ""},
		{"bad query parameter", badParam("tail", "no"), 400, wire.CodeInvalid, "tail"},
		{"store refuses the event", wrap(eventstore.ErrInvalid), 400, wire.CodeInvalid, ""},
		{"body too large", wrap(&http.MaxBytesError{Limit: 10}), 413, wire.CodeTooLarge, ""},
		{"not found", wrap(solo.ErrNotFound), 404, wire.CodeNotFound, ""},
		{"no route", errNoRoute, 404, wire.CodeNotFound, ""},
		{"denied", wrap(errDenied), 403, wire.CodeDenied, ""},
		{"auth error, defaults", wrap(&AuthError{Msg: "no token"}), 401, wire.CodeUnauthorized, ""},
		{"auth error, 403", wrap(&AuthError{Status: 403, Msg: "no scope"}), 403, wire.CodeDenied, ""},
		{"auth error, own code", &AuthError{Status: 401, Code: "expired", Msg: "token expired"}, 401, "expired", ""},
		{"conflict", wrap(&eventstore.ConflictError{Tenant: "a", Subject: "b"}), 409, wire.CodeConflict, ""},
		{"shutting down", wrap(solo.ErrShuttingDown), 503, wire.CodeUnavailable, ""},
		{"runtime closed", wrap(solo.ErrClosed), 503, wire.CodeUnavailable, ""},
		{"store closed", wrap(eventstore.ErrClosed), 503, wire.CodeUnavailable, ""},
		{"client gone", wrap(context.Canceled), 503, wire.CodeUnavailable, ""},
		{"corrupt", wrap(eventstore.ErrCorrupt), 500, wire.CodeCorrupt, ""},
		{"anything else", errors.New("disk on fire"), 500, wire.CodeInternal, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := errorBody(tc.err)
			assert.Equal(t, tc.status, status)
			assert.Equal(t, tc.code, body.Code)
			assert.Equal(t, tc.field, body.Field)
			assert.Equal(t, tc.err.Error(), body.Error)
		})
	}

	t.Run("a cluster without quorum says a retry is safe", func(t *testing.T) {
		status, body := errorBody(wrap(eventstore.ErrUnavailable))
		assert.Equal(t, 503, status)
		assert.Equal(t, wire.CodeUnavailable, body.Code)
		assert.Contains(t, body.Error, "op a/b: event log is unavailable (the cluster's etcd has no quorum")
		assert.Contains(t, body.Error, "a retry is safe")
	})

	t.Run("a failed check lists its problems", func(t *testing.T) {
		err := fmt.Errorf("db check: %w", &eventstore.CheckError{Problems: []string{"events: gap"}})
		status, body := errorBody(err)
		assert.Equal(t, 500, status)
		assert.Equal(t, wire.CodeCorrupt, body.Code)
		assert.Equal(t, []string{"events: gap"}, body.Problems)
	})
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/services":        "/v1/services",
		"/v1/services/":       "/v1/services/",
		"/v1//services":       "/v1/services",
		"/v1/services/a/../b": "/v1/services/b",
		"/v1/services/./a":    "/v1/services/a",
		"":                    "/",
		"/":                   "/",
	} {
		assert.Equal(t, want, cleanPath(in), in)
	}
}
