package audittest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"ipguard/internal/ipguard"
)

// Topic is the alert topic in memory (audit.Publisher, and the end of the
// publisher chain: digest, findings bus): it records what it is sent, or
// fails every publish with Err when set, and answers message ids m-1, m-2,
// … It is safe for concurrent use; Sent and Err may be read and set
// between calls.
type Topic struct {
	mu   sync.Mutex
	Sent []ipguard.Alert
	Err  error
}

// Publish implements audit.Publisher.
func (t *Topic) Publish(_ context.Context, a ipguard.Alert) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Err != nil {
		return "", t.Err
	}
	t.Sent = append(t.Sent, a)
	return fmt.Sprintf("m-%d", len(t.Sent)), nil
}

// Revised is the store of revised items (digest.Store) in memory, with the
// DynamoDB store's revision check: a save whose revision is not the stored
// one is an EConflict. Items are kept as JSON, as DynamoDB keeps them. It
// is safe for concurrent use; Items and Revs may be read and reset between
// calls.
type Revised struct {
	mu    sync.Mutex
	Items map[string]json.RawMessage
	Revs  map[string]int64
}

// LoadRevised reads the item pk into v and returns its revision; found is
// false when there is none.
func (r *Revised) LoadRevised(_ context.Context, pk string, v any) (int64, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.Items[pk]
	if !ok {
		return 0, false, nil
	}
	return r.Revs[pk], true, json.Unmarshal(b, v)
}

// SaveRevised writes v as the item pk when its stored revision is rev (0:
// none yet), as revision rev+1.
func (r *Revised) SaveRevised(_ context.Context, pk string, v any, rev int64, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Items == nil {
		r.Items, r.Revs = map[string]json.RawMessage{}, map[string]int64{}
	}
	if r.Revs[pk] != rev {
		return ipguard.Errorf(ipguard.EConflict, "item %s changed: revision %d, not %d", pk, r.Revs[pk], rev)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.Items[pk], r.Revs[pk] = b, rev+1
	return nil
}
