package chatnotify_test

import (
	"context"
	"errors"
	"testing"

	"ipguard/internal/chatnotify"
	"ipguard/internal/ipguard"
)

// A chat copy that was not sent is counted (the ChatUndelivered metric, which
// an alarm reads): with chat as the only destination (WHERE-ISSUES-MEET §7:
// the no-destination alarm then does not exist), a chat topic that refuses
// every publish (a deleted topic, a denied sns:Publish, a key policy that
// does not let the function use the topic's key) was only a log line, and
// findings recorded as alerted reached nobody (attack review).
func TestAFailedChatCopyIsCounted(t *testing.T) {
	next, chat := &pub{}, &pub{err: errors.New("KMS.KMSAccessDeniedException")}
	tee := &chatnotify.Tee{Next: next, Chat: chat}
	for range 3 {
		if _, err := tee.Publish(context.Background(), ipguard.Alert{Default: "d"}); err != nil {
			t.Fatalf("Publish = %v; the alert itself was sent", err)
		}
	}
	chat.err = nil
	if _, err := tee.Publish(context.Background(), ipguard.Alert{Default: "d"}); err != nil {
		t.Fatal(err)
	}
	if n := tee.TakeUndelivered(); n != 3 {
		t.Errorf("TakeUndelivered = %d; want the 3 chat copies that failed", n)
	}
	if n := tee.TakeUndelivered(); n != 0 {
		t.Errorf("TakeUndelivered again = %d; want 0 (it starts again)", n)
	}
}
