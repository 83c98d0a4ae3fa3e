package dynamo

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// The state item's own fields are packed (#15 §6): two string attributes,
// each one JSON document, beside the attributes that others write or that
// a condition reads (version, adds and dueMarks, which changes bump;
// applied and addsApplied, which never go down; writtenBy, the fence;
// writeId):
//
//	progress  what a waiting change's poll reads: pending (its code and
//	          version), the list last seen and its setting, reconciled, and
//	          how long the last pass held the lease
//	rest      everything else: owned addresses, episodes and notices, own
//	          saves, and the PUT in flight with the recent PUTs while they
//	          fit beside the rest (see splitAt)
//
// Why: a store's cost of a write grows with the actions of its update
// expression, and that of a projected read with the item's attributes
// (moto, the load test's stand-in, takes about 0.7 ms an action: a state
// write of one attribute a field had 31 actions and took 20–25 ms, the
// largest single cost of a reconcile pass in the store). Packed, a state
// write has six.
//
// A version of the function before the packing (a deploy under way, a
// rollback) writes one attribute a field (stateAttrsBefore), pending among
// them in every write: while such attributes are there, an older version
// wrote last, the documents are stale and the attributes are the state
// (statePacked). A packed write removes them: always when it writes two
// items, else when a read found them (Store.olderState) or its condition
// that they are absent failed. The other way round does not hold: a
// version before this one does not read the documents (see
// docs/allowlist-reconcile.md, "Upgrades").
const (
	progressAttr = "progress"
	restAttr     = "rest"
)

// stateProgress is the progress document.
type stateProgress struct {
	Pending        string `json:"pending,omitempty"`
	PendingCode    string `json:"pendingCode,omitempty"`
	PendingVersion int64  `json:"pendingVersion,omitempty"`
	Seen           string `json:"seen,omitempty"` // encodeSent
	LastEnabled    bool   `json:"lastEnabled,omitempty"`
	Reconciled     bool   `json:"reconciled,omitempty"`
	PassMs         int64  `json:"passMs,omitempty"`
}

// stateRest is the rest document. Times are RFC 3339 with nanoseconds,
// lists strings of lines (encodeLines), as the attributes were.
type stateRest struct {
	Owns          string         `json:"owns,omitempty"`
	LastReconcile string         `json:"lastReconcile,omitempty"`
	DriftEpisode  string         `json:"driftEpisode,omitempty"`
	LockoutNotice string         `json:"lockoutNotice,omitempty"`
	TrailNotice   string         `json:"trailNotice,omitempty"`
	RecordNotice  string         `json:"recordNotice,omitempty"`
	HandOff       bool           `json:"handOff,omitempty"`
	RecheckDue    string         `json:"recheckDue,omitempty"`
	Saves         string         `json:"saves,omitempty"`
	Unanswered    string         `json:"unanswered,omitempty"`
	KeyUser       string         `json:"keyUser,omitempty"`
	AlertsDue     bool           `json:"alertsDue,omitempty"`
	DueMarksSeen  int64          `json:"dueMarksSeen,omitempty"`
	InFlight      *stateInFlight `json:"inFlight,omitempty"` // absent: in the #sent item
}

// stateInFlight is the PUT in flight and the recent PUTs, in the rest
// document while they fit beside it.
type stateInFlight struct {
	Sent        string `json:"sent,omitempty"` // encodeSent, added marked
	SentEnable  bool   `json:"sentEnable,omitempty"`
	SentOutcome string `json:"sentOutcome,omitempty"`
	SentAt      string `json:"sentAt,omitempty"`
	Late        string `json:"late,omitempty"` // encodeLines
}

// stateAttrsBefore are the attributes a version before the packed state
// wrote on the state item (one a field, and the list forms before the
// strings of lines).
var stateAttrsBefore = []string{
	"owns", "seen", "lastEnabled", "reconciled", "pending", "pendingCode", "pendingVersion",
	"lastReconcile", "driftEpisode", "lockoutNotice", "trailNotice", "recordNotice", "handOff",
	"recheckDue", "saves", "unanswered", "keyUser", "alertsDue", "dueMarksSeen", "passMs",
	"sent", "sentEnable", "sentOutcome", "sentAt", "late", "lastSeen", "owned", "ownSaves", "lateSent",
}

