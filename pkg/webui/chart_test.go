package webui

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/solo-rt/solo/eventstore/event"
	"github.com/solo-rt/solo/pkg/state"
)

func TestDrawChart(t *testing.T) {
	to := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	from := to.Add(-ChartSpan)
	at := func(d time.Duration, typ state.EventType) event.Envelope {
		return event.Envelope{Time: from.Add(d), Type: string(typ)}
	}
	cases := []struct {
		name    string
		evs     []event.Envelope
		classes []string
		widths  []float64
		exits   int
		starts  int
	}{
		{name: "nothing", evs: nil},
		{
			name:    "running since before the hour",
			evs:     []event.Envelope{at(-2*time.Hour, state.TypeServiceDeployed), at(-2*time.Hour, state.TypeServiceStarted)},
			classes: []string{"up"}, widths: []float64{chartWidth},
		},
		{
			name: "a crash at half time, back at three quarters",
			evs: []event.Envelope{
				at(-time.Minute, state.TypeServiceStarted),
				at(30*time.Minute, state.TypeServiceExited),
				at(30*time.Minute, state.TypeServiceSignalled), // draws nothing
				at(45*time.Minute, state.TypeServiceStarted),
			},
			classes: []string{"up", "down", "up"}, widths: []float64{chartWidth / 2, chartWidth / 4, chartWidth / 4},
			exits: 1, starts: 1,
		},
		{
			name: "stopped, then removed",
			evs: []event.Envelope{
				at(0, state.TypeServiceStarted),
				at(15*time.Minute, state.TypeServiceKilled),
				at(30*time.Minute, state.TypeServiceRemoved),
			},
			classes: []string{"up", "killed"}, widths: []float64{chartWidth / 4, chartWidth / 4},
			starts: 1,
		},
		{
			name:    "failed",
			evs:     []event.Envelope{at(0, state.TypeServiceFailed)},
			classes: []string{"failed"}, widths: []float64{chartWidth},
		},
		{
			name:    "an event after the window is left out",
			evs:     []event.Envelope{at(0, state.TypeServiceStarted), at(2*time.Hour, state.TypeServiceExited)},
			classes: []string{"up"}, widths: []float64{chartWidth},
			starts: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := drawChart(c.evs, from, to)
			var classes []string
			var widths []float64
			for _, b := range ch.Bands {
				classes = append(classes, b.Class)
				widths = append(widths, b.W)
			}
			assert.Equal(t, c.classes, classes)
			assert.InDeltaSlice(t, c.widths, widths, 0.01)
			assert.Len(t, ch.Exits, c.exits)
			assert.Equal(t, c.starts, ch.Starts)
		})
	}
}
