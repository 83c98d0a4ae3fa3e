package onboard

import (
	"context"
	"time"

	"ipguard/internal/ipguard"
)

// Person is a portal user as the directory reports it.
type Person struct {
	ID      string
	Name    string
	IsOwner bool
	IsAdmin bool // a DocSpace admin (false for the owner)
	Status  int  // 1 active, 2 terminated, 4 pending
}

// StatusTerminated is the portal's status of a disabled user.
const StatusTerminated = 2

// Directory tells who the API key and the portal's users are.
type Directory interface {
	// KeyCreator returns the id of the user whose API key this is (the key
	// acts as that user). An error means it could not be told.
	KeyCreator(ctx context.Context) (string, error)
	// Person returns the portal user id; found is false when the portal
	// does not know the user (404: unknown or deleted).
	Person(ctx context.Context, id string) (p Person, found bool, err error)
}

// Change is one change of the portal allowlist in the portal's audit trail.
type Change struct {
	When   time.Time
	User   string // display name as the portal wrote it
	UserID string
	IP     string
}

// Trail is the portal's audit trail of allowlist changes.
type Trail interface {
	// AllowlistChanges returns the allowlist changes since from, oldest
	// first. An error means attribution is unavailable (old portal, plan
	// without the audit trail, failure).
	AllowlistChanges(ctx context.Context, from time.Time) ([]Change, error)
}

// Alerter sends an alert to the alert topic and returns its message id.
type Alerter interface {
	// Publish sends a once and returns its message id. It makes one
	// attempt and never resends on its own after a lost answer (the caller
	// decides whether to send again). An error is classified: EInternal for
	// an alert the topic would refuse (rendered wrongly), EConfig for a
	// missing or refused topic, EUnavailable when the service failed or did
	// not answer (the message may or may not have gone out).
	Publish(ctx context.Context, a ipguard.Alert) (string, error)
}

// LoginHistory is the portal's login history.
type LoginHistory interface {
	// LoginEvents returns one page: at most count (1..100) events dated ≥
	// from, skipping startIndex newer ones, newest first by date (second
	// precision). Rows of one second come in any order, possibly a different
	// one on each call, and rows inserted meanwhile shift every position
	// down. An event that cannot be decoded comes in its place with
	// Unreadable set; only a failed request is an error (classified).
	LoginEvents(ctx context.Context, from time.Time, startIndex, count int) ([]ipguard.LoginEvent, error)
}

// enableRule is the lock-out preflight: restrictions may be switched on
// only when break-glass addresses are set or the key's creator is the
// portal owner (whom the allowlist exempts). Without a Directory the tool
// cannot tell and allows it as before, when break-glass is set or not.
//
// The answer is never cached: the reconcile asks only when it would switch
// restrictions on, and a key rotated to a non-owner's is judged as it is.
func (s *Service) enableRule(ctx context.Context) EnableRule {
	if !s.Settings.Enforce || len(s.Settings.Breakglass) > 0 || s.Directory == nil {
		return EnableRule{Allowed: true} // nothing to switch on, or safe
	}
	if dl, ok := ctx.Deadline(); ok {
		// At most a quarter of the time left: a directory that hangs
		// leaves the PUT its time (restrictions then stay off: the
		// preflight could not say it is safe).
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/4))
		defer cancel()
	}
	return s.askDirectory(ctx)
}

// Kinds of a lock-out preflight refusal: its episode is keyed by the kind,
// never by the error's text (which varies from one failure to the next).
const (
	LockoutKeyUnreadable     = "key-unreadable"
	LockoutCreatorUnreadable = "creator-unreadable"
	LockoutNotOwner          = "not-owner"
)

func (s *Service) askDirectory(ctx context.Context) EnableRule {
	const what = "set PORTAL_BREAKGLASS_IPS to the address the functions and your office reach the portal from, or create the API key as the portal owner"
	creator, err := s.Directory.KeyCreator(ctx)
	if ipguard.Passing(err) {
		return unavailableRule("keys/@self", err)
	}
	if err != nil {
		return EnableRule{Kind: LockoutKeyUnreadable, Why: "could not tell who created the API key (" + err.Error() + "), and PORTAL_BREAKGLASS_IPS is empty, so switching restrictions on could lock the tool and the office out; " + what}
	}
	p, found, err := s.Directory.Person(ctx, creator)
	switch {
	case ipguard.Passing(err):
		return unavailableRule("the key creator's profile", err)
	case err != nil:
		return EnableRule{Kind: LockoutCreatorUnreadable, Why: "could not read the API key's creator (" + err.Error() + "), and PORTAL_BREAKGLASS_IPS is empty; " + what}
	case !found || !p.IsOwner:
		return EnableRule{Kind: LockoutNotOwner, Why: "the API key was not created by the portal owner (only the owner is exempt from the allowlist) and PORTAL_BREAKGLASS_IPS is empty, so switching restrictions on would lock the tool out; " + what}
	}
	return EnableRule{Allowed: true}
}

// unavailableRule keeps restrictions off for this pass only: the preflight
// could not ask (see EnableRule.Unavailable).
func unavailableRule(what string, err error) EnableRule {
	return EnableRule{Unavailable: ipguard.Errorf(ipguard.EUnavailable, "restrictions not switched on yet: the lock-out preflight could not read %s (%v); the next reconcile asks again", what, err),
		Why: "the lock-out preflight could not read " + what + " now (" + err.Error() + "); the next reconcile asks again"}
}
