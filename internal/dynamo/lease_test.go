package dynamo_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ipguard/internal/dynamo"
	"ipguard/internal/lease"
	"ipguard/internal/testbed/localaws"
)

// dropper is a proxy in front of moto that forwards every request and, for
// the next request whose target operation and body match, throws the answer
// away (closes the connection) after DynamoDB applied it: the lost answer
// that makes the SDK resend.
type dropper struct {
	target  string
	mu      sync.Mutex
	op      string // e.g. "PutItem"
	marker  string // substring of the body
	seen    int    // matching requests seen since armed
	dropped int
}

func (d *dropper) arm(op, marker string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.op, d.marker, d.seen, d.dropped = op, marker, 0, 0
}

func (d *dropper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, d.target+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)

	d.mu.Lock()
	drop := false
	if d.op != "" && strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+d.op) && strings.Contains(string(body), d.marker) {
		d.seen++
		if d.dropped == 0 {
			d.dropped++
			drop = true
		}
	}
	d.mu.Unlock()
	if drop {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

// TestLeaseResendRecognisesItsOwnToken: DynamoDB applies the conditional
// write, the answer is lost, the SDK resends, and the resend must still see
// the lease as ours (take) or as already gone (release). (A lease is never
// renewed: it lasts until the holder's Lambda deadline plus a grace.)
func TestLeaseResendRecognisesItsOwnToken(t *testing.T) {
	m := localaws.MotoT(t)
	_ = m
	cfg, err := localaws.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	plain := dynamodb.NewFromConfig(cfg)
	localaws.TableT(t, plain, "lease-drop")
	d := &dropper{target: strings.TrimRight(aws.ToString(cfg.BaseEndpoint), "/")}
	if d.target == "" {
		for _, kv := range m.Env() {
			if v, ok := strings.CutPrefix(kv, "AWS_ENDPOINT_URL="); ok {
				d.target = strings.TrimRight(v, "/")
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String("http://" + ln.Addr().String()) })
	s := dynamo.New(db, "lease-drop")
	ctx := context.Background()

	d.arm("PutItem", "lease#portal-allowlist")
	h, err := lease.Acquire(ctx, s, "portal-allowlist", lease.Options{Wait: 2 * time.Second})
	if err != nil {
		t.Fatalf("acquire after a lost answer: %v (the holder waited on its own record)", err)
	}
	if d.seen < 2 {
		t.Fatalf("the proxy saw %d take requests; the lost answer was not resent", d.seen)
	}

	d.arm("DeleteItem", "lease#portal-allowlist")
	if err := h.Release(ctx); err != nil {
		t.Fatalf("release after a lost answer: %v", err)
	}
	if d.seen < 2 {
		t.Fatalf("release not resent (%d)", d.seen)
	}
	// Released for real: another owner takes it at once.
	if ok, err := s.TryAcquireLease(ctx, "portal-allowlist", "next", time.Now().Add(time.Minute), time.Now()); err != nil || !ok {
		t.Fatalf("lease not free after release: %v, %v", ok, err)
	}
}
