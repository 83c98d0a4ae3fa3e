package findingsbus

import (
	"context"
	"errors"
	"time"
)

// Outbox keeps the entries the bus refused until a later run sends them.
// Both methods return classified errors.
type Outbox interface {
	// Pending returns the waiting entries and the outbox's revision (0
	// when it was never written).
	Pending(ctx context.Context) ([]Entry, int64, error)
	// Save replaces the waiting entries with entries, only if the revision
	// is still rev; otherwise it fails with EConflict and changes nothing.
	Save(ctx context.Context, entries []Entry, rev int64) error
}

// MaxOutboxBytes bounds the details kept in the outbox (one DynamoDB item
// holds at most 400 KB). Entries beyond it are not kept (ErrOutboxFull):
// they are given up for the bus, counted and logged (see Publisher).
const MaxOutboxBytes = 350 * 1024

// ErrOutboxFull is in the chain of Keep's error when the outbox cannot take
// more entries (MaxOutboxBytes): the bus has refused events for a while.
var ErrOutboxFull = errors.New("the findings bus outbox is full")

// ErrOutboxUnreadable is in the chain of Retry's error when the outbox
// could not be read: how many entries wait is then unknown, not 0.
var ErrOutboxUnreadable = errors.New("the findings bus outbox could not be read")

// outboxFull reports whether err says the outbox is full (ErrOutboxFull).
func outboxFull(err error) bool { return errors.Is(err, ErrOutboxFull) }

// RevisedStore keeps JSON items with a revision (dynamo.Store).
type RevisedStore interface {
	LoadRevised(ctx context.Context, pk string, v any) (rev int64, ok bool, err error)
	SaveRevised(ctx context.Context, pk string, v any, rev int64, expires time.Time) error
}

// The outbox items (dynamo.OutboxPrefix + ...), one per function: each
// function's role may write only its own items (dynamodb:LeadingKeys), so
// each keeps and sends again what the bus refused it.
const (
	OutboxPK        = "outbox#bus"         // the audit function's (its runs send it again)
	OnboardOutboxPK = "outbox#bus-onboard" // the onboarding function's (its next invocation sends it again)
)

// outboxKeep is how long a waiting entry is kept (expiresAt of the item).
const outboxKeep = 30 * 24 * time.Hour

// StoreOutbox is the Outbox in one item of a RevisedStore: PK, or OutboxPK
// when empty.
type StoreOutbox struct {
	Store RevisedStore
	PK    string
}

func (o StoreOutbox) pk() string {
	if o.PK == "" {
		return OutboxPK
	}
	return o.PK
}

// Pending implements Outbox.
func (o StoreOutbox) Pending(ctx context.Context) ([]Entry, int64, error) {
	var es []Entry
	rev, _, err := o.Store.LoadRevised(ctx, o.pk(), &es)
	return es, rev, err
}

// Save implements Outbox.
func (o StoreOutbox) Save(ctx context.Context, entries []Entry, rev int64) error {
	if entries == nil {
		entries = []Entry{}
	}
	return o.Store.SaveRevised(ctx, o.pk(), entries, rev, time.Now().Add(outboxKeep))
}
