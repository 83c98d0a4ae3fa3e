// Package lease serialises work that must not run twice at once (a portal
// allowlist read-modify-write, an audit run) with a lease held in a shared
// store. The store does the atomic part (a conditional write); this package
// does the waiting, the jitter and the expiry arithmetic.
//
// A lease expires on its own, so a holder that crashed blocks others only
// until then. Its expiry is set past the holder's context deadline: a Lambda
// invocation cannot outlive its deadline, so a live holder never loses its
// lease while it still works.
package lease

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"time"

	"ipguard/internal/ipguard"
)

// Backend is the atomic store behind a lease.
type Backend interface {
	// TryAcquireLease takes lease name for owner until the given time if
	// nobody holds it or the holder's lease expired before now. It reports
	// false, with no error, when someone else holds it.
	TryAcquireLease(ctx context.Context, name, owner string, until, now time.Time) (bool, error)
	// ReleaseLease gives lease name up if owner still holds it; otherwise it
	// does nothing.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// HolderReporter is optional on a Backend: TryAcquireLeaseOrHolder is
// TryAcquireLease that, when it is refused, also says since when the holder
// has held the lease (zero when that is not known), read by the refused try
// itself: Acquire's EConflict then carries it (HeldSince), so a caller that
// knows how long a holder holds it can wait for that instead of polling.
type HolderReporter interface {
	TryAcquireLeaseOrHolder(ctx context.Context, name, owner string, until, now time.Time) (ok bool, since time.Time, err error)
}

// HeldSince is when the holder that refused Acquire took the lease, from
// Acquire's EConflict error (zero when not known: another error, or a
// Backend that is no HolderReporter).
func HeldSince(err error) time.Time {
	var h *heldSince
	if errors.As(err, &h) {
		return h.since
	}
	return time.Time{}
}

// heldSince rides in the chain of Acquire's EConflict (its text is not in
// the error's message).
type heldSince struct{ since time.Time }

func (h *heldSince) Error() string { return "held since " + h.since.UTC().Format(time.RFC3339Nano) }

// Options tune Acquire. The zero value waits not at all.
type Options struct {
	// Wait is the longest Acquire waits for a held lease (bounded also by
	// the context's deadline). Zero means one try.
	Wait time.Duration
	// Duration is how long the lease lasts when the context has no deadline
	// (default 2m). With a deadline, the lease lasts until the deadline
	// plus Grace.
	Duration time.Duration
	// Grace is added to the context deadline (default 5s). A holder whose
	// work may still take effect after its process is gone (a remote write
	// given up on at the deadline, which the remote side may still apply)
	// sets it to cover that: a process killed at its deadline can neither
	// keep nor release its lease.
	Grace time.Duration
	// MinPoll and MaxPoll bound the jittered pause between tries
	// (defaults 20ms and 300ms).
	MinPoll, MaxPoll time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = 2 * time.Minute
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.MinPoll <= 0 {
		o.MinPoll = 20 * time.Millisecond
	}
	if o.MaxPoll < o.MinPoll {
		o.MaxPoll = 300 * time.Millisecond
		if o.MaxPoll < o.MinPoll {
			o.MaxPoll = o.MinPoll
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Held is a lease this process holds. Release it when done.
type Held struct {
	Name  string
	Owner string
	Until time.Time
	b     Backend
}

// Acquire takes lease name, waiting up to opts.Wait with jittered, growing
// pauses. It returns an EConflict ipguard.Error when the lease stayed held,
// also when the wait for it runs into the context's deadline; the store's
// error when it failed; and the context's error when the context was
// cancelled.
func Acquire(ctx context.Context, b Backend, name string, opts Options) (*Held, error) {
	opts = opts.withDefaults()
	owner := newOwner()
	start := opts.Now()
	giveUp := start.Add(opts.Wait)
	// atDeadline: the context's deadline, not opts.Wait, ends the wait.
	var atDeadline error
	if dl, ok := ctx.Deadline(); ok && dl.Before(giveUp) {
		giveUp, atDeadline = dl, context.DeadlineExceeded
	}
	pause := opts.MinPoll
	waited := false
	var since time.Time // the refusing holder's, as the last try read it
	for {
		now := opts.Now()
		until := now.Add(opts.Duration)
		if dl, ok := ctx.Deadline(); ok {
			until = dl.Add(opts.Grace)
		}
		var ok bool
		var err error
		if hr, reports := b.(HolderReporter); reports {
			ok, since, err = hr.TryAcquireLeaseOrHolder(ctx, name, owner, until, now)
		} else {
			ok, err = b.TryAcquireLease(ctx, name, owner, until, now)
		}
		if err != nil {
			if waited && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, held(name, opts.Now().Sub(start), ctx.Err(), time.Time{})
			}
			return nil, err
		}
		if ok {
			return &Held{Name: name, Owner: owner, Until: until, b: b}, nil
		}
		sleep := time.Duration(rand.Int64N(int64(pause))) + opts.MinPoll/2
		if opts.Now().Add(sleep).After(giveUp) {
			return nil, held(name, opts.Now().Sub(start), atDeadline, since)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, held(name, opts.Now().Sub(start), ctx.Err(), since)
			}
			return nil, ctx.Err()
		case <-time.After(sleep):
		}
		waited = true
		if pause *= 2; pause > opts.MaxPoll {
			pause = opts.MaxPoll
		}
	}
}

// Release gives the lease up. It still runs when ctx was cancelled (bounded
// to 5s), so that a failed run does not block the next one until expiry.
func (h *Held) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return h.b.ReleaseLease(ctx, h.Name, h.Owner)
}

// KeepUntil ends the lease at until instead of now (never later than its
// end, Until): nobody takes it before then, and it needs no release. For
// work of the holder that may still go on after it returned (a write whose
// answer never came, which the remote side may still apply).
func (h *Held) KeepUntil(ctx context.Context, until time.Time) error {
	if until.After(h.Until) {
		until = h.Until
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	ok, err := h.b.TryAcquireLease(ctx, h.Name, h.Owner, until, time.Now())
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("lease " + h.Name + " was taken by another holder")
	}
	h.Until = until
	return nil
}

// held is the EConflict error of a lease that stayed held for waited.
func held(name string, waited time.Duration, cause error, since time.Time) error {
	msg := "lease " + name + " is held by another run (waited " + waited.Round(time.Millisecond).String()
	if cause != nil {
		msg += ", until the deadline"
	}
	if !since.IsZero() {
		cause = errors.Join(cause, &heldSince{since})
	}
	return &ipguard.Error{Code: ipguard.EConflict, Message: msg + ")", Err: cause}
}

func newOwner() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
