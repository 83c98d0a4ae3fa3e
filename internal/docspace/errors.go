package docspace

import (
	"errors"
	"fmt"
	"net/http"

	"ipguard/internal/ipguard"
)

// ErrNotSupported is in the chain of the *Error of a 404 answer from an
// endpoint that older portals lack (GET keys/@self before v3.1.1, the audit
// trail filter on portals that do not serve it): errors.Is(err,
// ErrNotSupported) lets a caller treat it as a warning.
var ErrNotSupported = errors.New("the portal does not offer this endpoint (an older DocSpace version)")

// ErrUserNotFound is in the chain of the *Error of a 404 answer to
// GET people/{id}: the user is unknown to the portal or was deleted.
var ErrUserNotFound = errors.New("no such user on the portal (unknown or deleted)")

// ErrKeyRotated is in the chain of the *Error of a call pinned to one API
// key (ipguard.WithKeyPin) that the portal refused (401) while the secret
// holds another key: the call is not sent again with it. The call was not
// applied; a later one, not pinned to the old key, uses the new key.
var ErrKeyRotated = errors.New("the API key was rotated during the pass (pinned to the old key)")

// Error is a failed DocSpace API call: no answer, an HTTP error status, an
// error envelope under any status, or a 2xx body that cannot be understood.
//
// It never contains the API key: server-provided text is scrubbed of the key
// before it is stored.
//
// It converts to the domain error with errors.As: asking for an
// *ipguard.Error yields one whose Code is e.Code(), whose message is
// e.Error() and whose Err is e. So ipguard.ErrorCode(err) classifies it.
type Error struct {
	Op     string // what the caller wanted, e.g. "put ip restrictions"
	Method string // HTTP method
	Path   string // request path without the query, e.g. /api/2.0/settings/iprestrictions
	// Status is the HTTP status of the last attempt, or the envelope's
	// statusCode when a 2xx body reports a failure; 0 when no answer came.
	Status   int
	Message  string // server message (scrubbed) with a hint, or the transport failure
	Attempts int    // HTTP requests made, including retries
	Err      error  // the underlying cause (transport or context error), if any
	// Unresolvable is set when the portal's host name does not resolve: the
	// address is wrong, not the network.
	Unresolvable bool
	// NotAPI is set when a 2xx answer is a web page, not the API's JSON: the
	// address serves something else than the DocSpace API.
	NotAPI bool
	// BadTLS is set when no TLS connection could be made: an https URL
	// that reaches a plain-http port, or a certificate that does not verify
	// for the host. The address (or a proxy in the way) is wrong, not the
	// network.
	BadTLS bool
	// NotApplied is set on a failed write (not a GET) known not to have
	// been applied: every attempt was refused with a 4xx answer, or none
	// was sent. Otherwise a write's outcome is unknown: it may land later.
	// errors.Is(err, ipguard.ErrNotApplied) tells it.
	NotApplied bool
	// MaybeApplied is set on a call sent once (not retried like a read)
	// whose answer was lost after the request may have reached the portal:
	// no answer, 500, 502 or 504. Whether it took effect is unknown.
	MaybeApplied bool
}

// Error reads like
// "docspace: put ip restrictions: PUT /api/2.0/settings/iprestrictions: HTTP 400: Add at least 1 allowed IP address. (after 1 attempt)".
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg == "" && e.Status != 0 {
		msg = http.StatusText(e.Status)
	}
	s := "docspace: " + e.Op + ": " + e.Method + " " + e.Path + ": "
	if e.Status != 0 {
		s += fmt.Sprintf("HTTP %d: ", e.Status)
	}
	s += msg
	switch e.Attempts {
	case 0:
	case 1:
		s += " (after 1 attempt)"
	default:
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

// Is reports ipguard.ErrNotApplied for a write known not to have been applied.
func (e *Error) Is(target error) bool { return target == ipguard.ErrNotApplied && e.NotApplied }

// Unwrap returns the transport or context error behind e, if any, so that
// errors.Is(err, context.DeadlineExceeded) works.
func (e *Error) Unwrap() error { return e.Err }

// Code classifies e for the domain, by what the caller can do about it:
// EConfig for an unresolvable host, a failed TLS handshake, 401, 402, 403, 404 and a 2xx web page
// (the key, its user, its scope, the plan or DOCSPACE_API_HOST must change; a
// 404 or an HTML page means the URL is not a DocSpace API);
// EUnavailable for no answer, 429 and 5xx (a later run may succeed);
// EInvalid for 400 (the request was refused as wrong);
// EInternal for anything else (an unexpected or malformed answer).
func (e *Error) Code() ipguard.Code {
	switch s := e.Status; {
	case e.Unresolvable, e.NotAPI, e.BadTLS:
		return ipguard.EConfig
	case s == 0, s == http.StatusTooManyRequests, s >= 500 && s <= 599:
		return ipguard.EUnavailable
	case s == http.StatusUnauthorized, s == http.StatusPaymentRequired, s == http.StatusForbidden, s == http.StatusNotFound:
		return ipguard.EConfig
	case s == http.StatusBadRequest:
		return ipguard.EInvalid
	default:
		return ipguard.EInternal
	}
}

// As lets errors.As(err, &target) with target of type *ipguard.Error find the
// domain view of e (see Error).
func (e *Error) As(target any) bool {
	t, ok := target.(**ipguard.Error)
	if !ok {
		return false
	}
	*t = &ipguard.Error{Code: e.Code(), Message: e.Error(), Err: e}
	return true
}

// Fix is one line that says what the operator must change for a failure
// whose cure is theirs (the address, the key, its rights, the plan), naming
// the variable; "" for any other failure.
func (e *Error) Fix() string {
	switch {
	case e.Unresolvable:
		return "fix DOCSPACE_API_HOST: its host name does not resolve; set it to the portal's base URL, e.g. https://yourportal.onlyoffice.com"
	case e.BadTLS:
		return "fix DOCSPACE_API_HOST: no TLS connection could be made (an https URL to a plain-http port, or a certificate that does not verify for the host)"
	case e.NotAPI:
		return "fix DOCSPACE_API_HOST: " + hint(http.StatusNotFound)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return "fix the API key: the portal refused it (re-read from the secret once); put a correct, active, unexpired key into the secret named by DOCSPACE_API_KEY_SECRET_ID"
	case http.StatusNotFound:
		if e.Err == nil { // not a 404 the caller expects (a user or an endpoint an older portal lacks)
			return "fix DOCSPACE_API_HOST: " + hint(http.StatusNotFound)
		}
	case http.StatusForbidden:
		return "fix the API key's rights: " + hint(http.StatusForbidden)
	case http.StatusPaymentRequired:
		return "fix the portal's plan: " + hint(http.StatusPaymentRequired)
	}
	return ""
}

// hint returns advice for statuses whose cure lies with the operator.
func hint(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "the API key was refused: check the key in the secret named by DOCSPACE_API_KEY_SECRET_ID is correct, active and not expired"
	case http.StatusForbidden:
		return "the key's user must be the portal owner or a DocSpace admin, the key needs the *:write (full access) scope (*:read suffices for reading), and this caller's IP must be allowed by the portal"
	case http.StatusPaymentRequired:
		return "the portal's pricing plan does not include this feature (login history/audit needs a paid plan)"
	case http.StatusNotFound:
		return "the address in DOCSPACE_API_HOST does not serve the DocSpace API: set it to the portal's base URL, e.g. https://yourportal.onlyoffice.com"
	}
	return ""
}
