package dynamo

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// The allowlist history of a user, for judging a login by the allowlist in
// force when it happened:
//
//	history#<userId>   email, offboardedAt, spans: [{e, from, until}], expiresAt
//
// Spans that ended more than keep ago are dropped, and at most
// maxHistorySpans are kept (the oldest ended ones go first); the item
// expires keep after its last change.
const maxHistorySpans = 2000

// RecordHistory implements onboard.Store: one consistent read and one write.
func (s *Store) RecordHistory(ctx context.Context, userID, email string, added, removed []string, offboarded bool, at time.Time, keep time.Duration) error {
	op := "record allowlist history of user " + userID
	got, err := s.getItem(ctx, op, historyPrefix+userID)
	if err != nil {
		return err
	}
	h := decodeHistory(userID, got)
	if email != "" {
		h.Email = email
	}
	open := func(e string) int {
		for i := len(h.Spans) - 1; i >= 0; i-- {
			if h.Spans[i].Entry == e && h.Spans[i].Until.IsZero() {
				return i
			}
		}
		return -1
	}
	for _, e := range added {
		if open(e) < 0 {
			h.Spans = append(h.Spans, ipguard.EntrySpan{Entry: e, From: at})
		}
	}
	for _, e := range removed {
		if i := open(e); i >= 0 {
			h.Spans[i].Until = at
		} else {
			h.Spans = append(h.Spans, ipguard.EntrySpan{Entry: e, Until: at}) // counted since before the history
		}
	}
	if offboarded {
		h.OffboardedAt = at
		for i := range h.Spans {
			if h.Spans[i].Until.IsZero() {
				h.Spans[i].Until = at
			}
		}
	}
	kept := h.Spans[:0]
	for _, sp := range h.Spans {
		if sp.Until.IsZero() || sp.Until.After(at.Add(-keep)) {
			kept = append(kept, sp)
		}
	}
	h.Spans = kept
	if len(h.Spans) > maxHistorySpans {
		sort.SliceStable(h.Spans, func(i, j int) bool { // still counting first, then the latest ended
			a, b := h.Spans[i], h.Spans[j]
			if a.Until.IsZero() != b.Until.IsZero() {
				return a.Until.IsZero()
			}
			return a.Until.After(b.Until)
		})
		h.Spans = h.Spans[:maxHistorySpans]
	}
	spans := listAttr(h.Spans, func(sp ipguard.EntrySpan) types.AttributeValue {
		return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"e": str(sp.Entry), "from": num(unixOrZero(sp.From)), "until": num(unixOrZero(sp.Until))}}
	})
	item := map[string]types.AttributeValue{
		"pk": str(historyPrefix + userID), "spans": spans,
		"expiresAt": num(at.Add(keep).Unix()),
	}
	if h.Email != "" {
		item["email"] = str(h.Email)
	}
	if !h.OffboardedAt.IsZero() {
		item["offboardedAt"] = num(h.OffboardedAt.Unix())
	}
	return s.putItem(ctx, op, item)
}

// AllowlistHistory implements audit.Store: the histories of the users
// among ids that have one, 100 per read; an item that cannot be read is
// left out.
func (s *Store) AllowlistHistory(ctx context.Context, ids []string) (map[string]ipguard.AllowlistHistory, error) {
	out := map[string]ipguard.AllowlistHistory{}
	err := s.getItems(ctx, "allowlist histories", prefixed(historyPrefix, ids), func(item map[string]types.AttributeValue) {
		pk, _, _ := getS(item, "pk")
		if id, ok := strings.CutPrefix(pk, historyPrefix); ok {
			out[id] = decodeHistory(id, item)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeHistory(id string, item map[string]types.AttributeValue) ipguard.AllowlistHistory {
	h := ipguard.AllowlistHistory{UserID: id}
	if item == nil {
		return h
	}
	h.Email, _, _ = getS(item, "email")
	if v, ok, err := getN(item, "offboardedAt"); ok && err == nil && v > 0 {
		h.OffboardedAt = time.Unix(v, 0).UTC()
	}
	for _, m := range listMaps(item, "spans") {
		e, ok1, _ := getS(m, "e")
		from, _, err1 := getN(m, "from")
		until, _, err2 := getN(m, "until")
		if !ok1 || err1 != nil || err2 != nil {
			continue
		}
		h.Spans = append(h.Spans, ipguard.EntrySpan{Entry: e, From: timeOrZero(from), Until: timeOrZero(until)})
	}
	return h
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}
