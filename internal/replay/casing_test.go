package replay

import (
	"testing"
	"time"

	"ipguard/internal/onboard"
)

// The function reads a payload's keys case-insensitively and its action
// trimmed and in any case ("Offboard", " ADD "). A replay must read it the
// same way: a replayed offboarding spelt "Offboard" keeps the time of its
// failure record, so a user onboarded again since is not offboarded by it;
// a sync spelt {"Action":"sync"} gets no requestedAt (which a sync refuses);
// a payload with "RequestedAt" keeps it, and one with "RequestedAt": null
// gets its time without a second spelling of the key (which the function
// refuses as given twice). (Before: the replay looked the keys and the
// action up exactly: the offboarding went out with no time and took the
// replay's, and the other two failed as InvalidInput on every replay.)
func TestPayloadReadsTheRequestAsTheFunctionDoes(t *testing.T) {
	const ts = "2026-12-01T10:00:00.123Z"
	at, _ := time.Parse(time.RFC3339Nano, ts)
	rec := func(payload string) string {
		return `{"version":"1.0","timestamp":"` + ts + `","requestContext":{"condition":"RetriesExhausted","approximateInvokeCount":3},"requestPayload":` + payload + `,"responsePayload":null}`
	}
	for _, tc := range []struct {
		name, payload string
		want          time.Time // zero: no time
	}{
		{"offboard spelt Offboard", `{"action":"Offboard","id":"u1"}`, at},
		{"remove spelt with spaces and capitals", `{"action":" REMOVE ","id":"u1","allowedIps":["203.0.113.1"]}`, at},
		{"the action key spelt Action", `{"Action":"offboard","id":"u1"}`, at},
		{"sync spelt Action", `{"Action":"sync"}`, time.Time{}},
		{"its own time spelt RequestedAt", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"],"RequestedAt":"2026-11-30T09:00:00Z"}`, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)},
		{"a null RequestedAt", `{"action":"add","id":"u1","allowedIps":["203.0.113.1"],"RequestedAt":null}`, at},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, _ := Payload(rec(tc.payload))
			req, err := onboard.DecodeRequest(payload)
			if err != nil {
				t.Fatalf("the function refuses the replayed payload %s: %v", payload, err)
			}
			if !req.RequestedAt.Equal(tc.want) {
				t.Errorf("requestedAt = %v, want %v (payload %s)", req.RequestedAt, tc.want, payload)
			}
		})
	}
}
