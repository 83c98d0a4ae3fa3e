package audit

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// Any payload gives a trigger or an InvalidInput naming the field ("event",
// "from", "to", "action", or a field a run does not take). A trigger's window ends no later than now; a backfill's
// window is non-empty and in UTC, and a scheduled run has no start of its own.
// A rejected payload given to the service changes nothing stored (checked
// against the in-memory store), reads nothing and publishes nothing.
func FuzzDecodeTrigger(f *testing.F) {
	for _, s := range []string{`{}`, `null`, ``, `{"from":"2026-11-24T00:00:00Z","to":"2026-11-25T00:00:00Z"}`,
		`{"from":"2026-11-25T00:00:00+03:00","to":"2026-11-25T00:00:00.0000001Z"}`, `{"from":"2026-11-25T00:00:00Z"}`,
		`{"from":1,"to":2}`, `[]`, `{"from":"2030-01-01T00:00:00Z","to":"2031-01-01T00:00:00Z"}`, `{"action":"status"}`,
		`{"action":"audit"}`, `{"dryRun":true}`, `{"from":"2026-11-24T00:00:00Z",}`} {
		f.Add([]byte(s), int64(0), int64(1764064800))
	}
	f.Fuzz(func(t *testing.T, payload []byte, atSec, nowSec int64) {
		now := time.Unix(nowSec%(1<<34), 0)
		var at time.Time
		if atSec != 0 {
			at = time.Unix(atSec%(1<<34), 0)
		}
		tr, err := DecodeTrigger(payload, at, now)
		if err != nil {
			var ie *ipguard.Error
			if !errors.As(err, &ie) || ie.Code != ipguard.EInvalid || !namesAField(payload, ie.Field) {
				t.Fatalf("%q: %v, want InvalidInput naming event, from, to, action or the unknown field", payload, err)
			}
			svc, src, st, pub := newAudit()
			svc.Now = func() time.Time { return now }
			if _, err := svc.Handle(context.Background(), payload, at); ipguard.ErrorCode(err) != ipguard.EInvalid {
				t.Fatalf("%q: the service answered %v, want InvalidInput", payload, err)
			}
			if st.Saves != 0 || st.Writes != 0 || st.Owner(LeaseName) != "" || len(pub.sent) != 0 || src.calls != 0 {
				t.Fatalf("%q was rejected but the service saved %d, wrote %d, leased %q, published %d, read %d pages",
					payload, st.Saves, st.Writes, st.Owner(LeaseName), len(pub.sent), src.calls)
			}
			return
		}
		if tr.To.After(now) || tr.To.Location() != time.UTC {
			t.Fatalf("%q: window ends %v, after now %v or not in UTC", payload, tr.To, now)
		}
		if tr.Backfill && (!tr.From.Before(tr.To) || tr.From.Location() != time.UTC) {
			t.Fatalf("%q: backfill window %v to %v", payload, tr.From, tr.To)
		}
		if !tr.Backfill && !tr.From.IsZero() {
			t.Fatalf("%q: a scheduled run with a start %v", payload, tr.From)
		}
	})
}

// namesAField: field is one a run reads, or a member of payload it refused.
func namesAField(payload []byte, field string) bool {
	switch field {
	case "event", "from", "to", "action":
		return true
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil {
		return false
	}
	for k := range obj {
		if field != "" && humantext.Line(fieldName(k), 200) == field { // as ipguard.Invalid shows it
			return true
		}
	}
	return false
}
