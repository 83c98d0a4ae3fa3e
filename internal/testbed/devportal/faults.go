package devportal

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Fault describes a failure the portal injects into matching API requests
// (never into /_dev/ requests). A request matches when Method is "" or equals
// its method and its path after /api/2.0 starts with Path (case-insensitive;
// "" matches every path, also paths outside /api/2.0).
//
// What a matching request gets, after sleeping Delay (a client that gives up
// meanwhile gets nothing):
//
//	Malformed       status Status (200 if 0), Body or else the real answer's
//	                body cut in half — invalid JSON (the request is really
//	                served, so a PUT takes effect)
//	Status != 0     status Status with Body, or else the default body:
//	                  429          empty, X-RateLimit-Limit/-Remaining headers (§5.3)
//	                  502/503/504  a small HTML page, as a reverse proxy sends
//	                  401          empty, as the authentication challenge
//	                  other        the JSON error envelope
//	Body != ""      status 200 with Body
//	NoResponse      status 200 with a success envelope that has no
//	                "response" member (nothing is served)
//	ApplyLate > 0   the request is read but not answered until the client
//	                gives up (or Delay passes); ApplyLate after that, it is
//	                served for real (a PUT lands late)
//	otherwise       the normal answer (a pure delay)
//
// Retry-After is sent whenever RetryAfter is not "".
type Fault struct {
	Method     string        // "" = any
	Path       string        // path prefix after /api/2.0, e.g. "/settings/iprestrictions"; "" = any
	Times      int           // how many matching requests it affects; 0 = until cleared
	Status     int           // e.g. 429, 503, 500, 502; 0 = no status fault (use with Delay)
	RetryAfter string        // value of Retry-After header, "" = none
	Delay      time.Duration // sleep before answering (respects request context)
	Body       string        // raw body to send instead of the default (e.g. HTML "<html>502 Bad Gateway</html>")
	Malformed  bool          // answer 200 with a truncated/invalid JSON body
	NoResponse bool          // answer 200 {"count":0,"status":0,"statusCode":200}, without "response"
	ApplyLate  time.Duration // serve the request this long after the client gave up
}

type faultState struct {
	Fault
	left int // matching requests still to affect when Times > 0
}

// InjectFault adds f after the faults already active. A request is affected
// by the first active fault it matches, and only by that one; a fault with
// Times > 0 is removed once it has affected that many requests.
func (p *Portal) InjectFault(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &faultState{Fault: f, left: f.Times})
}

// ClearFaults removes every active fault.
func (p *Portal) ClearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// takeFault returns the fault that applies to r, counting it as used.
func (p *Portal) takeFault(r *http.Request) (Fault, bool) {
	rest := r.URL.Path
	if len(rest) >= len(apiPrefix) && strings.EqualFold(rest[:len(apiPrefix)], apiPrefix) {
		rest = rest[len(apiPrefix):]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, fs := range p.faults {
		if fs.Method != "" && !strings.EqualFold(fs.Method, r.Method) {
			continue
		}
		if fs.Path != "" && !strings.HasPrefix(strings.ToLower(rest), strings.ToLower(fs.Path)) {
			continue
		}
		if fs.Times > 0 {
			fs.left--
			if fs.left <= 0 {
				p.faults = append(p.faults[:i:i], p.faults[i+1:]...)
			}
		}
		return fs.Fault, true
	}
	return Fault{}, false
}

// serveFault applies the fault matching r, if any, and reports whether it
// answered (or abandoned) the request; false means serve it normally.
func (p *Portal) serveFault(w http.ResponseWriter, r *http.Request, api http.HandlerFunc) bool {
	f, ok := p.takeFault(r)
	if !ok {
		return false
	}
	if f.ApplyLate > 0 {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		late := r.Clone(context.WithoutCancel(r.Context()))
		wait := f.Delay
		if wait <= 0 {
			wait = time.Hour
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		go func() {
			time.Sleep(f.ApplyLate)
			late.Body = io.NopCloser(bytes.NewReader(body))
			api(&bufferWriter{header: http.Header{}}, late)
		}()
		return true
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return true
		case <-t.C:
		}
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	switch {
	case f.Malformed:
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		body := f.Body
		if body == "" {
			body = truncatedAnswer(r, api)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	case f.Status != 0:
		if f.Body != "" {
			writeRaw(w, f.Status, f.Body)
		} else {
			writeDefaultFault(w, f.Status)
		}
	case f.Body != "":
		writeRaw(w, http.StatusOK, f.Body)
	case f.NoResponse:
		writeRaw(w, http.StatusOK, `{"count":0,"links":[],"status":0,"statusCode":200}`)
	default:
		return false
	}
	return true
}

// truncatedAnswer serves r normally into a buffer and returns the first half
// of the body, which is never valid JSON for an envelope.
func truncatedAnswer(r *http.Request, api http.HandlerFunc) string {
	buf := &bufferWriter{header: http.Header{}}
	api(buf, r)
	body := buf.body.String()
	if len(body) < 4 {
		return `{"response":[{"id":`
	}
	return body[:len(body)/2]
}

// writeRaw sends body as is, labelled HTML when it looks like HTML.
func writeRaw(w http.ResponseWriter, status int, body string) {
	ct := "application/json; charset=utf-8"
	if strings.HasPrefix(strings.TrimSpace(body), "<") {
		ct = "text/html; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func writeDefaultFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		// The sliding-window limiter's lease: 1500 per minute, none left.
		w.Header().Set("X-RateLimit-Limit", "1500")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.WriteHeader(status)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		text := fmt.Sprintf("%d %s", status, http.StatusText(status))
		writeRaw(w, status, "<html>\r\n<head><title>"+text+"</title></head>\r\n<body>\r\n<center><h1>"+text+
			"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
	case http.StatusUnauthorized:
		writeUnauthorized(w)
	case http.StatusInternalServerError:
		writeError(w, status, "Injected fault: unexpected server error", "System.Exception",
			"   at ASC.Api.Core.Middleware.DevPortalFault.Throw()", hresultException)
	default:
		writeError(w, status, http.StatusText(status), "", "", 0)
	}
}

// bufferWriter is an http.ResponseWriter that keeps the answer in memory.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) WriteHeader(code int)        { b.status = code }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
