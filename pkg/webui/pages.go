package webui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/solo-rt/solo/eventstore/event"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// page is what every template receives.
type page struct {
	Title  string
	Error  string
	CSRF   string
	Head   uint64
	Cookie bool // logged in with the form: show "log out"
	Now    time.Time

	Services []state.ServiceView
	Status   state.ServiceStatus
	Story    []state.StoryLine
	Chart    chart
	// Can holds the verbs (restart, stop, start) the caller may run on
	// the service shown.
	Can      map[string]bool
	ReadOnly bool
	Filter   url.Values
}

// base fills what every page has.
func (u *UI) base(r *http.Request, title string) page {
	_, err := r.Cookie(CookieName)
	return page{Title: title, CSRF: u.csrfToken(r), Head: u.opts.Head(), Cookie: err == nil, Now: u.now()}
}

// render writes a template as the reply.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, p); err != nil {
		u.log.Error("render page", "page", name, "error", err)
		http.Error(w, "the page could not be rendered; see the daemon's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage shows an error with the layout.
func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := u.base(r, "Error")
	p.Error = msg
	u.render(w, r, status, "error.html", p)
}

// failed answers a page whose API call failed: a caller without a valid
// credential goes to the login form; anything else is shown with the
// API's own words (which never hold a credential).
func (u *UI) failed(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusUnauthorized {
			u.render(w, r, http.StatusUnauthorized, "login.html", page{Title: "Log in", Error: ae.Body.Error})
			return
		}
		u.errorPage(w, r, ae.Status, ae.Body.Error)
		return
	}
	u.log.Error("web page failed", "path", r.URL.Path, "error", err)
	u.errorPage(w, r, http.StatusInternalServerError, err.Error())
}

// servicesPage lists the services the caller sees.
func (u *UI) servicesPage(w http.ResponseWriter, r *http.Request) {
	p := u.base(r, "Services")
	if err := u.get(r, "/v1/services", nil, &p.Services); err != nil {
		u.failed(w, r, err)
		return
	}
	p.Filter = r.URL.Query()
	u.render(w, r, http.StatusOK, "services.html", p)
}

// servicePage shows one service: status, spec, story, last exits, the
// chart of its last hour, its log and its buttons.
func (u *UI) servicePage(w http.ResponseWriter, r *http.Request) {
	tenant, name := r.PathValue("tenant"), r.PathValue("name")
	p := u.base(r, name)
	if err := u.statusOf(r, &p); err != nil {
		u.failed(w, r, err)
		return
	}
	evs, err := u.serviceEvents(r, tenant, name)
	if err != nil {
		u.failed(w, r, err)
		return
	}
	p.Chart = drawChart(evs, p.Now.Add(-ChartSpan), p.Now)
	p.Can = map[string]bool{}
	for verb, route := range verbs {
		if u.opts.Authorize(withCredential(r), route, tenant, name) == nil {
			p.Can[verb] = true
		}
	}
	p.ReadOnly = len(p.Can) == 0
	u.render(w, r, http.StatusOK, "service.html", p)
}

// statusOf reads one service's status and story, as the caller.
func (u *UI) statusOf(r *http.Request, p *page) error {
	base, err := servicePath(r)
	if err != nil {
		return &apiError{Status: http.StatusBadRequest, Body: wire.ErrorBody{Error: err.Error(), Code: wire.CodeInvalid}}
	}
	if err := u.get(r, base, nil, &p.Status); err != nil {
		return err
	}
	var story wire.Story
	if err := u.get(r, base+"/why", nil, &story); err != nil {
		return err
	}
	p.Story = story.Lines
	return nil
}

// serviceLive is the part of a service's page its script refreshes when
// an event about the service arrives: status, last exits, story.
func (u *UI) serviceLive(w http.ResponseWriter, r *http.Request) {
	p := u.base(r, "")
	if err := u.statusOf(r, &p); err != nil {
		u.fragmentFailed(w, err)
		return
	}
	u.render(w, r, http.StatusOK, "status", p)
}

// row is one row of the services page, for its script to insert or
// replace when an event about the service arrives. A service the caller
// does not see (removed, or another tenant's) answers 404.
func (u *UI) row(w http.ResponseWriter, r *http.Request) {
	var v state.ServiceStatus
	base, err := servicePath(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := u.get(r, base, nil, &v); err != nil {
		u.fragmentFailed(w, err)
		return
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "row", v.ServiceView); err != nil {
		u.log.Error("render row", "error", err)
		http.Error(w, "render row", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// fragmentFailed answers a fragment whose API call failed with the API's
// status and words, as plain text.
func (u *UI) fragmentFailed(w http.ResponseWriter, err error) {
	status, msg := http.StatusInternalServerError, err.Error()
	var ae *apiError
	if errors.As(err, &ae) {
		status = ae.Status
	} else {
		u.log.Error("web fragment failed", "error", err)
	}
	http.Error(w, msg, status)
}

// eventsPage shows the live event stream, filterable by service and type.
func (u *UI) eventsPage(w http.ResponseWriter, r *http.Request) {
	p := u.base(r, "Events")
	// The caller must be able to read events; ask for none to find out.
	if err := u.getNDJSON(r, "/v1/events", url.Values{"limit": {"1"}, "from": {strconv.FormatUint(p.Head+1, 10)}}, func(json.RawMessage) error { return nil }); err != nil {
		u.failed(w, r, err)
		return
	}
	p.Filter = r.URL.Query()
	u.render(w, r, http.StatusOK, "events.html", p)
}

// serviceEvents reads the events of one service (the API's stream index).
func (u *UI) serviceEvents(r *http.Request, tenant, name string) ([]event.Envelope, error) {
	var evs []event.Envelope
	err := u.getNDJSON(r, "/v1/events", url.Values{"tenant": {tenant}, "service": {name}}, func(raw json.RawMessage) error {
		var env event.Envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			return err
		}
		evs = append(evs, env)
		return nil
	})
	return evs, err
}

// getNDJSON calls the API in-process and hands each line of its NDJSON
// reply to each.
func (u *UI) getNDJSON(r *http.Request, path string, query url.Values, each func(json.RawMessage) error) error {
	rep, err := u.call(r, path, query)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(&rep.body)
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		if err := each(raw); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return nil
}

// Template helpers.

// since is how long ago t was, rounded for a person; "" for a zero time.
func since(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return roundDuration(now.Sub(t))
}

// ago is since with "ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return roundDuration(now.Sub(t)) + " ago"
}

func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// exitOf says how a service's last instance ended, from its view.
func exitOf(v state.ServiceView) string {
	switch {
	case v.Signal != "":
		return "signal " + v.Signal
	case v.ExitCode != nil:
		return "exit " + strconv.Itoa(*v.ExitCode)
	case v.StartError != "":
		return "did not start"
	}
	return ""
}
