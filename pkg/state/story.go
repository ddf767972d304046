package state

import (
	"fmt"
	"time"

	"github.com/solo-rt/solo/eventstore/event"
)

// StoryLine is one sentence of a service's story (see [Story]).
type StoryLine struct {
	// Pos, Time and Type are those of the event the sentence tells.
	Pos  uint64    `json:"pos"`
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	Text string    `json:"text"`
}

// Story tells what happened to one service in plain sentences, oldest
// first: one per event of the service's stream, and one per daemon start
// or shutdown (system events, whose tenant and subject are empty) after
// the service's first event, since they explain what follows ("re-adopted
// after the daemon restarted"). envs are that stream and the system
// events, in increasing position; events of other streams are passed over,
// as are event types this version has no sentence for.
//
// now is only used for the last exit's pending restart: "next attempt in
// 4s" if it is still to come. Times are told as UTC times of day, with the
// date when it is not now's.
//
// Story is pure: the same events and now give the same sentences. It is
// the one home of these sentences: `solo why`, the API and a web view read
// them here.
func Story(envs []event.Envelope, now time.Time) []StoryLine {
	t := teller{now: now.UTC()}
	for _, env := range envs {
		t.tell(env)
	}
	t.finish()
	return t.lines
}

// teller is the state Story carries from one event to the next.
type teller struct {
	now   time.Time
	lines []StoryLine

	key     Key  // the service's, from its first event
	started bool // an event of the service was told
	spec    Spec // of the latest deploy
	gen     uint64
	running bool // an instance was told started and not yet exited

	// stopping says why the next exit comes: "kill", "restart", "deploy",
	// "shutdown" or "dependency"; empty when an exit is the instance's own
	// doing.
	stopping string
	// requested: a start or restart was asked for and has not come yet;
	// booted: the daemon started since the last start.
	requested, booted bool
	// lastExit is the index in lines of the last exit that said a
	// restart follows, -1 when none is pending; pendingAt is when.
	lastExit  int
	pendingAt time.Time
	// lastExitShort is the last exit, in two words ("exit 1"), for the
	// start that follows it.
	lastExitShort string
	lastRestart   int
	// shutDownClean: the daemon's last shutdown completed; bootClean:
	// the last daemon start came after one.
	shutDownClean, bootClean bool
}

func (t *teller) add(env event.Envelope, format string, args ...any) {
	t.lines = append(t.lines, StoryLine{Pos: env.Pos, Time: env.Time.UTC(), Type: EventType(env.Type), Text: fmt.Sprintf(format, args...)})
}

// at is a time as the story tells it.
func (t *teller) at(ts time.Time) string {
	ts = ts.UTC()
	if y, m, d := ts.Date(); y == t.now.Year() && m == t.now.Month() && d == t.now.Day() {
		return ts.Format("15:04:05")
	}
	return ts.Format("2006-01-02 15:04:05")
}

// by names who asked: a token, or a local caller.
func by(actor string) string {
	if actor == "" || actor == "local" {
		return "a local caller"
	}
	return "token " + actor
}

// span is a duration as the story tells it.
func span(d Duration) string {
	switch s := d.Std(); {
	case s >= time.Minute:
		return s.Round(time.Second).String()
	case s >= time.Second:
		return s.Round(100 * time.Millisecond).String()
	default:
		return s.Round(time.Millisecond).String()
	}
}

