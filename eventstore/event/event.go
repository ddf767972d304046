package event

import (
	"encoding/json"
	"time"

	"github.com/oklog/ulid/v2"
)

// Event is what a caller appends. The store fills in the position and, where
// they are zero, the id and the time.
type Event struct {
	// ID makes the append idempotent: appending an id that is already stored
	// writes nothing and returns the stored event's position. Zero means
	// "new": the store assigns a fresh monotonic ULID.
	ID ulid.ULID
	// Time defaults to the store's clock, in UTC.
	Time time.Time
	// Type names the kind of event, for example "service_deployed".
	Type string
	// Tenant and Subject name the stream the event belongs to, for example
	// ("default", "web"). Both may be empty for system events.
	Tenant  string
	Subject string
	// Causation is the id of the event or request that caused this one.
	Causation string
	// Actor is who asked: a token id, or "local".
	Actor string
	// Data is the payload, JSON. The store never parses it.
	Data json.RawMessage
	// Expect, when set, makes the append conditional on the stream's version
	// (see [ExpectVersion]). Zero means no condition.
	Expect Expectation
}

// Envelope is a stored event, as read back. Its JSON form is what the API
// streams (one envelope per NDJSON line).
type Envelope struct {
	Pos       uint64          `json:"pos"`
	ID        ulid.ULID       `json:"id"`
	Time      time.Time       `json:"time"`
	Type      string          `json:"type"`
	Tenant    string          `json:"tenant"`
	Subject   string          `json:"subject"`
	Causation string          `json:"causation,omitempty"`
	Actor     string          `json:"actor,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// Expectation is an optional condition on a stream's version: the number of
// events the (tenant, subject) stream holds before the event is appended.
// The zero value expects nothing.
type Expectation struct {
	set     bool
	version uint64
}

// ExpectVersion makes an append succeed only if the stream holds exactly n
// events first. ExpectVersion(0) means "the stream must be new".
func ExpectVersion(n uint64) Expectation { return Expectation{set: true, version: n} }

// IsSet reports whether e carries a condition.
func (e Expectation) IsSet() bool { return e.set }

// Version returns the expected version; it is meaningful only if IsSet.
func (e Expectation) Version() uint64 { return e.version }
