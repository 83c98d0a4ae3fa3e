// Package docspace is the adapter for the ONLYOFFICE DocSpace API: the HTTP
// client (API envelopes, retries on no answer, 429, 502, 503 and 504, a
// request-rate ceiling, the server's clock) and the ports the domain asks for
// over it, each beside the wire format it reads:
//
//   - the portal IP allowlist (onboard.Portal), the login history
//     (audit.Source, onboard.LoginHistory) and the allowlist audit trail
//     (AllowlistTrail, onboard.Trail);
//   - people and the key's user (Directory, onboard.Directory); Client.KeyUser
//     is the one answer to "who is the key's user" (keys/@self, people/@self
//     on portals older than v3.1.1);
//   - sessions and user status for the enforcement (EnforcePortal,
//     enforce.Portal) and the API key's own description (KeyWatchSource,
//     keywatch.Source).
//
// Every HTTP failure is returned as an *Error, which errors.As also converts
// to an *ipguard.Error carrying its classification (see Error.Code). Failures
// to obtain the API key come from the KeyProvider, wrapped with the call's
// name. The API key never appears in an error or a log line. Strings the
// portal returns are data an attacker may have chosen: they reach a person
// only through the domain's rendering.
package docspace

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
)

// KeyProvider supplies the DocSpace API key (sent as "Authorization: Bearer <key>").
//
// If it also has a method Refresh(ctx, refused) (or at least Invalidate()),
// the client calls it when the portal answers 401: a rotated key is picked
// up at once. When the key read again differs from the refused one, the
// refused call is sent once more with it, within the same invocation, so
// that rotating the key never fails a call; the same key refused again is
// final (401 is not retried otherwise).
type KeyProvider interface {
	Key(ctx context.Context) (string, error)
}

// invalidator is the optional side of a KeyProvider that drops a cached key.
type invalidator interface{ Invalidate() }

// refresher is the optional side of a KeyProvider that reads the key again
// after refused was refused (concurrent callers share one read).
type refresher interface {
	Refresh(ctx context.Context, refused string) (string, error)
}

// freshKey reads the key again after refused was refused; ok is false when
// the provider cannot, fails, or still has the refused key.
func (c *Client) freshKey(ctx context.Context, refused string) (string, bool) {
	var k string
	var err error
	switch p := c.keys.(type) {
	case refresher:
		k, err = p.Refresh(ctx, refused)
	case invalidator:
		p.Invalidate()
		k, err = c.keys.Key(ctx)
	default:
		return "", false
	}
	k = strings.TrimSpace(k)
	if err != nil || k == "" || k == refused {
		return "", false
	}
	redact.Remember(k)
	return k, true
}

// Options configure a Client. Only BaseURL and Keys are required.
type Options struct {
	// BaseURL is the portal address (DOCSPACE_API_HOST), e.g. https://portal.example.com.
	// A trailing slash or an /api/2.0 suffix is tolerated.
	BaseURL string
	// AllowHTTP permits an http:// BaseURL (DOCSPACE_ALLOW_HTTP; local use only).
	AllowHTTP bool
	// Keys supplies the API key for every request.
	Keys KeyProvider
	// HTTPClient sends the requests; nil means a default client that refuses
	// redirects to plain http unless AllowHTTP is set.
	HTTPClient *http.Client
	// Timeout bounds each attempt, from sending the request to reading the
	// whole body; default 10s.
	Timeout time.Duration
	// MaxAttempts bounds the attempts per call, first one included; default 5.
	MaxAttempts int
	// BaseBackoff is the ceiling of the first retry's random wait; default 200ms.
	BaseBackoff time.Duration
	// MaxBackoff caps the ceiling of the random waits; default 5s.
	// A server's Retry-After is honoured even when longer.
	MaxBackoff time.Duration
	// Logger receives a line per retry and refused key; nil discards.
	Logger *slog.Logger
	// RequestsPerMinute is a ceiling on the requests this client starts per
	// minute, across all calls made at the same time; 0 means none. The
	// portal documents 1500 a minute per user.
	RequestsPerMinute int
	// Budget, when set, shares RequestsPerMinute with every other client
	// that uses the same budget (other containers, the other function): a
	// request starts only with a token of it too (see BudgetWindow). nil,
	// or a ceiling under 7, means this client's pacer alone.
	Budget RequestBudget
}

