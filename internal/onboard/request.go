// Package onboard keeps the portal's IP allowlist equal to a desired state
// stored in DynamoDB: it validates changes to users' allowed addresses,
// stores them, and reconciles the portal with everything stored, without
// touching an entry the tool does not own (see reconcile.go and
// docs/allowlist-reconcile.md).
package onboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"

	"ipguard/internal/allowlist"
	"ipguard/internal/behaviour"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// Actions of the onboarding function.
const (
	ActionReplace  = ""         // the seed's shape: replace the user's entries
	ActionAdd      = "add"      // add entries to a user
	ActionRemove   = "remove"   // remove entries from a user
	ActionOffboard = "offboard" // delete the user
	ActionGet      = "get"      // the stored record with each entry's portal state
	ActionSync     = "sync"     // reconcile now
	ActionPreview  = "preview"  // replay recent logins against the desired list
)

// Length caps of the input strings (bytes). Longer values are EInvalid
// before anything is stored.
const (
	MaxIDLength     = 128
	MaxEmailLength  = 254 // RFC 5321 path limit
	MaxEntryLength  = 100 // longer than any valid IPv6 a-b range
	MaxNoteLength   = 256
	MaxTimeLength   = 64
	MaxActionLength = 32
	// MaxListLength bounds allowedIps before its entries are read (the
	// configured limit, 100 by default, is checked after).
	MaxListLength = 1000
	// MaxPreviewDays bounds "days" of a preview: the portal keeps logins at most 180 days.
	MaxPreviewDays = 180
)

// EntryInput is one entry of a request: a string as the seed sends it, or
// the object {"ip", "expiresAt", "note", "place"} of a time-bound exception
// or of an entry with a declared place.
type EntryInput struct {
	IP        string
	ExpiresAt time.Time // zero: no expiry
	Note      string
	// Place (optional, #21 §4) is where logins through the entry come
	// from, canonical (behaviour.ParsePlace): a city of the place table,
	// "lat,lon" or "anywhere". It is stored with the entry and never sent
	// to the portal.
	Place string
}

// Request is one invocation as the caller sent it, before validation of the
// addresses themselves.
type Request struct {
	Action     string
	ID         string
	Email      string
	AllowedIPs []EntryInput
	Days       int
	// RequestedAt is when the change was asked for: the optional
	// "requestedAt" of a direct payload, else the EventBridge event's time
	// (a replay keeps the original); zero: when it arrives.
	RequestedAt time.Time
	// ReplayOf, optional, is the request id of the invocation a replay
	// sends again (cmd/replay: the on-failure record's request id): the
	// change is dated by that invocation's first arrival when it is still
	// remembered (Arrivals, ArrivalKeep), else by RequestedAt.
	ReplayOf string
	// timeField names where RequestedAt came from, for an error about it:
	// "time" (the EventBridge event's), else "requestedAt".
	timeField string
}

// fieldsOf says which request fields each action accepts; any other known
// field is EInvalid for that action. Unknown fields are ignored (pipelines
// add their own, such as "source").
var fieldsOf = map[string]map[string]bool{
	ActionReplace:  {"id": true, "email": true, "allowedIps": true, "requestedAt": true, "replayOf": true},
	ActionAdd:      {"id": true, "email": true, "allowedIps": true, "requestedAt": true, "replayOf": true},
	ActionRemove:   {"id": true, "allowedIps": true, "requestedAt": true, "replayOf": true},
	ActionOffboard: {"id": true, "requestedAt": true, "replayOf": true},
	ActionGet:      {"id": true},
	ActionSync:     {},
	ActionPreview:  {"days": true},
}

// auditActions are the AuditFunction's actions, named as such when sent here.
var auditActions = map[string]bool{"status": true, "test-alert": true, "learn": true, "audit": true}

// knownFields are the request's field names; "userId" is an alias of "id".
var knownFields = []string{"action", "id", "userId", "email", "allowedIps", "days", "requestedAt", "replayOf"}

