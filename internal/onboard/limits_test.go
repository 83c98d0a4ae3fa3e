package onboard

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"ipguard/internal/behaviour"
)

// Every cap says the same thing in the same words, and the README says the
// same numbers: "at most 100 are allowed" for a user's entries however the
// request passes it, "N bytes long; at most M are allowed" for every string.
func TestLimitMessagesAgreeWithEachOtherAndTheREADME(t *testing.T) {
	entries := func(n int) string {
		ips := make([]string, n)
		for i := range ips {
			ips[i] = fmt.Sprintf("%q", fmt.Sprintf("203.0.%d.%d", i/250, i%250+1))
		}
		return strings.Join(ips, ",")
	}
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, payload, says string
		before              string // a request sent first
	}{
		{"101 entries", `{"id":"u1","email":"a@example.com","allowedIps":[` + entries(101) + `]}`, "allowedIps: has 101 entries; at most 100 are allowed", ""},
		{"1001 entries", `{"id":"u1","email":"a@example.com","allowedIps":[` + entries(1001) + `]}`, "allowedIps: has 1001 entries; at most 100 are allowed", ""},
		{"an add past 100", `{"action":"add","id":"u1","allowedIps":[` + entries(2) + `]}`, "would give the user 102 entries; at most 100 are allowed",
			`{"id":"u1","email":"a@example.com","allowedIps":[` + strings.ReplaceAll(entries(102), `"203.0.0.1","203.0.0.2",`, "") + `]}`},
		{"id", `{"id":"` + long[:MaxIDLength+1] + `","email":"a@example.com","allowedIps":["203.0.113.1"]}`, fmt.Sprintf("is %d bytes long; at most %d are allowed", MaxIDLength+1, MaxIDLength), ""},
		{"email", `{"id":"u1","email":"` + long[:MaxEmailLength-11] + `@example.com","allowedIps":["203.0.113.1"]}`, fmt.Sprintf("bytes long; at most %d are allowed", MaxEmailLength), ""},
		{"note", `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.1","note":"` + long + `"}]}`, fmt.Sprintf("is 300 bytes long; at most %d are allowed", MaxNoteLength), ""},
		{"place", `{"id":"u1","email":"a@example.com","allowedIps":[{"ip":"203.0.113.1","place":"` + long + `"}]}`, fmt.Sprintf("is 300 bytes long; at most %d are allowed", behaviour.MaxPlaceLength), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			if tt.before != "" {
				e.do(t, tt.before)
			}
			_, err := e.s.Handle(context.Background(), []byte(tt.payload))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v, want it to say %q", err, tt.says)
			}
		})
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"more than 100 entries",
		fmt.Sprintf("`id` %d, `email` %d, each entry %d, `note` %d, `place` %d, `expiresAt` %d, `action` %d bytes",
			MaxIDLength, MaxEmailLength, MaxEntryLength, MaxNoteLength, behaviour.MaxPlaceLength, MaxTimeLength, MaxActionLength),
	} {
		if !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), want) {
			t.Errorf("README does not say %q", want)
		}
	}
}