// Client calls the DocSpace API. It is safe for concurrent use.
type Client struct {
	base        string // scheme://host[/prefix], without the /api/2.0 part
	keys        KeyProvider
	http        *http.Client
	timeout     time.Duration
	maxAttempts int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	log         *slog.Logger
	pace        *pacer
	budget      *budgetGate // nil: the pacer alone

	clockMu    sync.Mutex
	serverDate time.Time // Date header of the last answer
	receivedAt time.Time // local time that answer arrived
}

// maxDecodeMessage bounds the text of an answer that could not be read, in
// bytes (humantext.Line: it quotes the portal).
const maxDecodeMessage = 600

// maxBody bounds a response body; a login-history page of 100 events is ~50 KB.
const maxBody = 16 << 20

// New checks opts and returns a Client. A BaseURL that is not https (or http
// with AllowHTTP), or has no host, is an *ipguard.Error with Code EConfig and
// Field "DOCSPACE_API_HOST" naming the value.
func New(opts Options) (*Client, error) {
	base, err := baseURL(opts.BaseURL, opts.AllowHTTP)
	if err != nil {
		return nil, err
	}
	if opts.Keys == nil {
		return nil, ipguard.Errorf(ipguard.EInternal, "docspace: Options.Keys is nil")
	}
	c := &Client{
		base:        base,
		keys:        opts.Keys,
		http:        opts.HTTPClient,
		timeout:     opts.Timeout,
		maxAttempts: opts.MaxAttempts,
		baseBackoff: opts.BaseBackoff,
		maxBackoff:  opts.MaxBackoff,
		log:         opts.Logger,
		pace:        newPacer(opts.RequestsPerMinute),
	}
	if c.http == nil {
		c.http = defaultHTTPClient(opts.AllowHTTP, func(ctx context.Context) error {
			// A redirect followed is a request to the portal too: it
			// starts with its pacer slot and a token of the shared budget.
			return waitBoth(ctx, c.pace, c.budget)
		})
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 5
	}
	if c.baseBackoff <= 0 {
		c.baseBackoff = 200 * time.Millisecond
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = 5 * time.Second
	}
	if c.maxBackoff < c.baseBackoff {
		c.maxBackoff = c.baseBackoff
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.budget = newBudgetGate(opts.Budget, opts.RequestsPerMinute, c.log)
	return c, nil
}

// TakeBudgetFallbacks returns how many windows of the shared request budget
// (Options.Budget) this client let through on its own pacer because the
// budget's store failed, since the last call; 0 without a budget.
func (c *Client) TakeBudgetFallbacks() int {
	if c.budget == nil {
		return 0
	}
	return c.budget.takeFallbacks()
}

// ReserveAhead takes, in the background, this window's share of the shared
// request budget (Options.Budget) for requests about to be made, so that
// they do not wait for the budget's store on their way (the onboarding's
// reconcile calls it when it takes the lease). It returns at once and
// takes no token; without a budget it does nothing.
func (c *Client) ReserveAhead(ctx context.Context) {
	if c.budget != nil {
		go c.budget.ahead(ctx)
	}
}

// baseURL validates and normalises the portal address.
func baseURL(raw string, allowHTTP bool) (string, error) {
	const field = "DOCSPACE_API_HOST"
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", &ipguard.Error{Code: ipguard.EConfig, Field: field,
			Message: "is empty; set it to the portal address, e.g. https://portal.example.com"}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", &ipguard.Error{Code: ipguard.EConfig, Field: field, Value: raw,
			Message: "is not a URL; set it to the portal address, e.g. https://portal.example.com"}
	}
	bad := func(msg string) error {
		return &ipguard.Error{Code: ipguard.EConfig, Field: field, Value: u.Redacted(), Message: msg}
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !allowHTTP {
			return "", bad("must use https:// (http:// is allowed only with DOCSPACE_ALLOW_HTTP=true, for local use)")
		}
	default:
		return "", bad("must be an https:// URL, e.g. https://portal.example.com")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", bad("has no host; expected e.g. https://portal.example.com")
	}
	if u.User != nil {
		return "", bad("must not contain credentials; the API key comes from Secrets Manager")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", bad("must not have a query or fragment")
	}
	p := strings.TrimRight(u.EscapedPath(), "/")
	p = strings.TrimRight(strings.TrimSuffix(p, "/api/2.0"), "/")
	return strings.ToLower(u.Scheme) + "://" + u.Host + p, nil
}