func (t *teller) tell(env event.Envelope) {
	system := env.Tenant == "" && env.Subject == ""
	if !system {
		k := Key{env.Tenant, env.Subject}
		if !t.started {
			t.key, t.started, t.lastExit = k, true, -1
		} else if k != t.key {
			return
		}
	} else if !t.started {
		return
	}
	p, err := Decode(env)
	if err != nil {
		return
	}
	when := t.at(env.Time)
	switch p := p.(type) {
	case Deployed:
		t.clearPending()
		if t.running {
			t.stopping = "deploy"
		}
		t.spec, t.gen = p.Spec, p.Generation
		what := QuoteCommand(p.Spec.Command)
		if p.Spec.Kind != "" {
			what = "kind " + p.Spec.Kind
		}
		t.add(env, "deployed at %s by %s as generation %d: %s", when, by(env.Actor), p.Generation, what)

	case Started:
		t.clearPending()
		t.running, t.stopping = true, ""
		pid := "in-process"
		if p.PID != 0 {
			pid = fmt.Sprintf("pid %d", p.PID)
		}
		requested, booted := t.requested, t.booted
		t.requested, t.booted = false, false
		switch {
		case requested:
			t.add(env, "started at %s as %s (generation %d, attempt %d), as requested", when, pid, p.Generation, p.Attempt)
		case p.Attempt <= 1:
			t.add(env, "started at %s as %s (generation %d)", when, pid, p.Generation)
		case t.lastExitShort != "" && t.lastRestart > 0:
			t.add(env, "restarted at %s after %s (restart %d of %d within %s; attempt %d), %s",
				when, t.lastExitShort, t.lastRestart, t.spec.RestartLimit(), t.spec.RestartWindow, p.Attempt, pid)
		case booted:
			t.add(env, "started at %s as %s (generation %d, attempt %d) after the daemon restarted", when, pid, p.Generation, p.Attempt)
		default:
			t.add(env, "restarted at %s as %s (generation %d, attempt %d)", when, pid, p.Generation, p.Attempt)
		}
		t.lastExitShort, t.lastRestart = "", 0

	case Ready:
		t.add(env, "ready after %s at %s (pid %d)", span(p.After), when, p.PID)

	case Health:
		if p.Healthy {
			t.add(env, "healthy at %s (pid %d): its health check passed", when, p.PID)
		} else {
			t.add(env, "unhealthy at %s (pid %d): %s; stopping it to restart", when, p.PID, p.Reason)
		}

	case Exited:
		t.exited(env, p, when)

	case Failed:
		t.clearPending()
		t.add(env, "gave up at %s after %d restarts in %s: the restart limit is reached; `solo deploy` again or `solo recover` brings it back",
			when, p.Restarts, p.Window)

	case Killed:
		t.clearPending()
		if t.running {
			t.stopping = "kill"
		}
		t.add(env, "stopped by %s at %s%s", by(env.Actor), when, reasonPart(p.Reason))

	case StartRequested:
		t.clearPending()
		t.requested = true
		t.add(env, "start requested by %s at %s%s", by(env.Actor), when, reasonPart(p.Reason))

	case RestartRequested:
		t.clearPending()
		t.requested = true
		if t.running {
			t.stopping = "restart"
		}
		t.add(env, "restart requested by %s at %s%s", by(env.Actor), when, reasonPart(p.Reason))

	case Waiting:
		if p.Reason != "" {
			if t.running {
				t.stopping = "dependency"
			}
			t.add(env, "stopped at %s: %s; waiting for %s", when, p.Reason, DescribeBlockers(p.For))
		} else {
			t.add(env, "waiting at %s for %s before it starts", when, DescribeBlockers(p.For))
		}

	case Placed:
		if len(p.Waiting) > 0 { // other placements are the cluster's business, not the service's story
			t.add(env, "%s at %s: none of them is alive and undrained", WaitingForNodes(p.Waiting), when)
		}

	case Signalled:
		t.add(env, "sent %s to pid %d at %s, asked by %s", p.Signal, p.PID, when, by(env.Actor))

	case Removed:
		t.clearPending()
		t.add(env, "removed by %s at %s%s: the name is free", by(env.Actor), when, reasonPart(p.Reason))

	case Recovered:
		t.clearPending()
		after := "after the daemon restarted"
		if !t.bootClean {
			after = "after the daemon restarted without a clean shutdown"
		}
		switch p.How {
		case RecoveryReadopted:
			t.running = true
			t.add(env, "re-adopted pid %d at %s %s: it had kept running", p.PID, when, after)
		default:
			t.add(env, "recovered at %s %s: started again (generation %d)", when, after, p.Generation)
		}

	case RecoveryFailed:
		t.add(env, "could not be recovered at %s: %s", when, p.Reason)

	case DriftFound:
		t.add(env, "drift found at %s: %s%s%s", when, p.Kind, pidPart(p.PID), detailPart(p.Detail))

	case DriftFixed:
		t.add(env, "drift fixed at %s: %s%s", when, p.Action, pidPart(p.PID))

	case SystemStarted:
		// A start after a complete shutdown is clean; any other follows
		// a crash, and the recoveries after it say so.
		t.bootClean, t.shutDownClean = t.shutDownClean, false
		t.booted = true
		t.add(env, "the daemon started at %s (pid %d)", when, p.PID)

	case ShutdownStarted:
		t.clearPending()
		t.shutDownClean = false
		if t.running {
			t.stopping = "shutdown"
		}
		t.add(env, "the daemon began to shut down at %s (%s)", when, p.Reason)

	case ShutdownComplete:
		t.shutDownClean = true
		t.add(env, "the daemon shut down at %s", when)
	}
}

