package eventbridge

import (
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

func TestUnwrap(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 15, 0, 0, time.UTC)
	tests := []struct {
		name, payload, detail string
		at                    time.Time
	}{
		{"scheduled event", `{"version":"0","detail-type":"Scheduled Event","source":"aws.events","time":"2026-11-25T09:15:00Z","detail":{}}`, `{}`, at},
		{"scheduler envelope, string detail", `{"detail-type":"Scheduled Event","source":"aws.scheduler","time":"2026-11-25T11:15:00+02:00","detail":"{}"}`, `{}`, at},
		{"custom event", `{"detail-type":"UserOnboarded","source":"hr","detail":{"id":"u1"}}`, `{"id":"u1"}`, time.Time{}},
		{"string detail with an object", `{"source":"x","detail":"{\"id\":\"u1\"}"}`, `{"id":"u1"}`, time.Time{}},
		{"no detail", `{"detail-type":"X","source":"y"}`, `{}`, time.Time{}},
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
		`{"detail-type":"Scheduled Event","source":"aws.events","time":"noon"}`,
		`{"detail-type":"Scheduled Event","source":"aws.events","time":5}`,
	} {
		if _, _, err := Unwrap([]byte(p)); ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Errorf("%s: err = %v, want EInvalid", p, err)
		}
	}
}
