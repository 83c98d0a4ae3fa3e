package localdeploy

import (
	"context"
	"testing"
	"time"

	"ipguard/internal/ipguard"
	"ipguard/internal/testbed/localaws"
)

func TestStackStandsUpAndStops(t *testing.T) {
	localaws.SkipShort(t, "moto_server")
	ctx := context.Background()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Store.PutUser(ctx, ipguard.User{ID: "u1", Email: "a@example.com", Entries: []string{"203.0.113.1"}}); err != nil {
		t.Fatalf("table from template not usable: %v", err)
	}
	if _, err := s.SNS.Publish(ctx, snsPublish(s.TopicARN)); err != nil {
		t.Fatal(err)
	}
	mail, err := s.Mail(ctx, 300*time.Millisecond)
	if err != nil || len(mail) != 1 || mail[0].Message != "hello" {
		t.Fatalf("mailbox: %+v %v", mail, err)
	}
	pid := s.Moto.PID
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Errorf("moto (pid %d) still running after Close", pid)
	}
}
