package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/solo-rt/solo/pkg/webui"
)

// uiRoutes mounts the web view (package webui) on /ui. It reads and
// writes through this server's own handler, in-process, with its
// caller's credential, so it is authorised like any client.
func (s *Server) uiRoutes() {
	ui := webui.New(webui.Options{
		API:       http.HandlerFunc(s.serveHTTP),
		Authorize: s.allows,
		Head:      func() uint64 { return s.rt.Store().Head() },
		Logger:    s.log.Named("ui"),
	})
	s.mux.Handle(webui.Prefix, ui)
	s.mux.Handle(webui.Prefix+"/", ui)
}

// allows returns nil if r (its connection and Authorization header) would
// be authorised to run route, a pattern of the route table, on (tenant,
// name), or the refusal the route would answer. It runs nothing: the web
// view asks before it shows a button, and to check a token at login.
func (s *Server) allows(r *http.Request, route, tenant, name string) error {
	method, path, _ := strings.Cut(route, " ")
	c := r.Clone(r.Context())
	c.Method = method
	c.Pattern = route
	c.URL = &url.URL{Path: strings.NewReplacer("{tenant}", tenant, "{name}", name).Replace(path)}
	c.SetPathValue("tenant", tenant)
	c.SetPathValue("name", name)
	_, err := s.authorize(c)
	return err
}