// defaultHTTPClient follows redirects only while they keep to https (unless
// allowHTTP), so the key is never sent in clear text; each hop waits for
// pace (the client's pacer and shared budget) as any request does.
func defaultHTTPClient(allowHTTP bool, pace func(context.Context) error) *http.Client {
	return &http.Client{
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			if req.URL.Scheme != "https" && !allowHTTP {
				return fmt.Errorf("refused redirect to %s://%s: not https", req.URL.Scheme, req.URL.Host)
			}
			return pace(req.Context())
		},
	}
}

// call describes one API operation for do.
type call struct {
	op     string     // for messages, e.g. "get ip restrictions"
	method string     // HTTP method
	path   string     // e.g. /api/2.0/settings/iprestrictions
	query  url.Values // nil for none
	body   any        // JSON-encoded request body; nil for none
	// decode receives the envelope's "response" (nil when absent) of a
	// successful answer; its error makes the call fail as an unexpected answer.
	decode func(json.RawMessage) error
	// notFound, when set, becomes the Err of the *Error of a 404 answer, so
	// that errors.Is tells that answer apart (e.g. ErrNotSupported).
	notFound error
	// notFoundFromAPI: notFound applies only to the API's own JSON error
	// answer naming a missing item, never to a proxy page, an empty body or
	// the bare "Not Found" of a path the API does not serve (a wrong prefix).
	notFoundFromAPI bool
	// fenced: an attempt starts only while at least one attempt's timeout is
	// left before the context's deadline, so none can still run after it
	// (a writer's lease fence: see docs/allowlist-reconcile.md).
	fenced bool
	// date, when set, receives the Date header of the successful answer.
	date *time.Time
	// once: the call changes something and is not safe to send twice
	// blindly. It is retried only when the portal turned it away before
	// acting on it (429, 503); a failure after which it may have been
	// applied ends the call with Error.MaybeApplied set.
	once bool
}

