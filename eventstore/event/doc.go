// Package event holds the plain data of Solo's event log: an [Event] as a
// caller appends it, an [Envelope] as it is read back (and as the API sends
// it, in its JSON form), and an [Expectation] on a stream's version.
//
// It exists so that the domain (package state, which folds envelopes) and
// the Go client (which streams them) can use these types without linking
// the store. Package eventstore re-exports each of them under the same name
// (eventstore.Event is event.Event), and every rule about them (size limits,
// validation, positions, ids) is the store's.
//
// It must never import the store, bbolt or anything of Solo's: it is a leaf
// of plain types, with no behaviour beyond their accessors. The binary form
// in which the store keeps an envelope is the store's business, not this
// package's.
package event
