// Package webui is Solo's web view: a live page at /ui that shows the
// services a caller may see, one service's status, story, last exits,
// chart and log, and the event stream, with restart, stop and start
// buttons.
//
// It owns the pages (server-rendered with html/template, so every name
// and log line is escaped), their embedded assets (a stylesheet and a
// small script; no build step, no CDN), the login cookie and the CSRF
// checks of its writes. It must never read the runtime or the log itself:
// every read and write goes through the API ([Options.API]), in-process,
// with the caller's credential, so the API's authorisation, scopes and
// tenant confinement are the page's too (a token confined to a tenant
// never sees another's services; an admin sees every tenant; over the
// unix socket the owner is admin). It must never put a token in a page,
// a URL, a log line or an error.
//
// # Routes
//
//	GET  /ui/                              the services: state, ready, pid, uptime, restarts, last exit; sortable, filterable by name and state; live
//	GET  /ui/services/{tenant}/{name}      one service: status, last exits, story (solo why), chart of the last hour, log tail, buttons
//	GET  /ui/events                        the event stream, live, filterable by service and type
//	GET  /ui/login, POST /ui/login         a form that takes a token and keeps it in a cookie
//	POST /ui/logout                        forget the cookie (CSRF-checked)
//	GET  /ui/row/{tenant}/{name}           one row of the services page (HTML), for the script
//	GET  /ui/services/{tenant}/{name}/live the live part of a service's page (HTML), for the script
//	GET  /ui/api/events                    the API's events as Server-Sent Events (follow; Last-Event-ID resumes)
//	GET  /ui/api/services/{tenant}/{name}[/why|/logs]  the API's reads
//	POST /ui/api/services/{tenant}/{name}/{restart|stop|start}  the API's verbs, CSRF-checked
//
// # Security
//
// The credential is the request's Authorization header, else the login
// cookie ([CookieName]: HttpOnly, SameSite=Strict, Secure over TLS); with
// neither, the API decides (the socket's owner is admin, TCP needs a
// token and the page shows the login form). A write needs the session's
// CSRF token ([CSRFHeader], an HMAC of the credential under a key of the
// process) and is refused when Sec-Fetch-Site or Origin say it comes from
// another site; then the API checks its scope as for any client. A button
// shows only when [Options.Authorize] says the API would allow its verb.
// Every page is sent with a Content-Security-Policy that allows only the
// page's own script and style. The static assets (/ui/static/) need no
// credential: they hold no data.
//
// # Concurrency
//
// A [UI] is safe for concurrent use. A page's live stream is the API's
// event subscription: a slow page slows only itself (I8). The script
// coalesces the refreshes events cause: at most one batch of rows a
// second per page in a storm.
//
// # Caveats
//
//   - The CSRF key is per process unless [Options.Key] is set: after a
//     daemon restart, a page must be reloaded before its buttons work.
//   - The chart reads the service's whole stream of events to draw its
//     last hour.
//   - Over plain HTTP/1.1 a browser keeps at most 6 connections to a host,
//     and each open page holds one for its live stream (a service's page
//     two: events and log): past that, further tabs of the same browser
//     on the same daemon wait. TLS in front (HTTP/2) lifts the limit.
//   - The node column waits for cluster mode's field in the service view.
package webui
