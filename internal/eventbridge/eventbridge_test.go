package eventbridge

import (
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

func TestUnwrap(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)
	const head = `"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",`
	tests := []struct {
		name, payload, detail string
		at                    time.Time
	}{
		{"scheduled event", `{` + head + `"detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-11-25T09:15:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/r"],"detail":{}}`, `{}`, at},
		{"scheduler envelope, string detail", `{` + head + `"detail-type":"Scheduled Event","source":"aws.scheduler","time":"2026-11-25T11:15:00+02:00","detail":"{}"}`, `{}`, at},
		{"custom event", `{` + head + `"detail-type":"UserOnboarded","source":"hr","time":"2026-11-25T09:15:00Z","detail":{"id":"u1"}}`, `{"id":"u1"}`, at},
		{"string detail with an object", `{` + head + `"detail-type":"X","source":"x","time":"2026-11-25T09:15:00Z","detail":"{\"id\":\"u1\"}"}`, `{"id":"u1"}`, at},
		{"null detail", `{` + head + `"detail-type":"X","source":"y","time":"2026-11-25T09:15:00Z","detail":null}`, `{}`, at},
		// Not envelopes: a pipeline's own payload keeps every field.
		{"direct payload with a source field", `{"source":"hr-system","id":"u1","allowedIps":["203.0.113.10"]}`, `{"source":"hr-system","id":"u1","allowedIps":["203.0.113.10"]}`, time.Time{}},
		{"direct payload with detail-type", `{"detail-type":"UserOnboarded","id":"u1","allowedIps":[]}`, `{"detail-type":"UserOnboarded","id":"u1","allowedIps":[]}`, time.Time{}},
		{"five of six fields", `{` + head + `"detail-type":"X","source":"y","detail":{"id":"u1"}}`, `{` + head + `"detail-type":"X","source":"y","detail":{"id":"u1"}}`, time.Time{}},
		{"source not a string", `{` + head + `"detail-type":"X","source":{"system":"hr"},"time":"2026-11-25T09:15:00Z","detail":{}}`, `{` + head + `"detail-type":"X","source":{"system":"hr"},"time":"2026-11-25T09:15:00Z","detail":{}}`, time.Time{}},
		{"direct payload", `{"id":"u1","allowedIps":[]}`, `{"id":"u1","allowedIps":[]}`, time.Time{}},
		{"direct backfill", `{"from":"a","to":"b"}`, `{"from":"a","to":"b"}`, time.Time{}},
		{"not an object", `[1,2]`, `[1,2]`, time.Time{}},
		{"empty", ``, ``, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, got, err := Unwrap([]byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if string(d) != tt.detail || !got.Equal(tt.at) {
				t.Errorf("Unwrap = %s, %v; want %s, %v", d, got, tt.detail, tt.at)
			}
		})
	}
}

func TestUnwrapRejectsBadTime(t *testing.T) {
	for _, p := range []string{
		`{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","time":"noon","detail":{}}`,
		`{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","time":5,"detail":{}}`,
	} {
		if _, _, err := Unwrap([]byte(p)); ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Errorf("%s: err = %v, want EInvalid", p, err)
		}
	}
}