// do runs c with retries (see retry.go); a 401 drops the cached key. Every
// attempt first waits for the client's pacer (rate ceiling, shared back-off).
func (c *Client) do(ctx context.Context, cl call) error {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("docspace: %s: encode request: %w", cl.op, err)
		}
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}

	key, err := c.key(ctx, cl.op)
	if err != nil {
		return err
	}
	sc := scrubber{key}
	// mayHaveLanded: an attempt of a write went without a definite refusal
	// (no answer, 5xx), so the write may have been applied, or may still be.
	mayHaveLanded := false
	notApplied := func(e *Error) *Error {
		e.NotApplied = cl.method != http.MethodGet && !mayHaveLanded
		return e
	}
	rekeyed := false
	fence := func(attempt int) *Error {
		if dl, ok := ctx.Deadline(); ok && cl.fenced && time.Until(dl) < c.timeout {
			return notApplied(&Error{Op: cl.op, Method: cl.method, Path: cl.path, Attempts: attempt - 1,
				Message: fmt.Sprintf("not sent: less than one attempt's timeout (%s) is left before the writer's lease ends (fence)", c.timeout),
				Err:     context.DeadlineExceeded})
		}
		return nil
	}
	for attempt := 1; ; attempt++ {
		if e := fence(attempt); e != nil {
			return e
		}
		if err := waitBoth(ctx, c.pace, c.budget); err != nil {
			msg := "gave up waiting for the request rate ceiling: " + err.Error()
			var past *ipguard.WaitPastDeadlineError
			if errors.As(err, &past) {
				msg = "not sent: " + err.Error()
			}
			return notApplied(&Error{Op: cl.op, Method: cl.method, Path: cl.path, Attempts: attempt - 1,
				Message: msg, Err: err})
		}
		if e := fence(attempt); e != nil {
			// Checked again when the attempt really starts: the rate
			// ceiling's wait may have taken the time it needed.
			return e
		}
		o := c.attempt(ctx, cl, target, body, key, sc)
		// Only a 4xx answer is a definite refusal: no answer, a 5xx, and
		// also a 2xx or 3xx whose body could not be read (the portal served
		// the request) leave the write possibly applied.
		if o.err != nil && (o.err.Status < 400 || o.err.Status >= 500) {
			mayHaveLanded = true
			if cl.method != http.MethodGet {
				// The writer's fence: this attempt may still land, also
				// when a retry is answered (ipguard.UnansweredWrites).
				ipguard.NoteUnansweredWrite(ctx, time.Now())
			}
		}
		if o.err == nil && cl.date != nil {
			*cl.date = o.date
		}
		if o.err == nil {
			if cl.decode == nil {
				return nil
			}
			raw := o.env.Response
			if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
				raw = nil
			}
			if err := cl.decode(raw); err != nil {
				return &Error{Op: cl.op, Method: cl.method, Path: cl.path, Status: o.status,
					Message: humantext.Line(sc.clean("unexpected response: "+err.Error()), maxDecodeMessage), Attempts: attempt, Err: err}
			}
			return nil
		}
		e := notApplied(o.err)
		e.Op, e.Method, e.Path, e.Attempts = cl.op, cl.method, cl.path, attempt
		if e.Status == http.StatusNotFound && cl.notFound != nil && e.Err == nil && (!cl.notFoundFromAPI || o.apiNotFound) {
			e.Err = cl.notFound
		}

		if e.Status == http.StatusUnauthorized {
			if !rekeyed {
				rekeyed = true
				if fresh, ok := c.freshKey(ctx, key); ok && ipguard.KeyPinFrom(ctx) != nil {
					// The call's key is pinned (a decision judged this
					// key): not sent again with another. The cache holds
					// the fresh key now, so the next pass uses it.
					c.log.WarnContext(ctx, "docspace: API key refused; the secret holds another key (rotated), but this call is pinned to the key it was judged by: not sent again",
						"op", cl.op, "method", cl.method, "path", cl.path)
					return notApplied(&Error{Op: cl.op, Method: cl.method, Path: cl.path, Attempts: attempt,
						Message: "not sent again: the API key was rotated during this pass, whose decisions were judged by the old key; the next pass uses the new one",
						Err:     ErrKeyRotated})
				} else if ok {
					c.log.WarnContext(ctx, "docspace: API key refused; the secret holds another key (rotated): sending again with it",
						"op", cl.op, "method", cl.method, "path", cl.path)
					key, sc = fresh, scrubber{fresh}
					continue
				}
			}
			c.log.ErrorContext(ctx, "docspace: API key refused, also as read from the secret again",
				"op", cl.op, "method", cl.method, "path", cl.path)
			return e
		}
		if cl.once && maybeApplied(e) {
			e.MaybeApplied = true
			return e
		}
		if !o.retry || attempt >= c.maxAttempts {
			return e
		}
		wait, fromServer := o.retryAfter, o.hasRetryAfter
		if !fromServer {
			wait = backoff(c.baseBackoff, c.maxBackoff, attempt)
		}
		if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
			c.pace.pause(wait) // the portal is overloaded: every request of this client waits
		}
		if dl, ok := ctx.Deadline(); ok && fromServer && time.Now().Add(wait).After(dl) {
			// The portal asked for a wait the caller cannot afford: say so
			// (typed), at once, rather than sleep into the deadline.
			past := &ipguard.WaitPastDeadlineError{Wait: wait, Left: time.Until(dl)}
			e.Message += "; " + past.Error()
			e.Err = errors.Join(e.Err, past)
			c.log.WarnContext(ctx, "docspace: giving up, the portal's Retry-After passes the deadline",
				"op", cl.op, "method", cl.method, "path", cl.path, "status", e.Status,
				"attempt", attempt, "wait", wait, "left", past.Left)
			return e
		}
		if !sleep(ctx, wait) {
			c.log.WarnContext(ctx, "docspace: giving up, the context ends before the next attempt",
				"op", cl.op, "method", cl.method, "path", cl.path, "status", e.Status,
				"attempt", attempt, "wait", wait, "error", e.Message)
			return e
		}
		c.log.WarnContext(ctx, "docspace: retrying",
			"op", cl.op, "method", cl.method, "path", cl.path, "status", e.Status,
			"attempt", attempt, "waited", wait, "retryAfter", fromServer, "error", e.Message)
	}
}

