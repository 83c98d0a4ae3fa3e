package audit

import (
	"strings"
	"testing"
	"time"

	"ipguard/internal/eventbridge"
	"ipguard/internal/ipguard"
)

// decode reads a payload as the Lambda handler does: envelope first.
func decode(payload []byte, now time.Time) (Trigger, error) {
	detail, at, err := eventbridge.Unwrap(payload)
	if err != nil {
		return Trigger{}, err
	}
	return DecodeTrigger(detail, at, now)
}

func TestDecodeTrigger(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 30, 0, time.UTC)
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	tests := []struct {
		name     string
		payload  string
		to, from time.Time
		backfill bool
	}{
		{"scheduled event", `{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","time":"2026-11-25T10:00:00Z","detail":{}}`, at("2026-11-25T10:00:00Z"), time.Time{}, false},
		{"scheduler envelope", `{"version":"0","id":"y","detail-type":"Scheduled Event","source":"aws.scheduler","time":"2026-11-25T09:45:00Z","detail":"{}"}`, at("2026-11-25T09:45:00Z"), time.Time{}, false},
		{"scheduler input as is", `{}`, now, time.Time{}, false},
		{"empty payload", ``, now, time.Time{}, false},
		{"null payload", `null`, now, time.Time{}, false},
		{"future time pulled back", `{"version":"0","id":"z","detail-type":"Scheduled Event","source":"aws.events","time":"2026-11-25T11:00:00Z","detail":{}}`, now, time.Time{}, false},
		{"backfill", `{"from":"2026-11-24T00:00:00Z","to":"2026-11-24T06:00:00+02:00"}`, at("2026-11-24T04:00:00Z"), at("2026-11-24T00:00:00Z"), true},
		{"audit by name", `{"action": "Audit"}`, now, time.Time{}, false},
		{"backfill in detail", `{"version":"0","id":"b","detail-type":"Backfill","source":"ops","time":"2026-11-25T10:00:00Z","detail":{"from":"2026-11-24T00:00:00Z","to":"2026-11-24T01:00:00Z"}}`, at("2026-11-24T01:00:00Z"), at("2026-11-24T00:00:00Z"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode([]byte(tt.payload), now)
			if err != nil {
				t.Fatal(err)
			}
			if !got.To.Equal(tt.to) || !got.From.Equal(tt.from) || got.Backfill != tt.backfill {
				t.Errorf("got %+v, want to=%v from=%v backfill=%v", got, tt.to, tt.from, tt.backfill)
			}
		})
	}
}

func TestDecodeTriggerRejects(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, p := range []string{
		`[1]`,
		`{"from":"yesterday","to":"2026-11-24T01:00:00Z"}`,
		`{"from":"2026-11-24T01:00:00Z"}`,
		`{"from":"2026-11-24T02:00:00Z","to":"2026-11-24T01:00:00Z"}`,
		`{"from":"2026-11-26T02:00:00Z","to":"2026-11-27T01:00:00Z"}`,
		`{"version":"0","id":"n","detail-type":"Scheduled Event","source":"aws.events","time":"noon","detail":{}}`,
		// Anything a run does not know never runs an audit (it would move the checkpoint).
		`{"action":"statsu"}`,
		`{"action":"sync"}`,
		`{"action":3}`,
		`{"dryRun":true}`,
		`{"from":"2026-11-24T00:00:00Z","to":"2026-11-24T01:00:00Z","user":"u1"}`,
		`{"version":"0","id":"d","detail-type":"Other","source":"ops","time":"2026-11-25T10:00:00Z","detail":{"action":"reset"}}`,
		`{"from": "2026-11-24T00:00:00Z",}`,
		`"{}"`,
	} {
		if _, err := decode([]byte(p), now); ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Errorf("%s: err = %v, want EInvalid", p, err)
		}
	}
}

// Malformed JSON is InvalidInput that says where it breaks.
func TestDecodeTriggerNamesTheJSONPosition(t *testing.T) {
	_, err := decode([]byte("{\n  \"from\": \"2026-11-24T00:00:00Z\"\n  \"to\": \"2026-11-24T01:00:00Z\"\n}"), time.Now())
	if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "line 3, column 3") {
		t.Errorf("err = %v, want EInvalid at line 3, column 3", err)
	}
}

// An action the audit function does not know, or a field a run does not
// know, is answered with the list of what it does know, learn included
// (events/audit-learn.json): a typo in "learn" must not send the operator
// looking among status, test-alert and audit only.
func TestDecodeTriggerNamesEveryActionOfTheFunction(t *testing.T) {
	for _, p := range []string{`{"action":"lern","days":30}`, `{"days":30,"dryRun":true}`} {
		_, err := decode([]byte(p), time.Now())
		if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "learn") {
			t.Errorf("%s: err = %v, want EInvalid naming learn among the actions", p, err)
		}
	}
}

// An action of the onboarding function sent to the audit says which
// function takes it.
func TestDecodeTriggerNamesTheFunctionOfAnOnboardingAction(t *testing.T) {
	for _, a := range []string{"sync", "get", "add", "remove", "offboard", "preview", "replace"} {
		_, err := decode([]byte(`{"action":"`+a+`"}`), time.Now())
		if ipguard.ErrorCode(err) != ipguard.EInvalid || !strings.Contains(err.Error(), "OnboardFunction") {
			t.Errorf("%s: %v; want InvalidInput naming the OnboardFunction", a, err)
		}
	}
}
