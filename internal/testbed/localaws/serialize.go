package localaws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// serialFront is a reverse proxy in front of moto that lets one DynamoDB
// request through at a time.
//
// Why: DynamoDB applies each single-item write, and its condition, atomically.
// moto_server answers requests on many threads and checks a condition and
// writes the item in two steps, so two concurrent conditional writes can both
// succeed (seen as two lease holders, or two claims of one event, on a loaded
// machine). Serialising the DynamoDB calls gives the tests the atomicity the
// real service has; other services pass through untouched and concurrently.
type serialFront struct {
	srv *http.Server
	ln  net.Listener

	mu    sync.Mutex
	stats DynamoStats
}

// DynamoStats counts the DynamoDB calls the front let through: how many of
// each operation, and how long moto held the line for them (its service
// time: calls are one at a time, so Busy is the stand-in's share of a run's
// wall time, and a call's wait in the queue is not in it).
type DynamoStats struct {
	Calls    int
	Busy     time.Duration
	ByOp     map[string]int
	BusyByOp map[string]time.Duration
}

func startSerialFront(target string) (*serialFront, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	var dynamo sync.Mutex
	f := &serialFront{ln: ln}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if target := r.Header.Get("X-Amz-Target"); strings.HasPrefix(target, "DynamoDB_") {
			dynamo.Lock()
			defer dynamo.Unlock()
			t0 := time.Now()
			defer func() { f.count(target[strings.IndexByte(target, '.')+1:], time.Since(t0)) }()
		}
		proxy.ServeHTTP(w, r)
	})
	f.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *serialFront) count(op string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stats.ByOp == nil {
		f.stats.ByOp, f.stats.BusyByOp = map[string]int{}, map[string]time.Duration{}
	}
	f.stats.Calls++
	f.stats.Busy += d
	f.stats.ByOp[op]++
	f.stats.BusyByOp[op] += d
}

// take returns the counts since the last take and starts again from zero.
func (f *serialFront) take() DynamoStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	f.stats = DynamoStats{}
	return s
}

func (f *serialFront) endpoint() string { return "http://" + f.ln.Addr().String() }

func (f *serialFront) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