// reasonPart is a request's reason in brackets, unless it says no more
// than that it was requested.
func reasonPart(r string) string {
	if r == "" || r == "requested" {
		return ""
	}
	return " (" + r + ")"
}

func pidPart(pid int) string {
	if pid == 0 {
		return ""
	}
	return fmt.Sprintf(" pid %d", pid)
}

func detailPart(d string) string {
	if d == "" {
		return ""
	}
	return " (" + d + ")"
}

// exited tells one service_exited.
func (t *teller) exited(env event.Envelope, p Exited, when string) {
	t.running = false
	e := ExitRecord{PID: p.PID, ExitCode: p.ExitCode, Signal: p.Signal, Unknown: p.Unknown, Error: p.Error, Reason: p.Reason}
	t.lastExitShort, t.lastRestart = shortExit(e), p.Restart
	stopping := t.stopping
	t.stopping = ""
	ran := ""
	if p.PID != 0 || p.RanFor > 0 {
		ran = " after running " + span(p.RanFor)
	}
	var text string
	switch {
	case p.PID == 0 && p.Error != "":
		text = fmt.Sprintf("could not start at %s: %s", when, p.Error)
	case stopping == "kill":
		text = fmt.Sprintf("ended at %s as asked (%s)%s", when, e.Describe(), ran)
	case stopping == "dependency":
		text = fmt.Sprintf("ended at %s for a service it requires (%s)%s; it starts again once that one is ready", when, e.Describe(), ran)
	case stopping == "restart":
		text = fmt.Sprintf("ended at %s for the restart (%s)%s", when, e.Describe(), ran)
	case stopping == "deploy":
		text = fmt.Sprintf("replaced at %s by generation %d (the old instance %s)%s", when, t.gen, e.Describe(), ran)
	case stopping == "shutdown":
		text = fmt.Sprintf("stopped at %s by the daemon's shutdown (%s)%s; it comes back when the daemon starts", when, e.Describe(), ran)
	default:
		text = fmt.Sprintf("%s at %s%s", e.Describe(), when, ran)
	}
	if p.Restart > 0 {
		text += fmt.Sprintf("; restart %d of %d within %s follows in %s", p.Restart, t.spec.RestartLimit(), t.spec.RestartWindow, span(p.Backoff))
	} else if stopping == "" && p.Generation == t.gen && !t.spec.Restart.ShouldRestart(p.ExitCode, p.Signal, p.Unknown) {
		text += fmt.Sprintf("; not restarted (restart policy %s)", t.spec.Restart)
	}
	t.lines = append(t.lines, StoryLine{Pos: env.Pos, Time: env.Time.UTC(), Type: TypeServiceExited, Text: text})
	t.clearPending()
	if p.Restart > 0 {
		t.lastExit = len(t.lines) - 1
		t.pendingAt = env.Time.Add(p.Backoff.Std())
	}
}

// clearPending forgets the pending restart: something happened after it.
func (t *teller) clearPending() { t.lastExit, t.pendingAt = -1, time.Time{} }

// finish says when the pending restart comes, if one is pending.
func (t *teller) finish() {
	if t.lastExit < 0 || t.lastExit >= len(t.lines) {
		return
	}
	l := &t.lines[t.lastExit]
	if in := t.pendingAt.Sub(t.now); in > 0 {
		l.Text += fmt.Sprintf("; next attempt in %s", span(Duration(in)))
	} else {
		l.Text += fmt.Sprintf("; that attempt was due at %s and has not been recorded", t.at(t.pendingAt))
	}
}

// shortExit is an exit in two words, for the start that follows it.
func shortExit(e ExitRecord) string {
	switch {
	case e.PID == 0 && e.Error != "":
		return "a failed start"
	case e.Unknown:
		return "an exit of unknown status"
	case e.Reason == ExitOOM:
		return "an OOM kill"
	case e.Signal != "":
		return e.Signal
	}
	return fmt.Sprintf("exit %d", e.ExitCode)
}
