// Package findingsbus puts every finding the tool alerts about on an
// EventBridge bus (FINDINGS_BUS_NAME), one event per finding, as security
// tools do (GuardDuty, Security Hub): source "docspace-ip-guard",
// detail-type "DocSpace IP Guard Finding", detail the finding's JSON as in
// the SNS alert plus "findingId" (stable: the same finding always has the
// same id) and "ocsf" (the finding as an OCSF Detection Finding, package
// ocsf).
//
// It sits at the publisher seam: Publisher wraps the SNS publisher, so
// every alert of every kind reaches the bus without the domain packages
// knowing. Delivery to the bus is at least once: a failed entry waits in an
// outbox (Outbox) and the next audit run sends it again (Bus.Retry);
// consumers deduplicate by detail.findingId.
package findingsbus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/ocsf"
	"ipguard/internal/redact"
)

// The event's source and detail-type, for rules.
const (
	Source     = "docspace-ip-guard"
	DetailType = "DocSpace IP Guard Finding"
)

// MaxEntryBytes is EventBridge's bound for one entry (detail, source,
// detail-type and resources together), and for a call's entries together:
// each must be less than it ("less than 256KB"); MaxBatch entries go in one
// PutEvents.
const (
	MaxEntryBytes = 256 * 1024
	MaxBatch      = 10
)

// Entry is one event for the bus. ID is the finding's stable id (also
// detail.findingId); Time is when the finding's latest login happened
// (else when the alert was made); Test marks the test alert, which is never
// kept in the outbox.
type Entry struct {
	ID     string          `json:"id"`
	Time   time.Time       `json:"time"`
	Detail json.RawMessage `json:"detail"`
	Test   bool            `json:"test,omitempty"`
	// Kept is when the entry went into the outbox (zero before).
	Kept time.Time `json:"kept,omitzero"`
	// refused: EventBridge refused the entry for good (refusedForGood).
	refused bool
}

// timeBytes is what EventBridge counts for an entry's Time.
const timeBytes = 14

// Size is what EventBridge counts for the entry: detail, source,
// detail-type and 14 bytes for its Time.
func (e Entry) Size() int { return len(e.Detail) + len(Source) + len(DetailType) + timeBytes }

// Events are the bus entries of an alert (pure). An audit alert (a JSON
// body with "events") gives one entry per finding: the finding's JSON
// with "portal", "backfill" and "notices" of the alert added; any other
// alert (allowlist_drift, lock-out risk, api_key_expiring, ...) gives one
// entry: its JSON body. Each detail gets "findingId" and "ocsf"; a test
// alert keeps its "test": true. A body that is not a JSON object gives
// one entry {"kind": "message", "text": body}.
//
// A detail too large for one entry loses the raw events first (the
// finding's "raw", the OCSF raw_data); the finding itself always stays.
func Events(portal string, a ipguard.Alert, now time.Time) ([]Entry, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(a.Default), &body); err != nil || body == nil {
		text, _ := json.Marshal(a.Default)
		body = map[string]json.RawMessage{"kind": json.RawMessage(`"message"`), "text": text}
	}
	test := isTrue(body["test"])
	if p := str(body["portal"]); p != "" {
		portal = p
	}
	evs, isAudit := body["events"]
	if !isAudit {
		kind, sev := str(body["kind"]), str(body["severity"])
		if sev == "" {
			sev = a.Severity
		}
		id := stableID(portal, kind, a.Default)
		title := a.Subject
		if title == "" {
			title = kind
		}
		e, err := entry(id, body, ocsf.Alert{UID: id, Portal: portal, Kind: kind, Severity: sev, Title: title, Time: now, Test: test}, now, test)
		if err != nil {
			return nil, err
		}
		return []Entry{e}, nil
	}
	var findings []json.RawMessage
	if err := json.Unmarshal(evs, &findings); err != nil {
		return nil, ipguard.Errorf(ipguard.EInternal, "findings bus: the alert's events are not a list: %w", err)
	}
	out := make([]Entry, 0, len(findings))
	for _, raw := range findings {
		var f audit.Finding
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, ipguard.Errorf(ipguard.EInternal, "findings bus: a finding is not an object: %w", err)
		}
		_ = json.Unmarshal(raw, &f) // the fields the OCSF mapping reads; unknown ones stay in obj
		obj["portal"], _ = json.Marshal(portal)
		for _, k := range []string{"backfill", "notices", "test"} {
			if v, ok := body[k]; ok {
				obj[k] = v
			}
		}
		id := findingID(portal, f)
		at := now
		if t, err := time.Parse(time.RFC3339, f.Date); err == nil {
			at = t
		}
		e, err := entry(id, obj, ocsf.Alert{UID: id, Portal: portal, Kind: f.Kind, Severity: f.Severity, Title: f.Reason, Time: at, Finding: &f, Test: test}, at, test)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// entry builds the detail: obj plus findingId and ocsf, smaller when needed:
