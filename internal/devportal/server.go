package devportal

import (
	"net/http"
	"strings"
)

// apiPrefix is where every DocSpace controller route starts.
const apiPrefix = "/api/2.0"

// apiHandler serves one route after authentication; rl is the caller's role.
type apiHandler func(w http.ResponseWriter, r *http.Request, rl role)

// routes maps a lower-case path after /api/2.0 to its handlers by method.
// ASP.NET routing ignores case and a trailing slash, so lookups do too.
func (p *Portal) routes() map[string]map[string]apiHandler {
	return map[string]map[string]apiHandler{
		"/settings/iprestrictions": {
			http.MethodGet: p.getRestrictions,
			http.MethodPut: p.putRestrictions("SaveIpRestrictions"),
		},
		"/settings/iprestrictions/settings": {
			http.MethodGet: p.getRestrictionSettings,
			http.MethodPut: p.putRestrictions("UpdateIpRestrictionsSettings"),
		},
		"/security/audit/login/filter": {http.MethodGet: p.getLoginEventsByFilter},
		"/security/audit/login/last":   {http.MethodGet: p.getLastLoginEvents},
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
			p.serveControl(w, r)
			return
		}
		entry := p.logRequest(r.Method, r.URL.Path, r.URL.RawQuery)
		sw := &statusWriter{ResponseWriter: w}
		defer func() { p.finishRequest(entry, sw.status) }()

		api := func(w http.ResponseWriter, r *http.Request) { serveAPI(routes, w, r, p.authenticate) }
		if p.serveFault(sw, r, api) {
			return
		}
		api(sw, r)
	})
}

// serveAPI routes, authenticates and dispatches one API request.
// Unknown paths answer 404 before authentication (no endpoint, no
// authorization); a known path with another method answers 405 with an
// empty body, as ASP.NET endpoint routing does.
func serveAPI(routes map[string]map[string]apiHandler, w http.ResponseWriter, r *http.Request, auth func(*http.Request) role) {
	path := r.URL.Path
	if len(path) < len(apiPrefix) || !strings.EqualFold(path[:len(apiPrefix)], apiPrefix) {
		writeNotFound(w)
		return
	}
	rest := strings.ToLower(strings.TrimSuffix(path[len(apiPrefix):], "/"))
	byMethod, ok := routes[rest]
	if !ok {
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
	rl := auth(r)
	if rl == roleNone {
		writeUnauthorized(w)
		return
	}
	h(w, r, rl)
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
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
