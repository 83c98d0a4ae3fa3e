package docspace

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retry policy.
//
// A call is tried again only when the failure says nothing about the request
// itself: no answer (connection failure, per-attempt timeout, body cut short),
// 429, 502, 503 or 504. 400, 401, 402, 403, 404 and 500 are final, and so is
// a host name that does not resolve or a failed TLS handshake (an https URL
// on a plain-http port, a certificate that does not verify). A 401 is never
// resent: the client drops the provider's cached key (see KeyProvider), so
// the next call, not this one, reads the secret again. A 2xx body that is
// not valid JSON is final too: the server answered, and asking again would
// most likely get the same answer.
//
// Waits use exponential backoff with full jitter (a random duration in
// [0, min(MaxBackoff, BaseBackoff·2^(n-1))) before retry n), unless the server
// sent Retry-After, which is honoured as is. No wait runs past the context's
// deadline: when the next one would, the call stops and returns the last error.

// isRetryable reports whether a failure with this status (0: no answer) may
// succeed when simply tried again.
func isRetryable(status int) bool {
	switch status {
	case 0, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff returns the full-jitter wait before retry n (n ≥ 1).
func backoff(base, max time.Duration, n int) time.Duration {
	ceiling := base
	for i := 1; i < n && ceiling < max; i++ {
		ceiling *= 2
	}
	if ceiling > max {
		ceiling = max
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// retryAfter parses a Retry-After header (delay-seconds or an HTTP-date) into
// a wait from now. ok is false when the header is absent or unreadable.
func retryAfter(h string, now time.Time) (wait time.Duration, ok bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// sleep waits for d unless ctx ends first. It refuses (returns false at once)
// when ctx's deadline comes before the wait would end.
func sleep(ctx context.Context, d time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Now().Add(d).After(deadline) {
		return false
	}
	return waitFor(ctx, d) == nil
}

// waitFor waits d (none when d <= 0) unless ctx ends first; then, or when
// ctx has already ended, it returns ctx.Err().
func waitFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