// key asks the provider for the API key.
func (c *Client) key(ctx context.Context, op string) (string, error) {
	k, err := c.keys.Key(ctx)
	if err != nil {
		return "", fmt.Errorf("docspace: %s: get API key: %w", op, err)
	}
	k = strings.TrimSpace(k)
	if k == "" {
		return "", ipguard.Errorf(ipguard.EConfig, "docspace: %s: the API key is empty", op)
	}
	redact.Remember(k)
	if pin := ipguard.KeyPinFrom(ctx); pin != nil {
		// The key the call's context was first served with, though the
		// cache may hold a rotated one by now (ipguard.KeyPin).
		return pin.Pin(k), nil
	}
	return k, nil
}

// outcome is the result of one attempt.
type outcome struct {
	env           envelope
	status        int
	err           *Error // nil on success; Op, Method, Path, Attempts filled by do
	retry         bool   // whether err may go away on a later attempt
	retryAfter    time.Duration
	hasRetryAfter bool
	date          time.Time // the answer's Date header (zero when none)
	apiNotFound   bool      // a 404 that is the API's own JSON error answer for a missing item
}

// attempt sends one request and classifies the answer.
func (c *Client) attempt(ctx context.Context, cl call, target string, body []byte, key string, sc scrubber) outcome {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, target, rd)
	if err != nil {
		return outcome{err: &Error{Message: sc.clean("build request: " + err.Error()), Err: err}}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("User-Agent", "ipguard-docspace/1")

	resp, err := c.http.Do(req)
	if err != nil {
		return c.noAnswer(ctx, actx, err, sc)
	}
	defer resp.Body.Close()
	c.noteServerDate(resp.Header.Get("Date"))
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return c.noAnswer(ctx, actx, fmt.Errorf("read response: %w", err), sc)
	}
	status := resp.StatusCode
	if len(data) > maxBody {
		return outcome{status: status, err: &Error{Status: status,
			Message: fmt.Sprintf("response larger than %d MiB", maxBody>>20)}}
	}
	ct := resp.Header.Get("Content-Type")

	if status >= 200 && status <= 299 {
		if len(bytes.TrimSpace(data)) == 0 && cl.decode == nil {
			return outcome{status: status, date: date.UTC()} // nothing to read, nothing wanted
		}
		env, err := decodeEnvelope(data)
		if err != nil {
			e := &Error{Status: status, Message: notJSON(data, ct, err, sc), Err: err}
			if strings.Contains(strings.ToLower(ct), "html") {
				// A web page where the API should answer: the address is wrong.
				e.NotAPI = true
				e.Message += " (" + hint(http.StatusNotFound) + ")"
			}
			return outcome{status: status, err: e}
		}
		if env.failed() {
			fs := status
			if env.StatusCode >= 400 {
				fs = env.StatusCode
			}
			return outcome{status: status, retry: isRetryable(fs), err: &Error{Status: fs,
				Message: withHint(fs, errorText(data, ct, sc))}}
		}
		return outcome{status: status, env: env, date: date.UTC()}
	}

	o := outcome{status: status, retry: isRetryable(status), err: &Error{Status: status,
		Message: withHint(status, errorText(data, ct, sc))}, apiNotFound: status == http.StatusNotFound && isAPINotFound(data)}
	if o.retry {
		o.retryAfter, o.hasRetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return o
}

