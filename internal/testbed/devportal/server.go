package devportal

import (
	"net/http"
	"strings"
)

// apiPrefix is where every DocSpace controller route starts.
const apiPrefix = "/api/2.0"

// apiHandler serves one route after authentication; rl is the caller's role.
type apiHandler func(w http.ResponseWriter, r *http.Request, c caller)

// routes maps a lower-case path after /api/2.0 to its handlers by method.
// ASP.NET routing ignores case and a trailing slash, so lookups do too. A
// segment "{}" matches any one non-empty segment (a route parameter, read by
// the handler with lastSegment); exact routes win over patterns.
func (p *Portal) routes() map[string]map[string]apiHandler {
	return map[string]map[string]apiHandler{
		"/keys/@self":                              {http.MethodGet: p.getKeySelf},
		"/people/@self":                            {http.MethodGet: p.getPeopleSelf},
		"/people/{}":                               {http.MethodGet: p.getPerson},
		"/people/status/{}":                        {http.MethodPut: p.putPeopleStatus},
		"/security/activeconnections/logout/{}":    {http.MethodPut: p.putLogout},
		"/security/activeconnections/logoutall/{}": {http.MethodPut: p.putLogoutAll},
		"/security/audit/events/filter":            {http.MethodGet: p.getAuditEventsByFilter},
		"/security/audit/events/last":              {http.MethodGet: p.getLastAuditEvents},
		"/settings/iprestrictions": {
			http.MethodGet: p.getRestrictions,
			http.MethodPut: p.putRestrictions("SaveIpRestrictions"),
		},
		"/settings/iprestrictions/settings": {
			http.MethodGet: p.getRestrictionSettings,
			http.MethodPut: p.putRestrictions("UpdateIpRestrictionsSettings"),
		},
		"/security/audit/login/filter":      {http.MethodGet: p.getLoginEventsByFilter},
		"/security/audit/login/last":        {http.MethodGet: p.getLastLoginEvents},
		"/security/audit/settings/lifetime": {http.MethodGet: p.getAuditLifetime},
	}
}

// Handler returns the HTTP handler of the portal: the DocSpace API under
// /api/2.0, the control API under /_dev/, and a 404 error envelope for
// anything else. It is safe for concurrent use; every request outside /_dev/
// is logged (see Requests) and may be hit by an injected fault.
func (p *Portal) Handler() http.Handler {
	routes := p.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_dev" || strings.HasPrefix(r.URL.Path, "/_dev/") {
			w.Header().Set("Date", p.now().UTC().Format(http.TimeFormat))
			p.serveControl(w, r)
			return
		}
		entry := p.logRequest(r.Method, r.URL.Path, r.URL.RawQuery)
		// Date is the portal's clock when it answers, as a real server
		// writes it (after the work, so never before an event the request
		// stamped).
		sw := &statusWriter{ResponseWriter: w, date: func() string { return p.now().UTC().Format(http.TimeFormat) }}
		defer func() { p.finishRequest(entry, sw.status) }()

		api := func(w http.ResponseWriter, r *http.Request) { p.serveAPI(routes, w, r) }
		if p.serveFault(sw, r, api) {
			return
		}
		api(sw, r)
	})
}

// serveAPI routes, authenticates and dispatches one API request.
// Unknown paths (and routes switched off to play an older portal) answer 404
// before authentication (no endpoint, no authorization); a known path with
// another method answers 405 with an empty body, as ASP.NET endpoint routing
// does. A key whose scopes do not cover the request gets 403 with an empty
// body (the scope filter's StatusCodeResult).
func (p *Portal) serveAPI(routes map[string]map[string]apiHandler, w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if len(path) < len(apiPrefix) || !strings.EqualFold(path[:len(apiPrefix)], apiPrefix) {
		writeNotFound(w)
		return
	}
	rest := strings.ToLower(strings.TrimSuffix(path[len(apiPrefix):], "/"))
	route, byMethod := matchRoute(routes, rest)
	if byMethod == nil || !p.routeAvailable(route) {
		writeNotFound(w)
		return
	}
	h, ok := byMethod[r.Method]
	if !ok {
		allowed := make([]string, 0, len(byMethod))
		for m := range byMethod {
			allowed = append(allowed, m)
		}
		w.Header().Set("Allow", strings.Join(sortedStrings(allowed), ", "))
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	c := p.authenticate(r)
	if c.role == roleNone {
		writeUnauthorized(w)
		return
	}
	if !scopeAllows(c.scopes, r.Method, route) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	h(w, r, c)
}

// matchRoute finds the route of rest (lower-case, no trailing slash): an
// exact route first, else a pattern whose "{}" segments match any one
// non-empty segment. It returns nil handlers when none matches.
func matchRoute(routes map[string]map[string]apiHandler, rest string) (string, map[string]apiHandler) {
	if h, ok := routes[rest]; ok {
		return rest, h
	}
	segs := strings.Split(rest, "/")
	for pattern, h := range routes {
		ps := strings.Split(pattern, "/")
		if len(ps) != len(segs) {
			continue
		}
		ok := true
		for i := range ps {
			if ps[i] == "{}" && segs[i] != "" || ps[i] == segs[i] {
				continue
			}
			ok = false
			break
		}
		if ok {
			return pattern, h
		}
	}
	return "", nil
}

// lastSegment is the route parameter of a pattern route: the last path
// segment as sent (case kept, percent-decoding done by net/url).
func lastSegment(r *http.Request) string {
	p := strings.TrimSuffix(r.URL.Path, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	date   func() string // the Date header, set when the answer starts
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		if s.date != nil && s.Header().Get("Date") == "" {
			s.Header().Set("Date", s.date())
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// sortedStrings sorts a short list in place and returns it.
func sortedStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
