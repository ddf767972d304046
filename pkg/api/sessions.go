package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// sessionRoutes adds the session and task routes (see the package doc).
func (s *Server) sessionRoutes() {
	s.handle("GET /v1/sessions", authed, s.listSessions)
	s.handle("POST /v1/sessions", authed, s.createSession)
	s.handle("GET /v1/sessions/{tenant}/{name}", authed, s.getSession)
	s.handle("DELETE /v1/sessions/{tenant}/{name}", authed, s.removeSession)
	s.handle("POST /v1/sessions/{tenant}/{name}/restart", authed, s.restartSession)
	s.handle("POST /v1/sessions/{tenant}/{name}/tasks", authed, s.submitTask)
	s.handle("GET /v1/sessions/{tenant}/{name}/assets", authed, s.listAssets)
	s.handle("POST /v1/sessions/{tenant}/{name}/assets", authed, s.addAsset)
	s.handle("GET /v1/tasks/{id}", authed, s.getTask)
	s.handle("GET /v1/tasks/{id}/output", authed, s.taskOutput)
	s.handle("POST /v1/tasks/{id}/cancel", authed, s.cancelTask)
}

// classed gives a session error the class [classify] maps, keeping its
// own words.
type classed struct{ err, class error }

func (c classed) Error() string   { return c.err.Error() }
func (c classed) Unwrap() []error { return []error{c.err, c.class} }

// sessionErr maps the session package's errors to the API's classes.
func sessionErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrTaskNotFound), errors.Is(err, session.ErrCheckpointNotFound),
		errors.Is(err, session.ErrCollected):
		return classed{err, solo.ErrNotFound}
	case errors.Is(err, session.ErrInvalid):
		return classed{err, errBadRequest}
	case errors.Is(err, session.ErrExists), errors.Is(err, session.ErrLost), errors.Is(err, session.ErrNotLost),
		errors.Is(err, session.ErrElsewhere):
		return classed{err, eventstore.ErrConflict}
	case errors.Is(err, session.ErrClosed):
		return classed{err, solo.ErrClosed}
	}
	return err
}