// DecodeRequest reads an invocation payload (invoked directly, or the detail
// of an EventBridge event):
//
//	{"id": "...", "email": "...", "allowedIps": ["...", {"ip": "...", "expiresAt": "RFC3339", "note": "...", "place": "Berlin"}]}
//	{"action": "add"|"remove", "id": "...", "allowedIps": [...]}
//	{"action": "offboard"|"get", "id": "..."}
//	(replace, add, remove and offboard also take "requestedAt": RFC 3339)
//	{"action": "sync"}
//	{"action": "preview", "days": N}
//
// Keys match case-insensitively, but a key given twice (in any spelling,
// e.g. "ID" and "Id") is EInvalid naming both: the result never depends on
// which one a map happens to yield. "userId" is an alias of "id". Every
// string is length-capped. Wrong types, unknown actions and fields that make
// no sense for the action are EInvalid errors naming the field.
func DecodeRequest(payload []byte) (Request, error) {
	return decodeRequest(payload, ActionReplace)
}

// decodeRequest is DecodeRequest with the action a payload without
// "action" means.
func decodeRequest(payload []byte, defaultAction string) (Request, error) {
	props, err := ipguard.ObjectMembers(payload, "event")
	if err != nil {
		return Request{}, err
	}
	obj, err := ipguard.ByKnownName(props, knownFields, "")
	if err != nil {
		return Request{}, err
	}
	r := Request{Action: defaultAction}
	if raw, ok := obj["action"]; ok && string(raw) != "null" {
		if r.Action, err = str(raw, "action", MaxActionLength); err != nil {
			return Request{}, err
		}
		r.Action = strings.ToLower(strings.TrimSpace(r.Action))
		if r.Action == "onboard" || r.Action == "replace" {
			r.Action = ActionReplace
		}
	}
	allowed, ok := fieldsOf[r.Action]
	if !ok {
		if auditActions[r.Action] {
			return Request{}, ipguard.Invalid("action", r.Action, "is an action of the AuditFunction: invoke that function with it; this one takes add, remove, offboard, get, sync or preview (or no action to replace a user's entries)")
		}
		return Request{}, ipguard.Invalid("action", r.Action, "is not an action; use add, remove, offboard, get, sync or preview (or no action to replace a user's entries)")
	}
	for _, name := range knownFields {
		canon := name
		if name == "userId" {
			canon = "id"
		}
		if raw, present := obj[name]; present && name != "action" && !allowed[canon] && string(raw) != "null" {
			value := string(raw)
			var s string
			if json.Unmarshal(raw, &s) == nil {
				value = s
			}
			return Request{}, ipguard.Invalid(name, value, "makes no sense for action %q", actionName(r.Action))
		}
	}

	id, err := optionalString(obj, "id", MaxIDLength)
	if err != nil {
		return Request{}, err
	}
	alias, err := optionalString(obj, "userId", MaxIDLength)
	if err != nil {
		return Request{}, err
	}
	switch {
	case strings.TrimSpace(id) == "":
		r.ID = alias
	case strings.TrimSpace(alias) != "" && ipguard.CanonicalUserID(alias) != ipguard.CanonicalUserID(id):
		return Request{}, ipguard.Invalid("userId", alias, "differs from id %q; send one of them", id)
	default:
		r.ID = id
	}
	if r.Email, err = optionalString(obj, "email", MaxEmailLength); err != nil {
		return Request{}, err
	}
	at, err := optionalString(obj, "requestedAt", MaxTimeLength)
	if err != nil {
		return Request{}, err
	}
	if strings.TrimSpace(at) != "" {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(at))
		if err != nil {
			return Request{}, ipguard.Invalid("requestedAt", at, "must be an RFC 3339 time such as 2026-12-01T18:00:00Z (when the change was asked for; a replay keeps the original)")
		}
		r.RequestedAt = RequestTime(t)
	}
	if r.ReplayOf, err = optionalString(obj, "replayOf", MaxIDLength); err != nil {
		return Request{}, err
	}
	if r.ReplayOf = strings.TrimSpace(r.ReplayOf); strings.ContainsFunc(r.ReplayOf, func(c rune) bool { return c <= ' ' || c > '~' }) {
		return Request{}, ipguard.Invalid("replayOf", r.ReplayOf, "must be the request id of the invocation replayed (printable ASCII, no spaces)")
	}
	if raw, ok := obj["days"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &r.Days); err != nil || r.Days < 1 || r.Days > MaxPreviewDays {
			return Request{}, ipguard.Invalid("days", string(raw), "must be a whole number of days from 1 to %d", MaxPreviewDays)
		}
	}
	if r.Action == ActionPreview && r.Days == 0 {
		return Request{}, ipguard.Invalid("days", "", "is required: how many days of logins to replay, from 1 to %d", MaxPreviewDays)
	}
	if !allowed["allowedIps"] {
		return r, nil
	}
	raw, ok := obj["allowedIps"]
	if !ok || string(raw) == "null" {
		return Request{}, ipguard.Invalid("allowedIps", "", "is required: a list of addresses, CIDR blocks or a-b ranges")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return Request{}, ipguard.Invalid("allowedIps", string(raw), "must be a list of strings or {\"ip\", \"expiresAt\", \"note\", \"place\"} objects")
	}
	if len(items) > MaxListLength {
		// The same words as every other entry cap: a user holds at most 100.
		return Request{}, ipguard.Invalid("allowedIps", "", "has %d entries; at most %d are allowed", len(items), allowlist.DefaultLimits.MaxEntries)
	}
	for i, item := range items {
		field := fmt.Sprintf("allowedIps[%d]", i)
		e, err := decodeEntry(item, field)
		if err != nil {
			return Request{}, err
		}
		if r.Action == ActionRemove && !e.ExpiresAt.IsZero() {
			return Request{}, ipguard.Invalid(field+".expiresAt", e.ExpiresAt.Format(time.RFC3339), "makes no sense for action remove (name the entry only)")
		}
		if r.Action == ActionRemove && e.Note != "" {
			return Request{}, ipguard.Invalid(field+".note", e.Note, "makes no sense for action remove (name the entry only)")
		}
		if r.Action == ActionRemove && e.Place != "" {
			return Request{}, ipguard.Invalid(field+".place", e.Place, "makes no sense for action remove (name the entry only)")
		}
		r.AllowedIPs = append(r.AllowedIPs, e)
	}
	return r, nil
}

