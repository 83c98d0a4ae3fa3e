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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_") {
			dynamo.Lock()
			defer dynamo.Unlock()
		}
		proxy.ServeHTTP(w, r)
	})
	f := &serialFront{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
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
