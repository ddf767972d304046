package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/solo-rt/solo/pkg/solo"
)

// DefaultMaxApplyBytes bounds the body of POST /v1/apply: an apply carries
// up to a batch of specs (eventstore.DefaultMaxBatch), so it gets more room
// than [Options.MaxBodyBytes], which is sized for one spec.
const DefaultMaxApplyBytes = 16 << 20

// applyRoutes registers POST /v1/apply.
//
//	POST   /v1/apply                             body: solo.ApplyRequest; 200 solo.ApplyResult
//
// A bad entry answers 400 invalid with "field" set to its path, such as
// "services[3].command"; nothing is written.
func (s *Server) applyRoutes() {
	s.handle("POST /v1/apply", authed, s.apply)
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	var req solo.ApplyRequest
	limit := max(s.opts.MaxBodyBytes, DefaultMaxApplyBytes)
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return fmt.Errorf("apply: body is over %d bytes: %w", limit, err)
		case errors.Is(err, io.EOF):
			return badRequest("apply: body is empty")
		}
		return fmt.Errorf("apply: %w: body: %w", errBadRequest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("apply: body: unexpected data after the JSON object")
	}
	// A confined principal applies into its own tenant only: an entry
	// without a tenant is its, another tenant is refused, and so prune
	// can only reach its own services.
	if p, _ := PrincipalFrom(r.Context()); !p.admin() {
		for i := range req.Services {
			switch req.Services[i].Tenant {
			case "":
				req.Services[i].Tenant = p.Tenant
			case p.Tenant:
			default:
				return fmt.Errorf("apply: services[%d].tenant %q: %w: this principal may only deploy into tenant %q", i, req.Services[i].Tenant, errDenied, p.Tenant)
			}
		}
	}
	res, err := s.rt.Apply(r.Context(), req)
	if err != nil {
		var ee *solo.ApplyEntryError
		if errors.As(err, &ee) {
			// Every bad entry is the caller's: 400, with the entry's path
			// as the field rather than the bare spec field.
			writeJSON(w, http.StatusBadRequest, ErrorBody{Error: err.Error(), Code: CodeInvalid, Field: ee.Field()})
			return nil
		}
		if errors.Is(err, solo.ErrApplyTooLarge) {
			writeJSON(w, http.StatusBadRequest, ErrorBody{Error: err.Error(), Code: CodeInvalid, Field: "services"})
			return nil
		}
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
