package webui

import (
	"fmt"
	"time"

	"github.com/solo-rt/solo/eventstore/event"
	"github.com/solo-rt/solo/pkg/state"
)

// ChartSpan is how far back a service's chart looks.
const ChartSpan = time.Hour

// Chart geometry, in SVG user units.
const (
	chartWidth  = 720
	chartHeight = 48
)

// chart is a service's last hour as an SVG draws it: bands of what its
// events say it was doing, and a tick at each exit.
type chart struct {
	Width, Height int
	Bands         []band
	Exits         []tick
	Starts        int
	From, To      time.Time
}

type band struct {
	X, W  float64
	Class string // a CSS class: up, down, failed, killed, starting
	Title string
}

type tick struct {
	X     float64
	Title string
}

// bandOf is how the chart colours the time after an event of type t; ok
// is false for an event that changes nothing it draws (a signal).
func bandOf(t state.EventType) (class string, ok bool) {
	switch t {
	case state.TypeServiceStarted, state.TypeServiceRecovered:
		return "up", true
	case state.TypeServiceExited:
		return "down", true
	case state.TypeServiceFailed, state.TypeServiceRecoveryFailed:
		return "failed", true
	case state.TypeServiceKilled:
		return "killed", true
	case state.TypeServiceDeployed, state.TypeServiceStartRequested, state.TypeServiceRestartRequested:
		return "starting", true
	case state.TypeServiceRemoved:
		return "", true
	}
	return "", false
}

// drawChart draws evs (one service's events, oldest first) between from
// and to. What the service was doing at from is what its last event
// before from said.
func drawChart(evs []event.Envelope, from, to time.Time) chart {
	c := chart{Width: chartWidth, Height: chartHeight, From: from, To: to}
	span := to.Sub(from)
	if span <= 0 {
		return c
	}
	x := func(t time.Time) float64 {
		if t.Before(from) {
			t = from
		}
		if t.After(to) {
			t = to
		}
		return float64(chartWidth) * float64(t.Sub(from)) / float64(span)
	}
	cur, curAt := "", from
	flush := func(until time.Time) {
		if cur != "" && until.After(from) {
			x0, x1 := x(curAt), x(until)
			if x1 > x0 {
				c.Bands = append(c.Bands, band{X: x0, W: x1 - x0, Class: cur,
					Title: fmt.Sprintf("%s from %s", cur, curAt.UTC().Format(time.TimeOnly))})
			}
		}
	}
	for _, env := range evs {
		t := state.EventType(env.Type)
		class, ok := bandOf(t)
		if !ok || env.Time.After(to) {
			continue
		}
		if !env.Time.Before(from) {
			switch t {
			case state.TypeServiceExited:
				c.Exits = append(c.Exits, tick{X: x(env.Time), Title: "exited at " + env.Time.UTC().Format(time.TimeOnly)})
			case state.TypeServiceStarted:
				c.Starts++
			}
		}
		flush(env.Time)
		cur, curAt = class, env.Time
		if curAt.Before(from) {
			curAt = from
		}
	}
	flush(to)
	return c
}
