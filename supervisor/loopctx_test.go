package supervisor

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoopContext_Cancel checks the context a Tree gives each loop against
// what context.WithCancel would give: Done, Err, AfterFunc (registered
// before and after the end, and stopped), and contexts derived from it.
func TestLoopContext_Cancel(t *testing.T) {
	c := &loopContext{}
	require.NoError(t, c.Err())
	early := c.Done()
	select {
	case <-early:
		t.Fatal("Done closed before cancel")
	default:
	}

	ran := make(chan string, 4)
	context.AfterFunc(c, func() { ran <- "registered" })
	stop := context.AfterFunc(c, func() { ran <- "stopped" })
	assert.True(t, stop(), "stop before the end unregisters")
	assert.False(t, stop(), "a second stop finds nothing")
	derived, cancelDerived := context.WithCancel(c)
	defer cancelDerived()
	derivedCause, cancelCause := context.WithCancelCause(c)
	defer cancelCause(nil)

	c.cancel()
	c.cancel() // idempotent
	<-early
	<-c.Done()
	assert.ErrorIs(t, c.Err(), context.Canceled)
	assert.Equal(t, "registered", <-ran)
	<-derived.Done()
	assert.ErrorIs(t, derived.Err(), context.Canceled)
	<-derivedCause.Done()
	assert.True(t, errors.Is(context.Cause(derivedCause), context.Canceled))

	late := context.AfterFunc(c, func() { ran <- "late" })
	assert.Equal(t, "late", <-ran, "registered after the end: runs at once")
	assert.False(t, late())
	select {
	case s := <-ran:
		t.Fatalf("%s ran", s)
	default:
	}
}

// TestLoopContext_DoneAfterCancel checks that a Done asked for only after
// the end is closed.
func TestLoopContext_DoneAfterCancel(t *testing.T) {
	c := &loopContext{}
	c.cancel()
	<-c.Done()
	assert.ErrorIs(t, c.Err(), context.Canceled)
}
