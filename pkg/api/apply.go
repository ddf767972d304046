package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/wire"
)

// DefaultMaxApplyBytes bounds the body of POST /v1/apply: an apply carries
// up to a batch of specs (eventstore.DefaultMaxBatch), so it gets more room
// than [Options.MaxBodyBytes], which is sized for one spec.
const DefaultMaxApplyBytes = 16 << 20

// applyRoutes registers POST /v1/apply.
//
//	POST   /v1/apply                             body: wire.ApplyRequest; 200 wire.ApplyResult
//
// A bad entry answers 400 invalid with "field" set to its path, such as
// "services[3].command"; so do a key given twice in one object (JSON would
// keep the last, and read the body in part) and a prune with no services
// ("field" "services"). Nothing is written.
func (s *Server) applyRoutes() {
	s.handle("POST /v1/apply", authed, s.apply)
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	limit := max(s.opts.MaxBodyBytes, DefaultMaxApplyBytes)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("apply: body is over %d bytes: %w", limit, err)
		}
		return fmt.Errorf("apply: read body: %w", err)
	}
	// encoding/json keeps the last of repeated keys: a body that gives
	// services twice would be read in part, and a prune would kill the
	// services of the part it dropped. Refuse it whole.
	if dup := repeatedKey(body); dup != nil {
		writeJSON(w, http.StatusBadRequest, wire.ErrorBody{Error: "apply: body: " + dup.Error(), Code: wire.CodeInvalid, Field: dup.Field})
		return nil
	}
	var req wire.ApplyRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
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
	wait, err := waitParam(r)
	if err != nil {
		return err
	}
	res, err := s.rt.Apply(r.Context(), req)
	if err != nil {
		var ee *solo.ApplyEntryError
		if errors.As(err, &ee) {
			// Every bad entry is the caller's: 400 (403 for one its
			// tenant's policy refuses), with the entry's path as the field
			// rather than the bare spec field.
			status, code := classify(err)
			if status != http.StatusForbidden {
				status, code = http.StatusBadRequest, wire.CodeInvalid
			}
			writeJSON(w, status, wire.ErrorBody{Error: err.Error(), Code: code, Field: ee.Field()})
			return nil
		}
		if errors.Is(err, solo.ErrApplyTooLarge) || errors.Is(err, solo.ErrApplyEmpty) {
			writeJSON(w, http.StatusBadRequest, wire.ErrorBody{Error: err.Error(), Code: wire.CodeInvalid, Field: "services"})
			return nil
		}
		return err
	}
	s.waitApplied(r.Context(), &res, wait)
	writeJSON(w, http.StatusOK, res)
	return nil
}

// waitApplied waits, within one wait for all, for the first attempt of
// each service the apply created or updated to start (see
// [Server.waitStarted]).
func (s *Server) waitApplied(ctx context.Context, res *wire.ApplyResult, wait time.Duration) {
	if wait <= 0 || res.DryRun {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for i := range res.Items {
		it := &res.Items[i]
		if it.Pos == 0 || (it.Action != wire.ApplyCreate && it.Action != wire.ApplyUpdate) {
			continue
		}
		v, err := s.rt.WaitStarted(ctx, it.Tenant, it.Name, it.Pos)
		switch {
		case err == nil && len(v.WaitingFor) > 0:
			// Its start waits for its dependencies: not started.
		case err == nil:
			it.Started = true
		case errors.Is(err, solo.ErrStartFailed):
			it.StartError = err.Error()
		}
	}
}

// dupKeyError is a key that an object of an apply body gives twice.
type dupKeyError struct {
	Field      string // the key's path, such as "services[2].name"
	Key, First string // the repeat and the key it repeats, as written
}

func (e *dupKeyError) Error() string {
	if e.Key != e.First {
		return fmt.Sprintf("%s: key %q repeats %q (field names match without regard to case); give each field once", e.Field, e.Key, e.First)
	}
	return fmt.Sprintf("%s: key %q is given twice; give each once", e.Field, e.Key)
}

// repeatedKey returns the first key that an object of an apply body
// repeats, or nil. The request and each service are structs, whose fields
// encoding/json matches without regard to case, so "Services" repeats
// "services"; env is a map, whose keys are exact (PATH and path are two
// variables); config is the service's own and is not looked into. A body
// that is not valid JSON returns nil: the decoder says what is wrong with
// it.
func repeatedKey(body []byte) *dupKeyError {
	c := keyCheck{dec: json.NewDecoder(bytes.NewReader(body))}
	c.dec.UseNumber()
	err := c.object("", true, func(_, key string) error {
		if foldKey(key) != "services" {
			return c.skipValue()
		}
		return c.array("services", func(path string) error {
			return c.object(path, true, func(path, key string) error {
				if foldKey(key) == "env" {
					return c.object(path+".env", false, func(string, string) error { return c.skipValue() })
				}
				return c.skipValue()
			})
		})
	})
	var dup *dupKeyError
	if errors.As(err, &dup) {
		return dup
	}
	return nil
}

// foldKey is how encoding/json compares a key with a field's name.
func foldKey(k string) string { return strings.ToLower(strings.ToUpper(k)) }

// errNotJSON stops a [keyCheck] on a body that is not JSON.
var errNotJSON = errors.New("not JSON")

// keyCheck walks a JSON value token by token.
type keyCheck struct{ dec *json.Decoder }

// object reads an object at path and calls field for each key, with the
// decoder at the key's value, which field must read. A value that is not
// an object is skipped.
func (c *keyCheck) object(path string, fold bool, field func(path, key string) error) error {
	tok, err := c.dec.Token()
	if err != nil {
		return errNotJSON
	}
	if tok != json.Delim('{') {
		return c.skip(tok)
	}
	seen := map[string]string{}
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return errNotJSON
		}
		key, _ := tok.(string)
		id := key
		if fold {
			id = foldKey(key)
		}
		if first, dup := seen[id]; dup {
			at := first
			if path != "" {
				at = path + "." + first
			}
			return &dupKeyError{Field: at, Key: key, First: first}
		}
		seen[id] = key
		if err := field(path, key); err != nil {
			return err
		}
	}
	if _, err := c.dec.Token(); err != nil {
		return errNotJSON
	}
	return nil
}

// array reads an array at path and calls elem for each element, which
// elem must read. A value that is not an array is skipped.
func (c *keyCheck) array(path string, elem func(path string) error) error {
	tok, err := c.dec.Token()
	if err != nil {
		return errNotJSON
	}
	if tok != json.Delim('[') {
		return c.skip(tok)
	}
	for i := 0; c.dec.More(); i++ {
		if err := elem(fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	if _, err := c.dec.Token(); err != nil {
		return errNotJSON
	}
	return nil
}

// skipValue reads one value, whatever it is.
func (c *keyCheck) skipValue() error {
	tok, err := c.dec.Token()
	if err != nil {
		return errNotJSON
	}
	return c.skip(tok)
}

// skip reads the rest of the value that tok starts, without recursion.
func (c *keyCheck) skip(tok json.Token) error {
	if tok != json.Delim('{') && tok != json.Delim('[') {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := c.dec.Token()
		if err != nil {
			return errNotJSON
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}
