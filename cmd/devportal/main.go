// Command devportal runs the dev DocSpace portal (package devportal) on a
// loopback address until SIGINT or SIGTERM:
//
//	devportal -admin-key sk-dev [-addr 127.0.0.1:8089] [-tz-offset 3h] [-user-key sk-user]
//
// The admin key may come from DEVPORTAL_ADMIN_KEY instead of the flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"ipguard/internal/testbed/devportal"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devportal:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8089", "loopback host:port to listen on")
	adminKey := flag.String("admin-key", "", "API key that authenticates as a DocSpace admin (default $DEVPORTAL_ADMIN_KEY)")
	userKey := flag.String("user-key", "", "optional API key of a non-admin user (answered 403)")
	tz := flag.Duration("tz-offset", 0, "portal time zone UTC offset for login event dates, e.g. 3h or -5h30m")
	flag.Parse()

	if *adminKey == "" { // read here, not as the flag default, so -h never prints it
		*adminKey = os.Getenv("DEVPORTAL_ADMIN_KEY")
	}
	if *adminKey == "" {
		return errors.New("-admin-key (or DEVPORTAL_ADMIN_KEY) is required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: the dev portal only listens on loopback", *addr)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	opts := devportal.Options{AdminKeys: []string{*adminKey}, TZOffset: *tz}
	if *userKey != "" {
		opts.UserKeys = []string{*userKey}
	}
	srv := &http.Server{Handler: devportal.New(opts).Handler(), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("DocSpace dev portal: http://%s/api/2.0 (control: http://%s/_dev/)\n", ln.Addr(), ln.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
