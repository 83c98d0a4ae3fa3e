package docspace_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"ipguard/internal/docspace"
	"ipguard/internal/enforce"
	"ipguard/internal/testbed/devportal"
)

const (
	enforceKey = "sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	admin      = "aaaaaaaa-1111-4111-8111-000000000001"
	admin2     = "aaaaaaaa-1111-4111-8111-000000000002"
	someUser   = "aaaaaaaa-1111-4111-8111-000000000003"
)

// EnforcePortal against the dev portal: who the key is (also on a portal
// without keys/@self), the owner check, and a 403 as enforce.ErrRefused.
func TestEnforcePortalOverTheDevPortal(t *testing.T) {
	ctx := context.Background()
	p := devportal.New(devportal.Options{})
	if err := p.PutUsers(
		devportal.User{ID: admin, Status: devportal.StatusActive, IsAdmin: true},
		devportal.User{ID: admin2, Status: devportal.StatusActive, IsAdmin: true},
		devportal.User{ID: someUser, Status: devportal.StatusActive},
	); err != nil {
		t.Fatal(err)
	}
	if err := p.PutKey(devportal.APIKey{Key: enforceKey, CreateBy: admin, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	c, err := docspace.New(docspace.Options{BaseURL: srv.URL, AllowHTTP: true, Keys: staticKey(enforceKey), MaxAttempts: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ep := docspace.EnforcePortal{Client: c}

	if id, err := ep.APIKeyUser(ctx); err != nil || id != admin {
		t.Errorf("APIKeyUser = %q, %v; want %s", id, err, admin)
	}
	dir := docspace.Directory{Client: c}
	if id, err := dir.KeyCreator(ctx); err != nil || id != admin {
		t.Errorf("Directory.KeyCreator = %q, %v; want %s", id, err, admin)
	}
	p.SetKeysSelfAvailable(false)
	if id, err := ep.APIKeyUser(ctx); err != nil || id != admin {
		t.Errorf("APIKeyUser without keys/@self = %q, %v; want %s from people/@self", id, err, admin)
	}
	// One answer to "who is the key's user": onboarding's preflight falls
	// back to people/@self on an older portal exactly as enforcement does.
	if id, err := dir.KeyCreator(ctx); err != nil || id != admin {
		t.Errorf("Directory.KeyCreator without keys/@self = %q, %v; want %s from people/@self", id, err, admin)
	}
	for id, want := range map[string]bool{devportal.OwnerID: true, admin2: false, "aaaaaaaa-1111-4111-8111-00000000ffff": false} {
		if got, err := ep.IsOwner(ctx, id); err != nil || got != want {
			t.Errorf("IsOwner(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	ids := p.AddLoginEvents(devportal.LoginEvent{Date: time.Now(), UserID: someUser, ActionID: 1000, IP: "192.0.2.1"})
	if ended, err := ep.EndSession(ctx, ids[0]); err != nil || !ended {
		t.Errorf("EndSession = %v, %v; want true", ended, err)
	}
	if ended, err := ep.EndSession(ctx, ids[0]); err != nil || ended {
		t.Errorf("EndSession again = %v, %v; want false", ended, err)
	}
	if err := ep.DisableUser(ctx, admin2); !errors.Is(err, enforce.ErrRefused) {
		t.Errorf("DisableUser(another admin) by an admin's key = %v; want ErrRefused", err)
	}
	if err := ep.DisableUser(ctx, someUser); err != nil {
		t.Errorf("DisableUser = %v", err)
	}
	if u, _ := p.User(someUser); u.Status != devportal.StatusTerminated {
		t.Errorf("status %d; want terminated", u.Status)
	}
	// The portal skips ids it does not know and answers with the users it
	// changed: an answer without the user is not "disabled".
	if err := ep.DisableUser(ctx, "aaaaaaaa-1111-4111-8111-00000000ffff"); err == nil {
		t.Errorf("DisableUser(an unknown user) = nil; want an error: the portal changed no one")
	}
}
