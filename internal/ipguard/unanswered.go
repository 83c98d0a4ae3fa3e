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

// KeyPin binds the portal calls made under one context to one API key:
// the first call reads the key (from its cache or the secret), every later
// one uses that same key, and a key refused meanwhile is not replaced by a
// fresh one for a resend. A decision judged by what the key is (the
// onboarding's lock-out preflight asks who created it) is so carried out
// with the key it judged, never with one rotated in between.
type KeyPin struct {
	mu  sync.Mutex
	key string
}

type keyPinKey struct{}

// WithKeyPin returns a context whose portal calls use one key (ctx itself
// when it has a pin already).
func WithKeyPin(ctx context.Context) context.Context {
	if KeyPinFrom(ctx) != nil {
		return ctx
	}
	return context.WithValue(ctx, keyPinKey{}, &KeyPin{})
}

// KeyPinFrom returns ctx's pin, nil when it has none.
func KeyPinFrom(ctx context.Context) *KeyPin {
	p, _ := ctx.Value(keyPinKey{}).(*KeyPin)
	return p
}

// Pin returns the key pinned, pinning read when none is yet.
func (p *KeyPin) Pin(read string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.key == "" {
		p.key = read
	}
	return p.key
}