// noAnswer classifies a transport failure: the caller's context ending is
// final; a per-attempt timeout or a network error may be retried.
func (c *Client) noAnswer(ctx, actx context.Context, err error, sc scrubber) outcome {
	switch {
	case ctx.Err() != nil:
		return outcome{err: &Error{Message: "gave up: " + ctx.Err().Error(), Err: errors.Join(ctx.Err(), err)}}
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return outcome{retry: true, err: &Error{Message: fmt.Sprintf("no answer within %s", c.timeout), Err: err}}
	default:
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return outcome{err: &Error{Unresolvable: true, Err: err, Message: sc.clean(fmt.Sprintf(
				"the portal host %q cannot be resolved: check DOCSPACE_API_HOST", dns.Name))}}
		}
		if badTLS(err) {
			return outcome{err: &Error{BadTLS: true, Err: err, Message: sc.clean(err.Error() +
				" (no TLS connection to the portal: check that DOCSPACE_API_HOST is the portal's https URL)")}}
		}
		return outcome{retry: true, err: &Error{Message: sc.clean(err.Error()), Err: err}}
	}
}

// badTLS reports whether err is a TLS failure that a retry cannot mend: a
// plain-http answer to an https request, or a certificate that does not
// verify.
func badTLS(err error) bool {
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &unknown) ||
		errors.As(err, &host) || errors.As(err, &invalid) ||
		// net/http replaces the tls.RecordHeaderError of a plain-http answer by this text.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// scrubber removes the API keys used by a call from text bound for an error
// or a log: every whole key, and every run of redact.MinRun or more
// characters of any key or secret the process has seen (a proxy that echoes
// a truncated Authorization header leaks part of the key).
type scrubber []string

func (s scrubber) clean(text string) string {
	for _, k := range s {
		if k != "" {
			text = strings.ReplaceAll(text, k, redact.Mark)
		}
	}
	return redact.Clean(text)
}

// noteServerDate remembers the Date header of an answer (ignored when absent
// or unreadable) with the local time it arrived.
func (c *Client) noteServerDate(h string) {
	d, err := http.ParseTime(h)
	if err != nil {
		return
	}
	now := time.Now()
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	c.serverDate, c.receivedAt = d.UTC(), now
}

// ServerDate returns the portal's clock as of the last answer: the HTTP Date
// header of the most recent response that carried one (any call, any
// status), and the local time that response arrived. Both are zero until
// then. The portal's clock minus the local one is about date.Sub(receivedAt),
// give or take a second (Date has whole seconds).
func (c *Client) ServerDate() (date, receivedAt time.Time) {
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	return c.serverDate, c.receivedAt
}

// maybeApplied reports whether a request that failed with e may have been
// acted on by the portal: no answer (but for a host that does not resolve or
// a failed TLS handshake), 500, 502 or 504.
func maybeApplied(e *Error) bool {
	switch e.Status {
	case 0:
		return !e.Unresolvable && !e.BadTLS
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}
