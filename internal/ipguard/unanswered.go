package ipguard

import (
	"context"
	"sync"
	"time"
)

// UnansweredWrites records, for a writer that fences itself (the portal
// allowlist reconcile, docs/allowlist-reconcile.md "The fence"), when the
// last attempt of its write ended without a definite answer (no answer, a
// timeout, a 5xx): the remote side may still apply that attempt, also when
// a retry of the write was answered afterwards. A portal adapter notes each
// such attempt (NoteUnansweredWrite) into the recorder the writer put in
// the call's context; the writer keeps its lease until such an attempt
// can no longer land.
type UnansweredWrites struct {
	mu   sync.Mutex
	last time.Time
}

type unansweredKey struct{}

// WithUnansweredWrites returns a context in which a write notes into u.
func WithUnansweredWrites(ctx context.Context, u *UnansweredWrites) context.Context {
	return context.WithValue(ctx, unansweredKey{}, u)
}

// NoteUnansweredWrite records that an attempt of the write in ctx ended at
// at without a definite answer (nothing without a recorder).
func NoteUnansweredWrite(ctx context.Context, at time.Time) {
	u, ok := ctx.Value(unansweredKey{}).(*UnansweredWrites)
	if !ok || u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if at.After(u.last) {
		u.last = at
	}
}

// Last is when the latest unanswered attempt ended (zero: none).
func (u *UnansweredWrites) Last() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}
