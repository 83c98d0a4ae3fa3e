package dynamo

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// maxSpans bounds the spans one address item keeps. Beyond it the two
// spans closest in time merge into one that covers both (with the later
// expiry), so no alerted burst is forgotten: the gap between them was read
// by the audit already, and a burst in it would have been alerted and
// recorded itself.
var maxSpans = 500

// AlertedSpans returns, per address, the spans of failed logins alerted as a
// burst whose expiry is after now. One item per address
// (alertedip#<address>), 100 addresses per read; an item that cannot be
// read counts as no spans.
func (s *Store) AlertedSpans(ctx context.Context, ips []string, now time.Time) (map[string][]ipguard.TimeSpan, error) {
	out := map[string][]ipguard.TimeSpan{}
	err := s.getItems(ctx, "alerted bursts", prefixed(alertedIPPrefix, ips), func(item map[string]types.AttributeValue) {
		pk, _, _ := getS(item, "pk")
		ip, ok := strings.CutPrefix(pk, alertedIPPrefix)
		if !ok {
			return
		}
		for _, sp := range liveSpans(decodeSpans(item), now) {
			out[ip] = append(out[ip], sp.TimeSpan)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordAlertedSpan adds span to the address's item (read, merge, write:
// the caller holds the audit lease), dropping expired spans. Two calls.
func (s *Store) RecordAlertedSpan(ctx context.Context, ip string, span ipguard.TimeSpan, at time.Time, keep time.Duration) error {
	op := "record alerted burst from " + ip
	item, err := s.getItem(ctx, op, alertedIPPrefix+ip)
	if err != nil {
		return err
	}
	spans := liveSpans(decodeSpans(item), at)
	spans = append(spans, storedSpan{TimeSpan: span, expires: at.Add(keep).Unix()})
	spans = boundSpans(spans, maxSpans)
	list := make([]types.AttributeValue, len(spans))
	var last int64
	for i, sp := range spans {
		list[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"from": num(sp.From.Unix()), "to": num(ceilUnix(sp.To)), "expiresAt": num(sp.expires)}}
		last = max(last, sp.expires)
	}
	return s.putItem(ctx, op, map[string]types.AttributeValue{
		"pk": str(alertedIPPrefix + ip), "spans": &types.AttributeValueMemberL{Value: list}, "expiresAt": num(last),
	})
}

type storedSpan struct {
	ipguard.TimeSpan
	expires int64
}

func decodeSpans(item map[string]types.AttributeValue) []storedSpan {
	var out []storedSpan
	for _, m := range listMaps(item, "spans") {
		from, ok1, err1 := getN(m, "from")
		to, ok2, err2 := getN(m, "to")
		exp, ok3, err3 := getN(m, "expiresAt")
		if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, storedSpan{TimeSpan: ipguard.TimeSpan{From: time.Unix(from, 0).UTC(), To: time.Unix(to, 0).UTC()}, expires: exp})
	}
	return out
}

func liveSpans(all []storedSpan, now time.Time) []storedSpan {
	var out []storedSpan
	for _, s := range all {
		if s.expires > now.Unix() {
			out = append(out, s)
		}
	}
	return out
}

// ceilUnix is t in epoch seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// boundSpans returns spans (sorted by start) with at most n of them: while
// there are more, the two whose gap is smallest merge.
func boundSpans(spans []storedSpan, n int) []storedSpan {
	sort.Slice(spans, func(i, j int) bool { return spans[i].From.Before(spans[j].From) })
	for len(spans) > max(n, 1) {
		best := 0
		for i := 1; i+1 < len(spans); i++ {
			if spans[i+1].From.Sub(spans[i].To) < spans[best+1].From.Sub(spans[best].To) {
				best = i
			}
		}
		a, b := spans[best], spans[best+1]
		m := storedSpan{TimeSpan: ipguard.TimeSpan{From: a.From, To: a.To}, expires: max(a.expires, b.expires)}
		if b.To.After(m.To) {
			m.To = b.To
		}
		spans[best] = m
		spans = append(spans[:best+1], spans[best+2:]...)
	}
	return spans
}
