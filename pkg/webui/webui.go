package webui

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// Prefix is where the page is mounted.
const Prefix = "/ui"

// CookieName is the cookie the login form sets: the caller's token,
// HttpOnly, SameSite=Strict, Secure over TLS, path [Prefix].
const CookieName = "solo_token"

// CSRFHeader carries the page's CSRF token on every write.
const CSRFHeader = "X-Solo-CSRF"

// DefaultWriteWait is how long a restart or start from the page waits for
// the new instance to start (the API's ?wait=), so that the result it
// shows names the new pid.
const DefaultWriteWait = 10 * time.Second

// Options configure [New]. API, Authorize and Head are required.
type Options struct {
	// API is Solo's HTTP API (package api's Server.Handler). The page
	// reads and writes through it, in-process, with the caller's
	// credential: the API's authorisation, scopes and tenant confinement
	// apply unchanged.
	API http.Handler
	// Authorize returns nil if the API would let r (its connection and
	// its Authorization header) run route, a pattern of the API's route
	// table such as "POST /v1/services/{tenant}/{name}/restart", on
	// (tenant, name), or the API's refusal otherwise. It runs nothing.
	// The page shows a write button only when this allows it, and the
	// login form checks a token with it.
	Authorize func(r *http.Request, route, tenant, name string) error
	// Head returns the position of the last event in the log: live
	// streams start after it, so that no event is missed between a page's
	// rendering and its subscription.
	Head func() uint64
	// Logger receives errors the page cannot show (never a credential).
	// Default: a null logger.
	Logger hclog.Logger
	// Key signs CSRF tokens. Default: 32 random bytes, so the pages of a
	// daemon that restarted must be reloaded before they can write.
	Key []byte
}

//go:embed assets
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"since":  since,
	"ago":    ago,
	"join":   strings.Join,
	"exitOf": exitOf,
	"dur":    func(d state.Duration) string { return roundDuration(time.Duration(d)) },
	"uptime": func(t time.Time) string { return since(time.Now(), t) },
	"eventTypes": func() string {
		var b strings.Builder
		for i, t := range state.EventTypes() {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(string(t))
		}
		return b.String()
	},
	"states": func() []state.State {
		return []state.State{state.StateStarting, state.StateRunning, state.StateBackoff, state.StateExited, state.StateFailed, state.StateKilled, state.StateStopped}
	},
}).ParseFS(assets, "assets/*.html"))

// UI is the web view's handler; see the package doc.
type UI struct {
	opts Options
	log  hclog.Logger
	mux  *http.ServeMux
	now  func() time.Time
}

// New returns the web view. It panics if a required option is missing, a
// programming error.
func New(opts Options) *UI {
	if opts.API == nil || opts.Authorize == nil || opts.Head == nil {
		panic("webui.New: API, Authorize and Head are required")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if len(opts.Key) == 0 {
		opts.Key = make([]byte, 32)
		rand.Read(opts.Key)
	}
	u := &UI{opts: opts, log: opts.Logger, mux: http.NewServeMux(), now: time.Now}
	static, _ := fs.Sub(assets, "assets")
	u.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	u.mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	u.mux.HandleFunc("GET /ui/{$}", u.servicesPage)
	u.mux.HandleFunc("GET /ui/services/{tenant}/{name}", u.servicePage)
	u.mux.HandleFunc("GET /ui/services/{tenant}/{name}/live", u.serviceLive)
	u.mux.HandleFunc("GET /ui/row/{tenant}/{name}", u.row)
	u.mux.HandleFunc("GET /ui/events", u.eventsPage)
	u.mux.HandleFunc("GET /ui/login", u.loginPage)
	u.mux.HandleFunc("POST /ui/login", u.login)
	u.mux.HandleFunc("POST /ui/logout", u.logout)
	// Reads the page's script makes, passed to the API as they are.
	u.mux.HandleFunc("GET /ui/api/services/{tenant}/{name}", u.read)
	u.mux.HandleFunc("GET /ui/api/services/{tenant}/{name}/why", u.read)
	u.mux.HandleFunc("GET /ui/api/services/{tenant}/{name}/logs", u.read)
	u.mux.HandleFunc("GET /ui/api/events", u.events)
	// Writes: CSRF-checked, then passed to the API.
	u.mux.HandleFunc("POST /ui/api/services/{tenant}/{name}/{verb}", u.write)
	u.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
	return u
}

// ServeHTTP serves the pages under [Prefix].
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make form posts send Origin: null
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		h.Set("Cache-Control", "no-store")
	}
	u.mux.ServeHTTP(w, r)
}

