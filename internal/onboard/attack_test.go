package onboard

import (
	"context"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// raceStore runs afterRead once, right after the next GetUser of the user
// it names has answered: another request's write lands between this
// request's read and its write.
type raceStore struct {
	*fakeStore
	id        string
	afterRead func()
}

func (r *raceStore) GetUser(ctx context.Context, id string) (ipguard.User, bool, error) {
	u, ok, err := r.fakeStore.GetUser(ctx, id)
	if f := r.afterRead; f != nil && id == r.id {
		r.afterRead = nil
		f()
	}
	return u, ok, err
}

// An offboarding never deletes a record that a newer request wrote after
// the offboarding read it: the delete is conditional like every other
// write, so the newer request's entries stay (keepNewer) and reach the
// portal. (Before: DeleteUser was unconditional, and a newer add that
// landed between the offboarding's read and its delete was erased from
// the store and then from the portal, though its caller was told it was
// applied.)
func TestOffboardingNeverDeletesANewerWriteThatLandedAfterItsRead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		newer string // the request that lands between the read and the delete
		want  string // the portal afterwards
	}{
		{"a newer add", `{"action":"add","id":"u1","requestedAt":"` + t0.Add(-time.Minute).Format(time.RFC3339) + `","allowedIps":["203.0.113.20"]}`, "192.0.2.1!,203.0.113.20"},
		{"a newer onboarding (replace)", `{"id":"u1","email":"a@example.com","requestedAt":"` + t0.Add(-time.Minute).Format(time.RFC3339) + `","allowedIps":["203.0.113.21"]}`, "192.0.2.1!,203.0.113.21"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.do(t, `{"id":"u1","email":"a@example.com","requestedAt":"`+t0.Add(-time.Hour).Format(time.RFC3339)+`","allowedIps":["203.0.113.10"]}`)
			rs := &raceStore{fakeStore: e.st, id: "u1"}
			e.s.Store = rs
			rs.afterRead = func() {
				if res, err := e.s.Handle(context.Background(), []byte(tc.newer)); err != nil || !res.Stored {
					t.Errorf("the newer request: %v stored=%v", err, res.Stored)
				}
			}
			res, err := e.handle(`{"action":"offboard","id":"u1","requestedAt":"` + t0.Add(-30*time.Minute).Format(time.RFC3339) + `"}`)
			if err != nil {
				t.Fatalf("offboard: %v", err)
			}
			u, found, _ := e.st.GetUser(context.Background(), "u1")
			if !found || strings.Join(u.Entries, ",") != strings.TrimPrefix(tc.want, "192.0.2.1!,") {
				t.Errorf("stored %v (found %v); the newer request's entry was erased (result %+v)", u.Entries, found, res)
			}
			if got := ips(e.p.list); got != tc.want {
				t.Errorf("portal = %s, want %s", got, tc.want)
			}
		})
	}
}