func actionName(a string) string {
	if a == ActionReplace {
		return "replace (no action)"
	}
	return a
}

// decodeEntry reads one entry: a string, or {"ip", "expiresAt", "note", "place"}.
func decodeEntry(item json.RawMessage, field string) (EntryInput, error) {
	t := bytes.TrimSpace(item)
	if len(t) > 0 && t[0] == '"' {
		s, err := str(item, field, MaxEntryLength)
		return EntryInput{IP: s}, err
	}
	props, err := ipguard.ObjectMembers(item, field)
	if err != nil {
		return EntryInput{}, ipguard.Invalid(field, string(item), "must be a string or an object {\"ip\", \"expiresAt\", \"note\", \"place\"}")
	}
	obj, err := ipguard.ByKnownName(props, entryFields, field+".")
	if err != nil {
		return EntryInput{}, err
	}
	if name, ok := ipguard.UnknownMember(props, entryFields); ok {
		return EntryInput{}, ipguard.Invalid(field+"."+name, "", "is not a field of an entry (ip, expiresAt, note, place)")
	}
	var e EntryInput
	if e.IP, err = optionalString(obj, "ip", MaxEntryLength); err != nil {
		return EntryInput{}, prefixField(err, field+".")
	}
	if strings.TrimSpace(e.IP) == "" {
		return EntryInput{}, ipguard.Invalid(field+".ip", "", "is required")
	}
	if e.Note, err = optionalString(obj, "note", MaxNoteLength); err != nil {
		return EntryInput{}, prefixField(err, field+".")
	}
	for _, r := range e.Note {
		if humantext.Unsafe(r) {
			return EntryInput{}, ipguard.Invalid(field+".note", e.Note, "must not contain control, invisible or bidi characters (%U)", r)
		}
	}
	if e.Place, err = decodePlace(obj, field); err != nil {
		return EntryInput{}, err
	}
	exp, err := optionalString(obj, "expiresAt", MaxTimeLength)
	if err != nil {
		return EntryInput{}, prefixField(err, field+".")
	}
	if raw, ok := obj["expiresAt"]; ok && string(raw) != "null" && strings.TrimSpace(exp) == "" {
		// An empty expiry is a template that lost its value, not "never".
		return EntryInput{}, ipguard.Invalid(field+".expiresAt", exp, "is empty; give an RFC 3339 time such as 2026-12-01T18:00:00Z, or leave expiresAt out for an entry that does not expire")
	}
	if strings.TrimSpace(exp) != "" {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(exp))
		if err != nil {
			return EntryInput{}, ipguard.Invalid(field+".expiresAt", exp, "must be an RFC 3339 time such as 2026-12-01T18:00:00Z")
		}
		e.ExpiresAt = t.UTC().Truncate(time.Second) // DynamoDB keeps seconds
	}
	return e, nil
}