// first without the raw events, then also with every long text cut to
// maxFieldBytes (audit.ClipFields; the JSON's other strings alike), so that
// no finding the audit alerts is too large for the bus.
func entry(id string, obj map[string]json.RawMessage, oa ocsf.Alert, at time.Time, test bool) (Entry, error) {
	obj["findingId"], _ = json.Marshal(id)
	for attempt := 0; ; attempt++ {
		rec := ocsf.Finding(oa)
		if attempt > 0 {
			for i := range rec.Evidences {
				if auth, ok := rec.Evidences[i].Data.(ocsf.Authentication); ok {
					auth.RawData = ""
					rec.Evidences[i].Data = auth
				}
			}
		}
		o, err := marshal(rec)
		if err != nil {
			return Entry{}, err
		}
		obj["ocsf"] = o
		d, err := marshal(obj)
		if err != nil {
			return Entry{}, err
		}
		// Cleaned of secrets here, before it is sized, sent, kept in the
		// outbox or the digest.
		d = json.RawMessage(redact.Clean(string(d)))
		e := Entry{ID: id, Time: at.UTC(), Detail: d, Test: test}
		if e.Size() < MaxEntryBytes {
			return e, nil
		}
		switch attempt {
		case 0:
			delete(obj, "raw")
			if oa.Finding != nil {
				f := *oa.Finding
				f.Raw = nil
				oa.Finding = &f
			}
		case 1:
			for k, v := range obj {
				if k != "ocsf" && k != "findingId" {
					obj[k] = clipJSON(v)
				}
			}
			if oa.Finding != nil {
				f := audit.ClipFields(*oa.Finding)
				oa.Finding = &f
			}
			oa.Title = humantext.Clip(oa.Title, maxFieldBytes)
		default:
			return Entry{}, ipguard.Errorf(ipguard.EInternal, "findings bus: finding %s is %d bytes even without its raw events and with its text cut, not less than EventBridge's %d", id, e.Size(), MaxEntryBytes)
		}
	}
}

// maxFieldBytes bounds each text of a detail too large for one entry.
const maxFieldBytes = 1000

// clipJSON cuts every string in v longer than maxFieldBytes (humantext.Clip),
// at any depth; v is returned as it was when it does not parse.
func clipJSON(v json.RawMessage) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return v
	}
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case string:
			return humantext.Clip(t, maxFieldBytes)
		case []any:
			for i := range t {
				t[i] = walk(t[i])
			}
		case map[string]any:
			for k := range t {
				t[k] = walk(t[k])
			}
		}
		return x
	}
	out, err := marshal(walk(x))
	if err != nil {
		return v
	}
	return out
}

// marshal encodes without HTML escaping (EventBridge counts bytes).
func marshal(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, ipguard.Errorf(ipguard.EInternal, "findings bus: encode: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// findingID is the stable id of an audit finding: the portal, the kind and
// the login's event id; a burst (no single event) its address and first
// and last dates; lost coverage its cause too (two causes over one span
// are two findings).
func findingID(portal string, f audit.Finding) string {
	if f.EventID != 0 {
		return stableID(portal, f.Kind, strconv.FormatInt(f.EventID, 10))
	}
	if f.Cause != "" {
		return stableID(portal, f.Kind, f.IP+"|"+f.FirstAt+"|"+f.Date, f.Cause)
	}
	return stableID(portal, f.Kind, f.IP+"|"+f.FirstAt+"|"+f.Date)
}

// stableID hashes its parts into 32 hex characters.
func stableID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func isTrue(raw json.RawMessage) bool {
	var b bool
	_ = json.Unmarshal(raw, &b)
	return b
}
