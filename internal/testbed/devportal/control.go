package devportal

import (
	"encoding/json"
	"errors"
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
//	PUT    /_dev/auditlag      {"seconds":int} audit events of action 2000 and up show that long after their date
//	                           (as the real portal's batched writes; 0, the default: at once) → 204
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
		applyControl(w, r, func(in restrictionsJSON) error {
			p.SetRestrictions(in.IPRestrictions, in.Enable)
			return nil
		})
	case "POST /_dev/faults":
		applyControl(w, r, func(in faultJSON) error {
			p.InjectFault(Fault{
				Method: in.Method, Path: in.Path, Times: in.Times, Status: in.Status,
				RetryAfter: in.RetryAfter, Delay: time.Duration(in.DelayMS) * time.Millisecond,
				Body: in.Body, Malformed: in.Malformed, NoResponse: in.NoResponse,
				ApplyLate: time.Duration(in.ApplyLateMS) * time.Millisecond,
			})
			return nil
		})
	case "DELETE /_dev/faults":
		p.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case "PUT /_dev/ties":
		applyControl(w, r, func(in struct {
			Shuffle bool `json:"shuffle"`
		}) error {
			p.SetTieShuffle(in.Shuffle)
			return nil
		})
	case "PUT /_dev/storm":
		applyControl(w, r, func(in struct {
			Rows     int `json:"rows"`
			Requests int `json:"requests"`
		}) error {
			p.SetStorm(in.Rows, in.Requests)
			return nil
		})
	case "PUT /_dev/fallback":
		applyControl(w, r, func(in struct {
			On bool `json:"on"`
		}) error {
			p.SetPlanFallback(in.On)
			return nil
		})
	case "PUT /_dev/timezone":
		applyControl(w, r, func(in struct {
			OffsetMinutes int `json:"offsetMinutes"`
		}) error {
			if in.OffsetMinutes < -14*60 || in.OffsetMinutes > 14*60 {
				return errors.New("offsetMinutes must be within ±840")
			}
			p.SetTimeZone(time.Duration(in.OffsetMinutes) * time.Minute)
			return nil
		})
	case "GET /_dev/requests":
		writeJSON(w, http.StatusOK, p.Requests())
	case "DELETE /_dev/requests":
		p.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	case "GET /_dev/users":
		writeJSON(w, http.StatusOK, p.Users())
	case "PUT /_dev/users":
		applyControl(w, r, func(in []User) error { return p.PutUsers(in...) })
	case "GET /_dev/keys":
		keys := p.Keys()
		for i := range keys {
			keys[i].Key = ""
		}
		writeJSON(w, http.StatusOK, keys)
	case "PUT /_dev/keys":
		p.controlPutKey(w, r)
	case "PUT /_dev/endpoints":
		applyControl(w, r, func(in struct {
			KeysSelf    *bool `json:"keysSelf"`
			AuditEvents *bool `json:"auditEvents"`
		}) error {
			if in.KeysSelf != nil {
				p.SetKeysSelfAvailable(*in.KeysSelf)
			}
			if in.AuditEvents != nil {
				p.SetAuditTrailAvailable(*in.AuditEvents)
			}
			return nil
		})
	case "PUT /_dev/clock":
		applyControl(w, r, func(in struct {
			SkewSeconds int64 `json:"skewSeconds"`
		}) error {
			p.SetClockSkew(time.Duration(in.SkewSeconds) * time.Second)
			return nil
		})
	case "PUT /_dev/auditlag":
		applyControl(w, r, func(in struct {
			Seconds int64 `json:"seconds"`
		}) error {
			if in.Seconds < 0 {
				return fmt.Errorf("seconds %d: want 0 or more", in.Seconds)
			}
			p.SetAuditLag(time.Duration(in.Seconds) * time.Second)
			return nil
		})
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

// applyControl decodes the JSON body as a T and hands it to apply: 204 when
// apply succeeds, 400 naming its error when it refuses, 400 naming the
// decode error (apply not called) when the body is not a T.
func applyControl[T any](w http.ResponseWriter, r *http.Request, apply func(T) error) {
	var in T
	if !decodeControl(w, r, &in) {
		return
	}
	if err := apply(in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
