package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/ipguard"
)

// Progress returns the audit's saved progress from the checkpoint item:
// until, and the cursor (cursorFrom, cursorTo, cursorBelow) when a window is
// under way (with cursorGuesses, the logins a failed login below it may
// still raise; cursorSecondTries, cursorAttempts and cursorPiece, how the
// runs at it fared; cursorArchivedBelow, how far the login archive wrote). The zero value when nothing was saved. Strongly consistent.
func (s *Store) Progress(ctx context.Context) (ipguard.AuditProgress, error) {
	const op = "get audit progress"
	item, err := s.getItem(ctx, op, checkpointPK)
	if err != nil {
		return ipguard.AuditProgress{}, err
	}
	var p ipguard.AuditProgress
	times := map[string]time.Time{}
	for _, name := range []string{"until", "cursorFrom", "cursorTo", "cursorBelow", "cursorArchivedBelow"} {
		v, ok, err := getS(item, name)
		if err != nil {
			return ipguard.AuditProgress{}, s.corrupt(op, err)
		}
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return ipguard.AuditProgress{}, s.corrupt(op, fmt.Errorf("attribute %s: %w", name, err))
		}
		times[name] = t.UTC()
	}
	p.Until = times["until"]
	for _, m := range listMaps(item, "memory") {
		since, ok1, err1 := getN(m, "since")
		keep, ok2, err2 := getN(m, "keepSeconds")
		if ok1 && ok2 && err1 == nil && err2 == nil {
			p.Memory = append(p.Memory, ipguard.RetentionSince{Since: time.Unix(since, 0).UTC(), Keep: time.Duration(keep) * time.Second})
		}
	}
	if b, ok := times["cursorBelow"]; ok {
		p.Cursor = &ipguard.AuditCursor{From: times["cursorFrom"], To: times["cursorTo"], Below: b, ArchivedBelow: times["cursorArchivedBelow"]}
		tries, _, err := getN(item, "cursorSecondTries")
		if err != nil {
			return ipguard.AuditProgress{}, s.corrupt(op, err)
		}
		p.Cursor.SecondTries = int(tries)
		attempts, _, err := getN(item, "cursorAttempts")
		if err != nil {
			return ipguard.AuditProgress{}, s.corrupt(op, err)
		}
		p.Cursor.Attempts = int(attempts)
		piece, _, err := getN(item, "cursorPiece")
		if err != nil {
			return ipguard.AuditProgress{}, s.corrupt(op, err)
		}
		p.Cursor.Piece = int(piece)
		if g, ok, err := getS(item, "cursorGuesses"); err == nil && ok {
			p.Cursor.Guesses = g
		}
	}
	if d, ok, err := getS(item, "coverageDue"); err == nil && ok {
		p.CoverageDue = d
	}
	return p, nil
}

// SetProgress replaces the checkpoint item with p, unconditionally: the
// caller holds the audit lease. One write.
func (s *Store) SetProgress(ctx context.Context, p ipguard.AuditProgress) error {
	item := map[string]types.AttributeValue{
		"pk":        str(checkpointPK),
		"until":     str(p.Until.UTC().Format(time.RFC3339Nano)),
		"updatedAt": str(time.Now().UTC().Format(time.RFC3339)),
	}
	if len(p.Memory) > 0 {
		item["memory"] = listAttr(p.Memory, func(m ipguard.RetentionSince) types.AttributeValue {
			return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"since": num(m.Since.Unix()), "keepSeconds": num(int64(m.Keep / time.Second))}}
		})
	}
	if c := p.Cursor; c != nil {
		item["cursorFrom"] = str(c.From.UTC().Format(time.RFC3339Nano))
		item["cursorTo"] = str(c.To.UTC().Format(time.RFC3339Nano))
		item["cursorBelow"] = str(c.Below.UTC().Format(time.RFC3339Nano))
		if c.SecondTries > 0 {
			item["cursorSecondTries"] = num(int64(c.SecondTries))
		}
		if c.Attempts > 0 {
			item["cursorAttempts"] = num(int64(c.Attempts))
		}
		if c.Piece > 0 {
			item["cursorPiece"] = num(int64(c.Piece))
		}
		if c.Guesses != "" {
			item["cursorGuesses"] = str(c.Guesses)
		}
		if !c.ArchivedBelow.IsZero() {
			item["cursorArchivedBelow"] = str(c.ArchivedBelow.UTC().Format(time.RFC3339Nano))
		}
	}
	if p.CoverageDue != "" {
		item["coverageDue"] = str(p.CoverageDue)
	}
	return s.putItem(ctx, "set audit progress", item)
}
