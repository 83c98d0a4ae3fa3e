package status

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/keywatch"
)

type fakeStore struct{}

func (fakeStore) Checkpoint(context.Context) (time.Time, bool, error) {
	return time.Now().Add(-time.Minute), true, nil
}
func (fakeStore) LastRun(context.Context, any) (bool, error) { return false, nil }
func (fakeStore) CountUsers(context.Context) (int, error)    { return 3, nil }
func (fakeStore) LastKey(context.Context) (keywatch.Key, time.Time, bool, error) {
	return keywatch.Key{}, time.Time{}, false, nil
}

// hangingPortal answers only when the caller gives up, as a portal behind a
// black-holed address does.
type hangingPortal struct{}

func (hangingPortal) IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hangingPortal) IPRestrictionsEnabled(ctx context.Context) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}
func (hangingPortal) CurrentKey(ctx context.Context) (keywatch.Key, error) {
	<-ctx.Done()
	return keywatch.Key{}, errors.New("no answer")
}

// An operator asks for the status when something is wrong: a portal that
// does not answer must not hold the answer past what `aws lambda invoke`
// waits (60 s by default); the status says what it could not read instead.
func TestStatusAnswersInTimeWhenThePortalHangs(t *testing.T) {
	s := &Service{Store: fakeStore{}, Portal: hangingPortal{}, Keys: hangingPortal{}, PortalBudget: 200 * time.Millisecond}
	start := time.Now()
	r := s.Report(context.Background())
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the status took %s with a hanging portal", took)
	}
	if r.UsersStored == nil || *r.UsersStored != 3 || r.LagSeconds == nil || r.Portal != nil || r.APIKey != nil {
		t.Errorf("report = %+v, want the stored parts and no portal parts", r)
	}
	if len(r.Warnings) != 2 || !strings.HasPrefix(r.Warnings[0], "API key: ") || !strings.HasPrefix(r.Warnings[1], "portal restrictions: ") {
		t.Errorf("warnings = %q, want the key and the portal named", r.Warnings)
	}
}

func TestDefaultPortalBudgetFitsTheCLIsWait(t *testing.T) {
	if DefaultPortalBudget <= 0 || DefaultPortalBudget > 30*time.Second {
		t.Errorf("DefaultPortalBudget = %s", DefaultPortalBudget)
	}
}

type fakeDelivery struct {
	confirmed, pending int
	err                error
}

func (f fakeDelivery) Subscribers(context.Context) (int, int, error) {
	return f.confirmed, f.pending, f.err
}

// A stack deployed with no subscriber says so in its status; a failure to
// list the subscriptions is a warning, never a failed status.
func TestStatusSaysWhoReceivesTheAlerts(t *testing.T) {
	tests := []struct {
		name     string
		delivery fakeDelivery
		want     *DeliveryState
		warning  string // a warning that starts so; "" for none
	}{
		{"one confirmed", fakeDelivery{confirmed: 1}, &DeliveryState{ConfirmedSubscribers: 1}, ""},
		{"no subscriber", fakeDelivery{}, &DeliveryState{}, "no confirmed subscriber on the alert topic"},
		{"only pending", fakeDelivery{pending: 2}, &DeliveryState{PendingSubscribers: 2}, "no confirmed subscriber on the alert topic"},
		{"list denied", fakeDelivery{err: &ipguard.Error{Code: ipguard.EConfig, Message: "sns: list subscriptions: AccessDenied"}}, nil, "alert subscriptions: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Service{Store: fakeStore{}, Portal: hangingPortal{}, Keys: hangingPortal{}, PortalBudget: time.Millisecond, Delivery: tt.delivery}
			r := s.Report(context.Background())
			if (r.Delivery == nil) != (tt.want == nil) || r.Delivery != nil && *r.Delivery != *tt.want {
				t.Errorf("delivery = %+v, want %+v", r.Delivery, tt.want)
			}
			found := false
			for _, w := range r.Warnings {
				found = found || tt.warning != "" && strings.HasPrefix(w, tt.warning)
				if tt.warning == "" && (strings.Contains(w, "subscri")) {
					t.Errorf("unexpected warning %q", w)
				}
			}
			if tt.warning != "" && !found {
				t.Errorf("warnings %q lack %q", r.Warnings, tt.warning)
			}
		})
	}
}
