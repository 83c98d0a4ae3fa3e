package devportal

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/ipguard"
)

// The control API under /_dev/: unauthenticated, for local demos only
// (documented for people in docs/dev-portal.md; a test keeps the two equal).
// Every answer is plain JSON (no DocSpace envelope); errors are
// {"error": "..."} with 400 or 404.
//
//	POST   /_dev/events        [LoginEvent JSON, date RFC 3339] → {"ids":[…]}
//	GET    /_dev/restrictions  → {"ipRestrictions":[{"ip","forAdmin"}],"enable":bool}
//	PUT    /_dev/restrictions  same shape, stored without validation → 204
//	POST   /_dev/faults        {"method","path","times","status","retryAfter","delay"(ms),"body","malformed","noResponse","applyLate"(ms)} → 204
//	DELETE /_dev/faults        → 204
//	PUT    /_dev/fallback      {"on":bool} → 204
//	PUT    /_dev/ties          {"shuffle":bool} same-second rows in a new order on each request → 204
//	PUT    /_dev/storm         {"rows":int,"requests":int} rows inserted before each of the next login/filter requests (requests 0: all; rows 0: off) → 204
//	PUT    /_dev/timezone      {"offsetMinutes":int} → 204
//	GET    /_dev/requests      → [{"method","path","rawQuery","status"}]
//	DELETE /_dev/requests      → 204
//
// Users, keys, sessions, the audit trail and the clock:
//
//	GET    /_dev/users         → [User] (see below), sorted by id
//	PUT    /_dev/users         [User] added or replaced by id; exactly one owner must remain → 204
//	                           User = {"id","displayName","email","status"(1 active,2 terminated,4 pending),
//	                                   "isAdmin","isOwner","isLDAP","isSSO","deleted",
//	                                   "type" ("" or "user", "guest", "room_admin": the type of a user
//	                                   who is neither owner nor admin)}
//	GET    /_dev/keys          → [{"id","name","keyPostfix","permissions","createBy","createOn","lastUsed","expiresAt","isActive"}]
//	                           (the secret is never listed)
//	PUT    /_dev/keys          {"key" (the secret, required), "name","keyPostfix","permissions","createBy",
//	                            "createOn","expiresAt" (RFC 3339, null = never),"isActive"} → 204;
//	                           fields left out keep their value (a new key: owner-created, active, never expires)
//	PUT    /_dev/endpoints     {"keysSelf":bool,"auditEvents":bool} (either may be left out); false → that
//	                           route answers 404 like an older portal → 204
//	PUT    /_dev/clock         {"skewSeconds":int} portal clock ahead (+) or behind (-) → 204
//	POST   /_dev/auditevents   [{"id","date","userId","user","actionId","action","ip","country","city",
//	                             "browser","platform","page","target":[…]}] → {"ids":[…]}
//	GET    /_dev/auditevents   → the stored audit trail in insertion order, same shape
//	GET    /_dev/sessions      → [{"eventId","userId","active","endedBy"}] one per successful login event
//	GET    /_dev/sessions/{id} → one of those, or 404
//	GET    /_dev/logouts       → [{"route":"logout"|"logoutall","target","callerId","status","result"}]
//	DELETE /_dev/logouts       → 204

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
	case "PUT /_dev/ties":
		var in struct {
			Shuffle bool `json:"shuffle"`
		}
		if decodeControl(w, r, &in) {
			p.SetTieShuffle(in.Shuffle)
			w.WriteHeader(http.StatusNoContent)
		}
	case "PUT /_dev/storm":
		var in struct {
			Rows     int `json:"rows"`
			Requests int `json:"requests"`
		}
		if decodeControl(w, r, &in) {
			p.SetStorm(in.Rows, in.Requests)
			w.WriteHeader(http.StatusNoContent)
		}
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
	case "GET /_dev/users":
		writeJSON(w, http.StatusOK, p.Users())
	case "PUT /_dev/users":
		var in []User
		if decodeControl(w, r, &in) {
			if err := p.PutUsers(in...); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	case "GET /_dev/keys":
		keys := p.Keys()
		for i := range keys {
			keys[i].Key = ""
		}
		writeJSON(w, http.StatusOK, keys)
	case "PUT /_dev/keys":
		p.controlPutKey(w, r)
	case "PUT /_dev/endpoints":
		var in struct {
			KeysSelf    *bool `json:"keysSelf"`
			AuditEvents *bool `json:"auditEvents"`
		}
		if decodeControl(w, r, &in) {
			if in.KeysSelf != nil {
				p.SetKeysSelfAvailable(*in.KeysSelf)
			}
			if in.AuditEvents != nil {
				p.SetAuditTrailAvailable(*in.AuditEvents)
			}
			w.WriteHeader(http.StatusNoContent)
		}
	case "PUT /_dev/clock":
		var in struct {
			SkewSeconds int64 `json:"skewSeconds"`
		}
		if decodeControl(w, r, &in) {
			p.SetClockSkew(time.Duration(in.SkewSeconds) * time.Second)
			w.WriteHeader(http.StatusNoContent)
		}
	case "POST /_dev/auditevents":
		var evs []AuditEvent
		if decodeControl(w, r, &evs) {
			writeJSON(w, http.StatusOK, map[string][]int64{"ids": p.AddAuditEvents(evs...)})
		}
	case "GET /_dev/auditevents":
		writeJSON(w, http.StatusOK, p.AuditEvents())
	case "GET /_dev/sessions":
		s := p.Sessions()
		if s == nil {
			s = []Session{}
		}
		writeJSON(w, http.StatusOK, s)
	case "GET /_dev/logouts":
		l := p.Logouts()
		if l == nil {
			l = []LogoutCall{}
		}
		writeJSON(w, http.StatusOK, l)
	case "DELETE /_dev/logouts":
		p.ResetLogouts()
		w.WriteHeader(http.StatusNoContent)
	default:
		if rest, ok := strings.CutPrefix(r.URL.Path, "/_dev/sessions/"); ok && r.Method == http.MethodGet {
			id, err := strconv.ParseInt(rest, 10, 64)
			if s, found := p.Session(id); err == nil && found {
				writeJSON(w, http.StatusOK, s)
				return
			}
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no session of a successful login event " + rest})
			return
		}
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

// keyPatch is PUT /_dev/keys: absent fields keep their value.
type keyPatch struct {
	Key         string       `json:"key"`
	Name        *string      `json:"name"`
	KeyPostfix  *string      `json:"keyPostfix"`
	Permissions *[]string    `json:"permissions"`
	CreateBy    *string      `json:"createBy"`
	CreateOn    *time.Time   `json:"createOn"`
	ExpiresAt   optionalTime `json:"expiresAt"`
	IsActive    *bool        `json:"isActive"`
}

// optionalTime tells an absent JSON value (set false) from null (set, T nil).
type optionalTime struct {
	set bool
	t   *time.Time
}

func (o *optionalTime) UnmarshalJSON(b []byte) error {
	o.set = true
	return json.Unmarshal(b, &o.t)
}

func (p *Portal) controlPutKey(w http.ResponseWriter, r *http.Request) {
	var in keyPatch
	if !decodeControl(w, r, &in) {
		return
	}
	k, ok := p.Key(in.Key)
	if !ok {
		k = APIKey{Key: in.Key, CreateBy: OwnerID, IsActive: true}
	}
	if in.Name != nil {
		k.Name = *in.Name
	}
	if in.KeyPostfix != nil {
		k.KeyPostfix = *in.KeyPostfix
	}
	if in.Permissions != nil {
		k.Permissions = *in.Permissions
	}
	if in.CreateBy != nil {
		k.CreateBy = *in.CreateBy
	}
	if in.CreateOn != nil {
		k.CreateOn = *in.CreateOn
	}
	if in.ExpiresAt.set {
		k.ExpiresAt = in.ExpiresAt.t
	}
	if in.IsActive != nil {
		k.IsActive = *in.IsActive
	}
	if err := p.PutKey(k); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