// withCredential returns r with the caller's credential as the API reads
// it: its own Authorization header, else the login cookie's token as a
// bearer header. The cookie header itself never reaches the API.
func withCredential(r *http.Request) *http.Request {
	c := r.Clone(r.Context())
	c.Header.Del("Cookie")
	if r.Header.Get("Authorization") == "" {
		if ck, err := r.Cookie(CookieName); err == nil && ck.Value != "" {
			c.Header.Set("Authorization", "Bearer "+ck.Value)
		}
	}
	return c
}

// credential is what a session is: the token the caller sends, by cookie
// or header, or "" for the socket's owner who sends none.
func credential(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		return h
	}
	if ck, err := r.Cookie(CookieName); err == nil {
		return ck.Value
	}
	return ""
}

// csrfToken is the session's CSRF token: an HMAC of its credential under
// the UI's key. It reveals nothing of the credential, and a page of
// another origin cannot read it.
func (u *UI) csrfToken(r *http.Request) string {
	m := hmac.New(sha256.New, u.opts.Key)
	m.Write([]byte("solo-ui-csrf\x00"))
	m.Write([]byte(credential(r)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Errors of a write the page refuses before the API sees it.
var (
	// ErrCrossSite: the request came from another site (Origin or
	// Sec-Fetch-Site says so).
	ErrCrossSite = errors.New("cross-site request refused")
	// ErrCSRF: the request carries no CSRF token, or not this session's.
	ErrCSRF = errors.New("missing or wrong CSRF token: reload the page")
)

// checkSameOrigin refuses a request a browser marks as coming from
// another site.
func checkSameOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return ErrCrossSite
	}
	if o := r.Header.Get("Origin"); o != "" {
		ou, err := url.Parse(o)
		if err != nil || ou.Host != r.Host {
			return ErrCrossSite
		}
	}
	return nil
}

// checkCSRF applies both checks to a write.
func (u *UI) checkCSRF(r *http.Request) error {
	if err := checkSameOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	if got == "" || !hmac.Equal([]byte(got), []byte(u.csrfToken(r))) {
		return ErrCSRF
	}
	return nil
}

// apiReply is a buffered reply of an in-process API call.
type apiReply struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *apiReply) Header() http.Header { return a.header }
func (a *apiReply) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}
func (a *apiReply) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.body.Write(b)
}

// apiError is the API's refusal of an in-process call.
type apiError struct {
	Status int
	Body   wire.ErrorBody
}

func (e *apiError) Error() string { return e.Body.Error }

// call calls the API in-process as the caller of r: a GET of path. A
// reply other than 200 is an [*apiError].
func (u *UI) call(r *http.Request, path string, query url.Values) (*apiReply, error) {
	c := withCredential(r)
	c.Method = http.MethodGet
	c.URL = &url.URL{Path: path, RawQuery: query.Encode()}
	c.RequestURI = ""
	c.Body = http.NoBody
	c.ContentLength = 0
	c.Header.Del("Accept")
	rep := &apiReply{header: http.Header{}}
	u.opts.API.ServeHTTP(rep, c)
	if rep.status != http.StatusOK {
		e := &apiError{Status: rep.status}
		if json.Unmarshal(rep.body.Bytes(), &e.Body) != nil || e.Body.Error == "" {
			e.Body.Error = fmt.Sprintf("the API answered %d", rep.status)
		}
		return nil, e
	}
	return rep, nil
}

