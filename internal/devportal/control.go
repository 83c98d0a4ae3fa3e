package devportal

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"ipguard/internal/ipguard"
)

// The control API under /_dev/: unauthenticated, for local demos only.
// Every answer is plain JSON (no DocSpace envelope); errors are
// {"error": "..."} with 400 or 404.
//
//	POST   /_dev/events        [LoginEvent JSON, date RFC 3339] → {"ids":[…]}
//	GET    /_dev/restrictions  → {"ipRestrictions":[{"ip","forAdmin"}],"enable":bool}
//	PUT    /_dev/restrictions  same shape, stored without validation → 204
//	POST   /_dev/faults        {"method","path","times","status","retryAfter","delay"(ms),"body","malformed","noResponse","applyLate"(ms)} → 204
//	DELETE /_dev/faults        → 204
//	PUT    /_dev/fallback      {"on":bool} → 204
//	PUT    /_dev/timezone      {"offsetMinutes":int} → 204
//	GET    /_dev/requests      → [{"method","path","rawQuery","status"}]
//	DELETE /_dev/requests      → 204

// faultJSON is a Fault on the wire; delay is in milliseconds.
type faultJSON struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Times       int    `json:"times"`
	Status      int    `json:"status"`
	RetryAfter  string `json:"retryAfter"`
	DelayMS     int64  `json:"delay"`
	Body        string `json:"body"`
	Malformed   bool   `json:"malformed"`
	NoResponse  bool   `json:"noResponse"`
	ApplyLateMS int64  `json:"applyLate"`
}

type restrictionsJSON struct {
	IPRestrictions []ipguard.Restriction `json:"ipRestrictions"`
	Enable         bool                  `json:"enable"`
}

func (p *Portal) serveControl(w http.ResponseWriter, r *http.Request) {
	switch r.Method + " " + r.URL.Path {
	case "POST /_dev/events":
		var evs []LoginEvent
		if decodeControl(w, r, &evs) {
			writeJSON(w, http.StatusOK, map[string][]int64{"ids": p.AddLoginEvents(evs...)})
		}
	case "GET /_dev/restrictions":
		list, enable := p.Restrictions()
		writeJSON(w, http.StatusOK, restrictionsJSON{IPRestrictions: list, Enable: enable})
	case "PUT /_dev/restrictions":
		var in restrictionsJSON
		if decodeControl(w, r, &in) {
			p.SetRestrictions(in.IPRestrictions, in.Enable)
			w.WriteHeader(http.StatusNoContent)
		}
	case "POST /_dev/faults":
		var in faultJSON
		if decodeControl(w, r, &in) {
			p.InjectFault(Fault{
				Method: in.Method, Path: in.Path, Times: in.Times, Status: in.Status,
				RetryAfter: in.RetryAfter, Delay: time.Duration(in.DelayMS) * time.Millisecond,
				Body: in.Body, Malformed: in.Malformed, NoResponse: in.NoResponse,
				ApplyLate: time.Duration(in.ApplyLateMS) * time.Millisecond,
			})
			w.WriteHeader(http.StatusNoContent)
		}
	case "DELETE /_dev/faults":
		p.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case "PUT /_dev/fallback":
		var in struct {
			On bool `json:"on"`
		}
		if decodeControl(w, r, &in) {
			p.SetPlanFallback(in.On)
			w.WriteHeader(http.StatusNoContent)
		}
	case "PUT /_dev/timezone":
		var in struct {
			OffsetMinutes int `json:"offsetMinutes"`
		}
		if decodeControl(w, r, &in) {
			if in.OffsetMinutes < -14*60 || in.OffsetMinutes > 14*60 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "offsetMinutes must be within ±840"})
				return
			}
			p.SetTimeZone(time.Duration(in.OffsetMinutes) * time.Minute)
			w.WriteHeader(http.StatusNoContent)
		}
	case "GET /_dev/requests":
		writeJSON(w, http.StatusOK, p.Requests())
	case "DELETE /_dev/requests":
		p.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no control endpoint %s %s", r.Method, r.URL.Path)})
	}
}

// decodeControl decodes the JSON body into v, or answers 400 and returns false.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decode " + r.URL.Path + " body: " + err.Error()})
		return false
	}
	return true
}