// attributeBefore is the attribute of stateAttrsBefore that every write of
// a version before the packing wrote.
const attributeBefore = "pending"

// hasStateAttrsBefore reports whether item holds any of stateAttrsBefore.
func hasStateAttrsBefore(item map[string]types.AttributeValue) bool {
	for _, a := range stateAttrsBefore {
		if _, ok := item[a]; ok {
			return true
		}
	}
	return false
}

// packState writes st's own fields (pending clipped) as the two
// documents; the rest with the in-flight part when inFlight.
func packState(st ipguard.PortalState, pending string, inFlight bool) (progress, rest string) {
	p := stateProgress{
		Pending: pending, PendingCode: string(st.PendingCode), PendingVersion: st.PendingVersion,
		Seen: encodeSent(st.LastSeen, nil), LastEnabled: st.LastEnabled, Reconciled: st.Reconciled,
		PassMs: st.LastPass.Milliseconds(),
	}
	saves := make([]string, len(st.OwnSaves))
	for i, t := range st.OwnSaves {
		saves[i] = t.UTC().Format(time.RFC3339Nano)
	}
	windows := make([]string, len(st.UnansweredSaves))
	for i, w := range st.UnansweredSaves {
		windows[i] = w.From.UTC().Format(time.RFC3339Nano) + "/" + w.Until.UTC().Format(time.RFC3339Nano)
	}
	r := stateRest{
		Owns: encodeLines(st.Owned), LastReconcile: fmtTime(st.LastReconcile),
		DriftEpisode: st.DriftEpisode, LockoutNotice: st.LockoutNotice, TrailNotice: st.TrailNotice,
		RecordNotice: st.RecordNotice, HandOff: st.HandOff, RecheckDue: fmtTime(st.RecheckDue),
		Saves: encodeLines(saves), Unanswered: encodeLines(windows), KeyUser: st.KeyUser,
		AlertsDue: st.AlertsDue, DueMarksSeen: st.DueMarks,
	}
	if inFlight {
		r.InFlight = &stateInFlight{
			Sent: encodeSent(st.Sent, st.SentAdded), SentEnable: st.SentEnable, SentOutcome: st.SentOutcome,
			SentAt: fmtTime(st.SentAt), Late: encodeLines(st.LateSent),
		}
	}
	return marshalDoc(p), marshalDoc(r)
}

// marshalDoc is v as JSON without HTML escaping: a portal's entry of
// others may hold "<", ">" or "&" (an address's zone, by hand), each six
// bytes escaped ("\u003c"), and the documents must hold the largest
// allowed list in the room the attributes took (TestPortalStateHoldsTheLargestAllowedList).
func marshalDoc(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // strings, numbers and booleans only: never fails
	return strings.TrimSuffix(b.String(), "\n")
}

// fmtTime is t as the state stores it: RFC 3339 with nanoseconds, "" for
// the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// parseTime reads fmtTime's form back (attribute names what it is, for
// the error).
func parseTime(v, attribute string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("attribute %s: %w", attribute, err)
	}
	return t, nil
}

// statePacked reads item's progress document, and reports whether the
// documents are the state: the progress is there and no attribute of a
// version before the packing is (one that wrote after it). Otherwise the
// item is read from its attributes.
func statePacked(item map[string]types.AttributeValue) (stateProgress, bool, error) {
	var p stateProgress
	v, ok, err := getS(item, progressAttr)
	if err != nil || !ok || hasStateAttrsBefore(item) {
		return p, false, err
	}
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return p, false, fmt.Errorf("attribute %s: %w", progressAttr, err)
	}
	return p, true, nil
}

// stateRestOf reads item's rest document (ok false when it has none: a
// read of the progress only).
func stateRestOf(item map[string]types.AttributeValue) (stateRest, bool, error) {
	var r stateRest
	v, ok, err := getS(item, restAttr)
	if err != nil || !ok {
		return r, false, err
	}
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return r, false, fmt.Errorf("attribute %s: %w", restAttr, err)
	}
	return r, true, nil
}