// entryFields are the fields of an entry object.
var entryFields = []string{"ip", "expiresAt", "note", "place"}

// decodePlace reads an entry's optional "place" and returns its canonical
// text (see behaviour.ParsePlace); a place that is not one is EInvalid
// naming "<field>.place" and the value.
func decodePlace(obj map[string]json.RawMessage, field string) (string, error) {
	raw, ok := obj["place"]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	s, err := str(raw, field+".place", behaviour.MaxPlaceLength)
	if err != nil {
		return "", err
	}
	for _, r := range s {
		if humantext.Unsafe(r) {
			return "", ipguard.Invalid(field+".place", s, "must not contain control, invisible or bidi characters (%U)", r)
		}
	}
	p, err := behaviour.ParsePlace(s)
	if err != nil {
		return "", ipguard.Invalid(field+".place", s, "%v", err)
	}
	return p.Canonical, nil
}

func prefixField(err error, prefix string) error {
	var e *ipguard.Error
	if errors.As(err, &e) && e.Field != "" {
		c := *e
		c.Field = prefix + c.Field
		return &c
	}
	return err
}

// canonicalID trims the id and lower-cases a GUID (the form the portal's
// login events carry), so that the audit finds the user.
func canonicalID(id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return "", ipguard.Invalid("id", "", "is required: the DocSpace user id")
	}
	if len(id) > MaxIDLength {
		return "", ipguard.Invalid("id", id, "is %d bytes long; at most %d are allowed", len(id), MaxIDLength)
	}
	for _, r := range id {
		if unicode.IsSpace(r) || humantext.Unsafe(r) {
			return "", ipguard.Invalid("id", id, "must not contain white space, control, invisible or bidi characters (%U)", r)
		}
	}
	// The id names the user in the portal's people/{id}: a "/", "?" or "#"
	// would make that path another route, so no portal user id has one.
	if strings.ContainsAny(id, "/?#") {
		return "", ipguard.Invalid("id", id, "must not contain \"/\", \"?\" or \"#\": it is the DocSpace user id (a GUID)")
	}
	return ipguard.CanonicalUserID(id), nil
}

func canonicalEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", ipguard.Invalid("email", "", "is required")
	}
	for _, r := range email {
		if humantext.Unsafe(r) {
			return "", ipguard.Invalid("email", email, "must not contain control, invisible or bidi characters (%U)", r)
		}
	}
	if len(email) > MaxEmailLength {
		return "", ipguard.Invalid("email", email, "is %d bytes long; at most %d are allowed", len(email), MaxEmailLength)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", ipguard.Invalid("email", email, "is not a valid e-mail address (expected user@example.com)")
	}
	local, domain, _ := strings.Cut(email, "@")
	if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") || strings.HasPrefix(domain, "[") {
		return "", ipguard.Invalid("email", email, "is not a valid e-mail address (expected user@example.com)")
	}
	return email, nil
}

// str reads a JSON string of at most max bytes.
func str(raw json.RawMessage, field string, max int) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", ipguard.Invalid(field, string(raw), "must be a string")
	}
	if len(s) > max {
		return "", ipguard.Invalid(field, s, "is %d bytes long; at most %d are allowed", len(s), max)
	}
	return s, nil
}

func optionalString(obj map[string]json.RawMessage, key string, max int) (string, error) {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	return str(raw, key, max)
}