// get calls the API in-process and decodes its JSON reply into v.
func (u *UI) get(r *http.Request, path string, query url.Values, v any) error {
	rep, err := u.call(r, path, query)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(rep.body.Bytes(), v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// pass hands r to the API under path (the query kept), as its caller.
func (u *UI) pass(w http.ResponseWriter, r *http.Request, method, path string, query url.Values) {
	c := withCredential(r)
	c.Method = method
	c.URL = &url.URL{Path: path, RawQuery: query.Encode()}
	c.RequestURI = ""
	c.Body = http.NoBody
	c.ContentLength = 0
	u.opts.API.ServeHTTP(w, c)
}

// read passes a GET of the page's script to the API route of the same
// name under /v1.
func (u *UI) read(w http.ResponseWriter, r *http.Request) {
	path, err := servicePath(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeInvalid, err.Error())
		return
	}
	if rest, ok := strings.CutPrefix(r.Pattern, "GET /ui/api/services/{tenant}/{name}"); ok {
		path += rest
	}
	u.pass(w, r, http.MethodGet, path, r.URL.Query())
}

// servicePath is the API path of the service a request names, its tenant
// and name checked first (by the domain's rule) so that neither can
// reach another route.
func servicePath(r *http.Request) (string, error) {
	tenant, name := r.PathValue("tenant"), r.PathValue("name")
	if err := state.ValidName(tenant); err != nil {
		return "", fmt.Errorf("tenant: %w", err)
	}
	if err := state.ValidName(name); err != nil {
		return "", fmt.Errorf("name: %w", err)
	}
	return "/v1/services/" + tenant + "/" + name, nil
}

// events passes the live stream to the API as Server-Sent Events; a
// reconnecting EventSource's Last-Event-ID resumes after that event.
func (u *UI) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseUint(id, 10, 64); err == nil {
			q.Set("from", strconv.FormatUint(n+1, 10))
		}
	}
	q.Set("follow", "1")
	r.Header.Set("Accept", wire.ContentTypeSSE)
	u.pass(w, r, http.MethodGet, "/v1/events", q)
}

// verbs are the writes the page offers, each an API route.
var verbs = map[string]string{
	"restart": "POST /v1/services/{tenant}/{name}/restart",
	"stop":    "POST /v1/services/{tenant}/{name}/stop",
	"start":   "POST /v1/services/{tenant}/{name}/start",
}

// write runs a button's verb through the API once the request passes the
// CSRF checks. Restart and start wait for the new instance.
func (u *UI) write(w http.ResponseWriter, r *http.Request) {
	verb := r.PathValue("verb")
	if _, ok := verbs[verb]; !ok {
		writeError(w, http.StatusNotFound, wire.CodeNotFound, fmt.Sprintf("no such action %q: restart, stop or start", verb))
		return
	}
	if err := u.checkCSRF(r); err != nil {
		writeError(w, http.StatusForbidden, wire.CodeDenied, err.Error())
		return
	}
	path, err := servicePath(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeInvalid, err.Error())
		return
	}
	q := url.Values{}
	if verb != "stop" {
		q.Set("wait", DefaultWriteWait.String())
	}
	u.pass(w, r, http.MethodPost, path+"/"+verb, q)
}

// writeError writes an error reply in the API's shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(wire.ErrorBody{Error: msg, Code: code})
	w.Header().Set("Content-Type", wire.ContentTypeJSON)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// loginPage shows the form that takes a token.
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "login.html", page{Title: "Log in"})
}

// login checks the token of the form with the API's authorisation (the
// read scope is enough to see the page) and keeps it in a cookie.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if err := checkSameOrigin(r); err != nil {
		u.render(w, r, http.StatusForbidden, "login.html", page{Title: "Log in", Error: err.Error()})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if tok == "" {
		u.render(w, r, http.StatusBadRequest, "login.html", page{Title: "Log in", Error: "token: paste a token (solo token grant --scope read,...)"})
		return
	}
	c := r.Clone(r.Context())
	c.Header.Set("Authorization", "Bearer "+tok)
	if err := u.opts.Authorize(c, "GET /v1/services", "", ""); err != nil {
		u.render(w, r, http.StatusUnauthorized, "login.html", page{Title: "Log in", Error: "token: " + err.Error()})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: tok, Path: Prefix,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// logout forgets the cookie.
func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if err := u.checkCSRF(r); err != nil {
		u.errorPage(w, r, http.StatusForbidden, err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
