package integration

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"ipguard/internal/config"
)

// The key-expiry alert's chat copy is counted like every other alert's: a
// chat topic that refuses it makes the run's metrics line declare
// ChatUndelivered (ChatUndeliveredAlarm). Before, the key watch had a
// publisher chain of its own whose chat failures no line counted (attack
// review of the audit path).
func TestAKeyAlertsFailedChatCopyIsCounted(t *testing.T) {
	s := deploy(t)
	topic := os.Getenv("ALERT_TOPIC_ARN")
	i := strings.LastIndex(topic, ":")
	t.Setenv("CHAT_TOPIC_ARN", topic[:i+1]+"no-such-chat-topic") // publishing to it fails
	setKey(t, s, expiresIn(10*24*time.Hour))                     // past the 14-day threshold: one alert
	d := loadQuiet(t, config.Audit)
	var lines bytes.Buffer
	d.MetricsOut = &lines
	if _, err := d.AuditHandler()(context.Background(), scheduled(time.Now())); err != nil {
		t.Fatal(err)
	}
	if got := keyAlerts(t, s); len(got) != 1 {
		t.Fatalf("key alerts %v; want one", got)
	}
	if l := lines.String(); !strings.Contains(l, `{"Name":"ChatUndelivered"`) || strings.Contains(l, `"ChatUndelivered":0`) {
		t.Errorf("metrics line %s; want ChatUndelivered declared above 0 for the key alert's failed chat copy", l)
	}
}