// inFlightInState reports whether the state item holds the in-flight part
// (the rule of reading, at portalSentPK).
func inFlightInState(item map[string]types.AttributeValue) bool {
	if _, packed, err := statePacked(item); err == nil && packed {
		r, ok, err := stateRestOf(item)
		return err == nil && ok && r.InFlight != nil
	}
	_, ok := item["sent"]
	return ok
}

// decodePackedState reads the state from its packed documents (p is its
// progress, statePacked); the rest is left zero when the item was read
// without it (a poll's projection).
func decodePackedState(item map[string]types.AttributeValue, p stateProgress) (ipguard.PortalState, error) {
	var st ipguard.PortalState
	var err error
	for _, n := range []struct {
		attr string
		to   *int64
	}{{"version", &st.Version}, {"applied", &st.Applied}, {"adds", &st.Adds}, {"addsApplied", &st.AddsApplied}, {"dueMarks", &st.DueMarks}} {
		if *n.to, _, err = getN(item, n.attr); err != nil {
			return st, err
		}
	}
	if st.Pass, _, err = getS(item, "writtenBy"); err != nil {
		return st, err
	}
	st.Pending, st.PendingCode, st.PendingVersion = p.Pending, ipguard.Code(p.PendingCode), p.PendingVersion
	if st.LastSeen, _, err = decodeSent(p.Seen); err != nil {
		return st, fmt.Errorf("attribute %s: seen: %w", progressAttr, err)
	}
	st.LastEnabled, st.Reconciled, st.LastPass = p.LastEnabled, p.Reconciled, time.Duration(p.PassMs)*time.Millisecond
	r, ok, err := stateRestOf(item)
	if err != nil || !ok {
		return st, err
	}
	st.Owned, st.DriftEpisode, st.LockoutNotice = splitLines(r.Owns), r.DriftEpisode, r.LockoutNotice
	st.TrailNotice, st.RecordNotice, st.HandOff, st.KeyUser = r.TrailNotice, r.RecordNotice, r.HandOff, r.KeyUser
	st.AlertsDue = r.AlertsDue || st.DueMarks > r.DueMarksSeen
	if st.LastReconcile, err = parseTime(r.LastReconcile, "lastReconcile"); err != nil {
		return st, err
	}
	if st.RecheckDue, err = parseTime(r.RecheckDue, "recheckDue"); err != nil {
		return st, err
	}
	for i, v := range splitLines(r.Saves) {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return st, fmt.Errorf("own save %d: %w", i, err)
		}
		st.OwnSaves = append(st.OwnSaves, t)
	}
	if st.UnansweredSaves, err = decodeWindows(r.Unanswered); err != nil {
		return st, err
	}
	if f := r.InFlight; f != nil {
		if st.Sent, st.SentAdded, err = decodeSent(f.Sent); err != nil {
			return st, fmt.Errorf("attribute sent: %w", err)
		}
		st.SentEnable, st.SentOutcome, st.LateSent = f.SentEnable, f.SentOutcome, splitLines(f.Late)
		if st.SentAt, err = parseTime(f.SentAt, "sentAt"); err != nil {
			return st, err
		}
	}
	return st, nil
}

// decodeWindows reads the spans of unanswered saves ("from/until" lines).
func decodeWindows(v string) ([]ipguard.SaveWindow, error) {
	var out []ipguard.SaveWindow
	for i, line := range splitLines(v) {
		from, until, ok := strings.Cut(line, "/")
		var w ipguard.SaveWindow
		var ferr, uerr error
		if ok {
			w.From, ferr = time.Parse(time.RFC3339Nano, from)
			w.Until, uerr = time.Parse(time.RFC3339Nano, until)
		}
		if !ok || ferr != nil || uerr != nil {
			return nil, fmt.Errorf("unanswered save %d: %q is not from/until", i, line)
		}
		out = append(out, w)
	}
	return out, nil
}
