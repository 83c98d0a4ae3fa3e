package onboard

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
)

type fakeStore struct {
	mu    sync.Mutex
	users map[string]ipguard.User
	puts  int
	fail  error
}

func (f *fakeStore) GetUser(_ context.Context, id string) (ipguard.User, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	return u, ok, f.fail
}

func (f *fakeStore) PutUser(_ context.Context, u ipguard.User) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.puts++
	f.users[u.ID] = u
	return nil
}

type fakePortal struct {
	list    []ipguard.Restriction
	enabled bool
	puts    int
	putErr  error
}

func (f *fakePortal) IPRestrictions(context.Context) ([]ipguard.Restriction, error) {
	return slices.Clone(f.list), nil
}
func (f *fakePortal) IPRestrictionsEnabled(context.Context) (bool, error) { return f.enabled, nil }
func (f *fakePortal) PutIPRestrictions(_ context.Context, l []ipguard.Restriction, enable bool) error {
	if f.putErr != nil {
		return f.putErr
	}
	f.puts++
	f.list, f.enabled = slices.Clone(l), enable
	return nil
}

type freeLease struct{}

func (freeLease) TryAcquireLease(context.Context, string, string, time.Time, time.Time) (bool, error) {
	return true, nil
}
func (freeLease) ReleaseLease(context.Context, string, string) error { return nil }

func newService() (*Service, *fakeStore, *fakePortal) {
	st := &fakeStore{users: map[string]ipguard.User{}}
	p := &fakePortal{list: []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}}}
	return &Service{Store: st, Portal: p, Leases: freeLease{},
		Rules: Rules{MaxRangeAddresses: 256, Enforce: true, Limits: allowlist.DefaultLimits}}, st, p
}

func TestOnboardRejectsBadInputWithoutWriting(t *testing.T) {
	bad := []Request{
		{ID: "", Email: "a@example.com", AllowedIPs: []string{"203.0.113.1"}},
		{ID: "u1", Email: "nope", AllowedIPs: []string{"203.0.113.1"}},
		{ID: "u1", Email: "a@example.com"},
		{ID: "u1", Email: "a@example.com", AllowedIPs: []string{"203.0.113.1", "10.0.0.9-10.0.0.1"}},
		{ID: "u1", Email: "a@example.com", AllowedIPs: []string{"0.0.0.0/0"}},
	}
	for _, req := range bad {
		s, st, p := newService()
		if _, err := s.Onboard(context.Background(), req); ipguard.ErrorCode(err) != ipguard.EInvalid {
			t.Errorf("%+v: err = %v, want EInvalid", req, err)
		}
		if st.puts != 0 || p.puts != 0 {
			t.Errorf("%+v: wrote %d items and %d PUTs", req, st.puts, p.puts)
		}
	}
}

func TestOnboardStoresPushesAndReplaysAsNoOp(t *testing.T) {
	s, st, p := newService()
	req := Request{ID: "u1", Email: "a@example.com", AllowedIPs: []string{"203.0.113.10", "10.0.0.0/30", "10.1.0.0/16"}}
	res, err := s.Onboard(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stored || !res.PortalUpdated || !res.RestrictionsEnabled || len(res.PortalAdded) != 5 || len(res.NotPushed) != 1 {
		t.Fatalf("result = %+v", res)
	}
	if got := ips(p.list); got != "192.0.2.1!,203.0.113.10,10.0.0.0,10.0.0.1,10.0.0.2,10.0.0.3" {
		t.Errorf("portal = %s", got)
	}
	created := st.users["u1"].CreatedAt
	again, err := s.Onboard(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Stored || again.PortalUpdated || p.puts != 1 || st.puts != 1 {
		t.Errorf("replay wrote: %+v, puts=%d items=%d", again, p.puts, st.puts)
	}
	req.AllowedIPs = []string{"203.0.113.11"}
	if _, err := s.Onboard(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if u := st.users["u1"]; !slices.Equal(u.Entries, []string{"203.0.113.11"}) || !u.CreatedAt.Equal(created) {
		t.Errorf("re-send did not replace entries keeping createdAt: %+v", u)
	}
}

func TestOnboardPortalFailureIsAnError(t *testing.T) {
	s, _, p := newService()
	p.putErr = &ipguard.Error{Code: ipguard.EUnavailable, Message: "docspace: HTTP 503"}
	_, err := s.Onboard(context.Background(), Request{ID: "u1", Email: "a@example.com", AllowedIPs: []string{"203.0.113.10"}})
	var e *ipguard.Error
	if !errors.As(err, &e) || e.Code != ipguard.EUnavailable {
		t.Fatalf("err = %v, want EUnavailable", err)
	}
}