func (s *Server) sessions() (*session.Manager, error) {
	m := s.rt.Sessions()
	if m == nil {
		return nil, fmt.Errorf("sessions: %w", solo.ErrClosed)
	}
	return m, nil
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	m, err := s.sessions()
	if err != nil {
		return err
	}
	tenant, visible, err := listScope(r, "list sessions")
	if err != nil {
		return err
	}
	views := []session.View{}
	if visible {
		views = m.List(tenant)
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) error {
	m, err := s.sessions()
	if err != nil {
		return err
	}
	var req wire.CreateSessionRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if p, _ := PrincipalFrom(r.Context()); !p.admin() {
		switch req.Tenant {
		case "":
			req.Tenant = p.Tenant
		case p.Tenant:
		default:
			return fmt.Errorf("create session: tenant %q: %w", req.Tenant, errDenied)
		}
	}
	v, err := m.Create(r.Context(), req.Tenant, req.Name, req.Kernel, req.Python)
	if err != nil {
		return sessionErr(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	m, err := s.sessions()
	if err != nil {
		return err
	}
	key, err := lookupKey(r, "session")
	if err != nil {
		return err
	}
	v, err := m.Get(key.Tenant, key.Name)
	if err != nil {
		return sessionErr(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// restartSession runs a lost session again on this node, empty.
func (s *Server) restartSession(w http.ResponseWriter, r *http.Request) error {
	m, err := s.sessions()
	if err != nil {
		return err
	}
	key, err := lookupKey(r, "restart session")
	if err != nil {
		return err
	}
	var req wire.RestartSessionRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("restart session: %w", err)
	}
	v, err := m.Restart(r.Context(), key.Tenant, key.Name, req.Python)
	if err != nil {
		return sessionErr(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) removeSession(w http.ResponseWriter, r *http.Request) error {
	m, err := s.sessions()
	if err != nil {
		return err
	}
	key, err := lookupKey(r, "remove session")
	if err != nil {
		return err
	}
	if err := m.Remove(r.Context(), key.Tenant, key.Name); err != nil {
		return sessionErr(err)
	}
	writeJSON(w, http.StatusOK, wire.RemoveSessionResult{Tenant: key.Tenant, Name: key.Name, Removed: true})
	return nil
}

// submitTask queues a task; with ?wait=1 it replies once the task ended.
func (s *Server) submitTask(w http.ResponseWriter, r *http.Request) error {
	m, err := s.sessions()
	if err != nil {
		return err
	}
	key, err := lookupKey(r, "submit")
	if err != nil {
		return err
	}
	wait, err := boolParam(r.URL.Query().Get("wait"), "wait")
	if err != nil {
		return err
	}
	var req wire.SubmitRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	var t *state.Task
	switch req.Kind {
	case state.TaskExec:
		t, err = m.Submit(r.Context(), key.Tenant, key.Name, req.Code, session.SubmitOptions{Retryable: req.Retryable})
	case state.TaskCheckpoint:
		t, err = m.Checkpoint(r.Context(), key.Tenant, key.Name, req.Label)
	case state.TaskRestore:
		t, err = m.Restore(r.Context(), key.Tenant, key.Name, req.Label)
	default:
		return badParam("kind", "%q is not \"\", checkpoint or restore", req.Kind)
	}
	if err != nil {
		return sessionErr(err)
	}
	if wait {
		ctx, cancel := s.streamContext(r)
		defer cancel()
		if t, err = m.Wait(ctx, t.ID); err != nil {
			return sessionErr(err)
		}
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// task finds a task the principal may see; others answer not found.
func (s *Server) task(r *http.Request) (*session.Manager, *state.Task, error) {
	m, err := s.sessions()
	if err != nil {
		return nil, nil, err
	}
	id := r.PathValue("id")
	t, err := m.Task(id)
	if err != nil {
		return nil, nil, sessionErr(err)
	}
	if p, _ := PrincipalFrom(r.Context()); !p.sees(t.Tenant) {
		return nil, nil, sessionErr(fmt.Errorf("task %q: %w", id, session.ErrTaskNotFound))
	}
	return m, t, nil
}

// getTask returns a task; with ?wait=1 once it ended.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	m, t, err := s.task(r)
	if err != nil {
		return err
	}
	wait, err := boolParam(r.URL.Query().Get("wait"), "wait")
	if err != nil {
		return err
	}
	if wait {
		ctx, cancel := s.streamContext(r)
		defer cancel()
		if t, err = m.Wait(ctx, t.ID); err != nil {
			return sessionErr(err)
		}
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// taskOutput sends a task's outputs as text; with ?follow=1 it goes on
// until the task ends. What can fail (an unknown task, an output that was
// collected) fails before the first byte, with an error reply.
func (s *Server) taskOutput(w http.ResponseWriter, r *http.Request) error {
	m, t, err := s.task(r)
	if err != nil {
		return err
	}
	follow, err := boolParam(r.URL.Query().Get("follow"), "follow")
	if err != nil {
		return err
	}
	out, err := m.OpenOutput(r.Context(), t.ID)
	if err != nil {
		return sessionErr(err)
	}
	defer out.Close()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	fw.Write(nil)
	ctx, cancel := s.streamContext(r)
	defer cancel()
	err = out.Copy(ctx, follow, func(b []byte) error {
		_, err := fw.Write(b)
		return err
	})
	if err != nil && ctx.Err() == nil {
		s.log.Debug("task output ended early", "task", t.ID, "error", err)
	}
	return nil
}

// listAssets lists a session's assets; listing renews their leases.
func (s *Server) listAssets(w http.ResponseWriter, r *http.Request) error {
	m, err := s.sessions()
	if err != nil {
		return err
	}
	key, err := lookupKey(r, "assets")
	if err != nil {
		return err
	}
	as, err := m.Assets(r.Context(), key.Tenant, key.Name)
	if err != nil {
		return sessionErr(err)
	}
	writeJSON(w, http.StatusOK, as)
	return nil
}

// addAsset marks a file of a session's directory as an asset.
func (s *Server) addAsset(w http.ResponseWriter, r *http.Request) error {
	m, err := s.sessions()
	if err != nil {
		return err
	}
	key, err := lookupKey(r, "add asset")
	if err != nil {
		return err
	}
	var req wire.AddAssetRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("add asset: %w", err)
	}
	v, err := m.AddAsset(r.Context(), key.Tenant, key.Name, req.Path)
	if err != nil {
		return sessionErr(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request) error {
	m, t, err := s.task(r)
	if err != nil {
		return err
	}
	t, err = m.Cancel(r.Context(), t.ID)
	if err != nil {
		return sessionErr(err)
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
