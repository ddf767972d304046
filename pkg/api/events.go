package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// MaxEventsLimit bounds the limit query parameter of the events route.
const MaxEventsLimit = 1 << 30

// events streams envelopes from position from: up to the head as of the
// request, or, with follow, live until the client goes away. Each envelope
// is one NDJSON line, or one SSE event if the client accepts
// text/event-stream.
//
// Nothing here holds a lock while it writes: Read hands out pages read in
// their own short transactions, and a subscription that the client drains
// slowly falls back to the store instead of slowing appends (I8).
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var from uint64
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badParam("from", "%q is not a position", v)
		}
		from = n
	}
	follow, err := boolParam(q.Get("follow"), "follow")
	if err != nil {
		return err
	}
	limit, err := intParam(q.Get("limit"), "limit", 0, MaxEventsLimit)
	if err != nil {
		return err
	}
	p, _ := PrincipalFrom(r.Context())
	filter, err := eventsFilterOf(q, p)
	if err != nil {
		return err
	}
	enc := &eventEncoder{sse: acceptsSSE(r.Header.Get("Accept"))}
	sent := 0
	send := func(env eventstore.Envelope) (more bool, err error) {
		if !p.sees(env.Tenant) || !filter.match(env) {
			return true, nil // a confined principal sees only its tenant's events
		}
		if _, err := w.Write(enc.encode(env)); err != nil {
			return false, err
		}
		sent++
		return limit == 0 || sent < limit, nil
	}
	begin := func() {
		h := w.Header()
		h.Set("Content-Type", enc.contentType())
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
	}

	if !follow {
		head := s.rt.Store().Head()
		began := false
		read := s.rt.Store().Read(from, 0)
		if filter.service != "" {
			// One service's events, through the stream index: the cost
			// grows with the service's history, not the log's.
			read = s.rt.Store().ReadSubject(filter.tenant, filter.service, from)
		}
		for env, err := range read {
			if err != nil {
				if !began {
					return fmt.Errorf("read events: %w", err)
				}
				s.log.Error("reading events failed mid-reply", "error", err)
				return nil
			}
			if env.Pos > head {
				break
			}
			if !began {
				begin()
				began = true
			}
			if more, err := send(env); err != nil || !more {
				return nil
			}
		}
		if !began {
			begin()
		}
		return nil
	}

	ctx, cancel := s.streamContext(r)
	defer cancel()
	begin()
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return nil
	}
	sub := s.rt.Events(ctx, from)
	for env := range sub.C() {
		more, err := send(env)
		if err != nil {
			break
		}
		if err := rc.Flush(); err != nil || !more {
			break
		}
	}
	cancel()
	for range sub.C() {
		// Drain until the subscription sees the cancel and closes.
	}
	return nil
}

// eventsFilter is the events route's ?tenant= and ?service=: a service's
// events (its tenant and subject), or a tenant's, or, both empty, all.
type eventsFilter struct {
	tenant, service string
}

// eventsFilterOf reads the filter of an events request. A service with no
// tenant is the principal's own tenant's, or the default tenant's for an
// admin. Bad names are refused, naming the parameter.
func eventsFilterOf(q url.Values, p Principal) (eventsFilter, error) {
	f := eventsFilter{tenant: q.Get("tenant"), service: q.Get("service")}
	if f.tenant != "" {
		if err := state.ValidName(f.tenant); err != nil {
			return f, &fieldError{Field: "tenant", Err: fmt.Errorf("events: tenant: %w", err)}
		}
	}
	if f.service != "" {
		if err := state.ValidName(f.service); err != nil {
			return f, &fieldError{Field: "service", Err: fmt.Errorf("events: service: %w", err)}
		}
		if f.tenant == "" {
			f.tenant = cmp.Or(p.Tenant, state.DefaultTenant)
		}
	}
	return f, nil
}

// match reports whether env passes the filter.
func (f eventsFilter) match(env eventstore.Envelope) bool {
	return (f.tenant == "" || env.Tenant == f.tenant) && (f.service == "" || env.Subject == f.service)
}

// eventEncoder frames envelopes as NDJSON lines or SSE events.
type eventEncoder struct {
	sse bool
	buf []byte
}

func (e *eventEncoder) contentType() string {
	if e.sse {
		return wire.ContentTypeSSE
	}
	return wire.ContentTypeNDJSON
}

// encode returns the frame of env, valid until the next call.
func (e *eventEncoder) encode(env eventstore.Envelope) []byte {
	data, err := json.Marshal(env)
	if err != nil {
		// An Envelope always encodes unless its Data is not JSON, which
		// the store refuses at append; send it without the payload.
		env.Data = nil
		data, _ = json.Marshal(env)
	}
	e.buf = e.buf[:0]
	if !e.sse {
		e.buf = append(e.buf, data...)
		return append(e.buf, '\n')
	}
	// json.Marshal never writes a newline, so data is one SSE data line;
	// the type is checked by the store and holds none either.
	e.buf = append(e.buf, "id: "...)
	e.buf = strconv.AppendUint(e.buf, env.Pos, 10)
	e.buf = append(e.buf, "\nevent: "...)
	e.buf = append(e.buf, strings.ReplaceAll(env.Type, "\n", " ")...)
	e.buf = append(e.buf, "\ndata: "...)
	e.buf = append(e.buf, data...)
	return append(e.buf, "\n\n"...)
}

// acceptsSSE reports whether an Accept header asks for text/event-stream.
func acceptsSSE(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == wire.ContentTypeSSE {
			return true
		}
	}
	return false
}
