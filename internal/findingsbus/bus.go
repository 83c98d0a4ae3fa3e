package findingsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"ipguard/internal/awserr"
	"ipguard/internal/ipguard"
)

// API is the subset of *eventbridge.Client the bus uses.
type API interface {
	PutEvents(context.Context, *eventbridge.PutEventsInput, ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Bus sends entries to one event bus. It is safe for concurrent use.
type Bus struct {
	API API
	// Name is the bus name or ARN (FINDINGS_BUS_NAME); "default" is the
	// account's default bus.
	Name   string
	Outbox Outbox
	Log    *slog.Logger

	// undelivered counts the entries the bus refused (kept in the outbox
	// or lost) and those still waiting after Retry, since TakeUndelivered.
	undelivered atomic.Int64
	// seenEmpty: this Bus's last Retry read the outbox and left it empty,
	// and nothing was kept since (see Retry: one failed read then is not
	// counted).
	seenEmpty atomic.Bool
}

// TakeUndelivered returns how many entries the bus refused or left waiting
// since the last call (the BusUndelivered metric), and starts again at 0.
func (b *Bus) TakeUndelivered() int { return int(b.undelivered.Swap(0)) }

// refusedForGood says whether an entry's ErrorCode means EventBridge will
// never take it (a detail it cannot parse, an entry too large): such an
// entry is given up. Denied, not found, throttled and internal failures
// are passing (or the operator's to fix): those entries wait.
func refusedForGood(code string) bool {
	c := strings.ToLower(code)
	for _, w := range []string{"malformed", "invalidargument", "validation", "toolarge", "too_large", "size"} {
		if strings.Contains(c, w) {
			return true
		}
	}
	return false
}

// Put sends entries (batches of at most MaxBatch, less than MaxEntryBytes in all)
// and returns those EventBridge did not take: the entries of a batch whose
// call failed, and each entry its answer lists with an ErrorCode
// (FailedEntryCount). err is the first failure, classified (a missing bus
// or a denied PutEvents is EConfig naming FINDINGS_BUS_NAME). The SDK's
// retries stay on: a resent entry is a duplicate with the same findingId,
// which consumers drop.
func (b *Bus) Put(ctx context.Context, entries []Entry) (failed []Entry, err error) {
	for _, batch := range batches(entries) {
		in := &eventbridge.PutEventsInput{}
		for _, e := range batch {
			in.Entries = append(in.Entries, types.PutEventsRequestEntry{
				EventBusName: aws.String(b.Name),
				Source:       aws.String(Source),
				DetailType:   aws.String(DetailType),
				Detail:       aws.String(string(e.Detail)),
				Time:         aws.Time(e.Time),
			})
		}
		out, perr := b.API.PutEvents(ctx, in)
		if perr != nil {
			failed = append(failed, batch...)
			if err == nil {
				err = awserr.Classify(perr, "put events", awserr.Resource{Service: "events", Field: "FINDINGS_BUS_NAME", Value: b.Name})
			}
			continue
		}
		if out.FailedEntryCount == 0 {
			continue
		}
		for i, r := range out.Entries {
			if i < len(batch) && aws.ToString(r.ErrorCode) != "" {
				e := batch[i]
				e.refused = refusedForGood(aws.ToString(r.ErrorCode))
				failed = append(failed, e)
				if err == nil {
					err = ipguard.Errorf(ipguard.EUnavailable, "events: put events (FINDINGS_BUS_NAME=%s): entry refused: %s: %s", b.Name, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
				}
			}
		}
		if len(out.Entries) < len(batch) { // an answer that does not say which: keep them all
			failed = append(failed, batch[len(out.Entries):]...)
		}
	}
	return failed, err
}

// batches splits entries into PutEvents calls: at most MaxBatch entries,
// less than MaxEntryBytes together.
func batches(entries []Entry) [][]Entry {
	var out [][]Entry
	var cur []Entry
	size := 0
	for _, e := range entries {
		if len(cur) == MaxBatch || (len(cur) > 0 && size+e.Size() >= MaxEntryBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += e.Size()
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Keep adds entries to the outbox (never a test alert's), retrying on a
// concurrent change. Entries already waiting there (same ID) are not added
// again: when none is new, nothing is written and Keep succeeds, however
// full the outbox. It fails when the outbox cannot take them (store down;
// ErrOutboxFull past MaxOutboxBytes).
func (b *Bus) Keep(ctx context.Context, entries []Entry) error {
	var keep []Entry
	for _, e := range entries {
		if !e.Test {
			if e.Kept.IsZero() {
				e.Kept = time.Now().UTC()
			}
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	b.seenEmpty.Store(false)
	defer b.seenEmpty.Store(false) // and after, should a Retry have finished meanwhile
	if b.Outbox == nil {
		return ipguard.Errorf(ipguard.EInternal, "findings bus: no outbox to keep %d refused entries in", len(keep))
	}
	for attempt := 0; ; attempt++ {
		pending, rev, err := b.Outbox.Pending(ctx)
		if err != nil {
			return fmt.Errorf("findings bus: read the outbox: %w", err)
		}
		merged := merge(pending, keep)
		if len(merged) == len(pending) {
			return nil // every one already waits
		}
		if n := storedBytes(merged); n > MaxOutboxBytes {
			return &ipguard.Error{Code: ipguard.EUnavailable, Err: ErrOutboxFull, Message: fmt.Sprintf(
				"findings bus: the outbox would hold %d bytes, more than %d: the bus has refused events for a while (FINDINGS_BUS_NAME=%s)", n, MaxOutboxBytes, b.Name)}
		}
		err = b.Outbox.Save(ctx, merged, rev)
		if err == nil || ipguard.ErrorCode(err) != ipguard.EConflict || attempt == 4 {
			if err != nil {
				return fmt.Errorf("findings bus: keep %d refused entries in the outbox: %w", len(keep), err)
			}
			return nil
		}
	}
}

// Retry sends what waits in the outbox again and keeps only what the bus
// refuses once more. It is called at the start of each audit run. It returns
// how many were sent and how many still wait; an error leaves the outbox
// as it was (the next run tries again). An outbox that cannot be read is
// not an empty one: the error then holds ErrOutboxUnreadable, and it counts
// as one undelivered entry (TakeUndelivered), so that the BusUndelivered
// alarm (Sum ≥ 1) cannot clear while entries may wait unseen; except once:
// a failed read right after this Bus's last Retry left the outbox empty,
// with nothing kept since, is not counted (one blip of the table does not
// page; a second failed read in a row is counted). A Bus that never read
// the outbox (a fresh process) counts the first failure. Only entries EventBridge refuses
// for good (refusedForGood: a malformed detail, an entry too large) are
// given up, and the error says how many; entries refused because the bus
// is missing, denied or throttled wait however long it takes (the
// BusUndelivered alarm pages meanwhile).
func (b *Bus) Retry(ctx context.Context) (sent, waiting int, err error) {
	dropped := 0
	if b.Outbox == nil {
		return 0, 0, nil
	}
	pending, rev, err := b.Outbox.Pending(ctx)
	if err != nil {
		if !b.seenEmpty.Swap(false) {
			b.undelivered.Add(1)
		}
		return 0, 0, fmt.Errorf("findings bus: %w: %w", ErrOutboxUnreadable, err)
	}
	b.seenEmpty.Store(len(pending) == 0)
	if len(pending) == 0 {
		return 0, 0, nil
	}
	failed, perr := b.Put(ctx, pending)
	defer func() { b.undelivered.Add(int64(waiting + dropped)) }()
	var kept []Entry
	for _, e := range failed {
		if e.refused {
			dropped++
			continue
		}
		kept = append(kept, e)
	}
	if dropped > 0 {
		ipguard.LoggerOrDiscard(b.Log).ErrorContext(ctx, "findings bus: events given up: EventBridge refuses them for good", "dropped", dropped, "error", errString(perr))
		perr = ipguard.Errorf(ipguard.ErrorCode(perr), "findings bus: %d event(s) the bus refuses for good were given up (FINDINGS_BUS_NAME=%s): %w", dropped, b.Name, perr)
	}
	failed = kept
	if len(failed) == len(pending) && dropped == 0 {
		return 0, len(pending), perr
	}
	done := map[string]bool{} // sent or given up
	for _, e := range pending {
		done[e.ID] = true
	}
	for _, e := range failed {
		delete(done, e.ID)
	}
	for attempt := 0; ; attempt++ {
		err := b.Outbox.Save(ctx, failed, rev)
		if err == nil {
			break
		}
		if ipguard.ErrorCode(err) == ipguard.EConflict && attempt < 3 {
			// Another function kept entries meanwhile: keep theirs too.
			var now []Entry
			if now, rev, err = b.Outbox.Pending(ctx); err == nil {
				failed = failed[:0]
				for _, e := range now {
					if !done[e.ID] {
						failed = append(failed, e)
					}
				}
				continue
			}
		}
		// Sent, but the outbox still lists them: the next run sends them
		// again (duplicates with the same findingId).
		return len(done) - dropped, len(pending), fmt.Errorf("findings bus: sent %d waiting events but could not update the outbox: %w", len(done)-dropped, err)
	}
	b.seenEmpty.Store(len(failed) == 0)
	return len(done) - dropped, len(failed), perr
}

func merge(a, b []Entry) []Entry {
	seen := map[string]bool{}
	var out []Entry
	for _, e := range append(append([]Entry{}, a...), b...) {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// storedBytes is the size of the outbox item's JSON as the store writes it
// (encoding/json, which escapes < > & as \u003c...: 6 bytes each).
func storedBytes(es []Entry) int {
	b, err := json.Marshal(es)
	if err != nil {
		return MaxOutboxBytes + 1
	}
	return len(b)
}

// Publisher sends every alert to Next (the SNS topic) and its findings to
// the bus. It is the publisher the audit, the onboarding and the key watch
// use when FINDINGS_BUS_NAME is set.
type Publisher struct {
	Next interface {
		Publish(ctx context.Context, a ipguard.Alert) (string, error)
	}
	Bus    *Bus
	Portal string // the portal's host, for alerts that do not name it
	Now    func() time.Time
}

// Publish sends a to Next first; when Next fails nothing goes to the bus
// (the caller sends the alert again later, and with it the events). Then
// its events go to the bus; those it refuses are kept in the outbox and
// sent by the next audit run, so a bus outage never holds back the alert
// itself. Only when the outbox cannot keep them either does Publish fail
// (the caller then sends the alert again: a duplicate message, and the
// events with the same findingId). A full outbox (ErrOutboxFull) is not
// such a failure: sending the alert again would only repeat the message
// (and the digest's count) at every run while the bus stays down, and hold
// the audit at that alert. Those entries are given up for the bus: logged
// as an error and counted as undelivered (the BusUndelivered alarm), and
// Publish succeeds. A test alert ("test": true) goes to the bus once,
// never to the outbox.
func (p *Publisher) Publish(ctx context.Context, a ipguard.Alert) (string, error) {
	id, err := p.Next.Publish(ctx, a)
	if err != nil {
		return "", err
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	entries, err := Events(p.Portal, a, now)
	if err != nil {
		return "", err
	}
	failed, perr := p.Bus.Put(ctx, entries)
	if d, ok := ctx.Value(deliveryKey{}).(*Delivery); ok && d != nil {
		d.Sent, d.Refused, d.Err = len(entries)-len(failed), len(failed), perr
	}
	if len(failed) == 0 {
		return id, nil
	}
	p.Bus.undelivered.Add(int64(len(failed)))
	log := ipguard.LoggerOrDiscard(p.Bus.Log)
	log.WarnContext(ctx, "findings bus refused events; kept in the outbox for the next run", "refused", len(failed), "error", errString(perr))
	kerr := p.Bus.Keep(ctx, failed)
	if outboxFull(kerr) {
		log.ErrorContext(ctx, "findings bus: events given up: the bus refuses them and the outbox is full", "message", id, "dropped", len(failed), "error", kerr.Error())
		return id, nil
	}
	if kerr != nil {
		return "", ipguard.Errorf(ipguard.ErrorCode(kerr), "the alert was published (message %s) but %d of its findings reached neither the bus nor the outbox (%v): %w", id, len(failed), errString(perr), kerr)
	}
	return id, nil
}

// Delivery is what the bus did with one alert's entries, for a caller
// that must say so (the test alert): how many it took, how many it
// refused (kept in the outbox, or a test alert's, dropped) and why.
type Delivery struct {
	Sent, Refused int
	Err           error
}

type deliveryKey struct{}

// WithDelivery returns a context in which Publisher.Publish fills d in.
func WithDelivery(ctx context.Context, d *Delivery) context.Context {
	return context.WithValue(ctx, deliveryKey{}, d)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
