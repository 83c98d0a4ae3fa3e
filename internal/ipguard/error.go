package ipguard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ipguard/internal/humantext"
)

// Code classifies an error so that callers decide by kind, not by text.
type Code string

const (
	// EInvalid: the caller's input is wrong; retrying the same input fails again.
	EInvalid Code = "invalid"
	// EConfig: the deployment is misconfigured (environment, secret, permissions).
	EConfig Code = "config"
	// EUnavailable: a dependency (DocSpace, DynamoDB, SNS) failed; a later retry may succeed.
	EUnavailable Code = "unavailable"
	// EConflict: another run holds the resource (a lease) right now.
	EConflict Code = "conflict"
	// EInternal: anything else; a bug or an unexpected answer.
	EInternal Code = "internal"
)

// Error is an error with a Code, and for bad input the Field and Value at fault.
// Its message is written for the person who reads the Lambda error response and
// never contains a secret.
type Error struct {
	Code    Code
	Field   string // the input field or environment variable at fault, if any
	Value   string // the offending value, if any
	Message string
	Err     error // the underlying cause, if any
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		if e.Value != "" {
			msg = fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Message)
		} else {
			msg = fmt.Sprintf("%s: %s", e.Field, e.Message)
		}
	}
	if msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid reports bad input in field (e.g. "allowedIps[2]") with its value.
// The value is cut to 80 bytes (humantext.Clip, "…") so that one huge input
// cannot flood the error; Error quotes it (%q escapes what a person must not
// see raw). A field that quotes the input (a JSON key) is made one safe line
// (humantext.Line, at most 200 bytes), since Error does not quote it.
func Invalid(field, value, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: humantext.Line(field, 200), Value: humantext.Clip(value, 80), Message: fmt.Sprintf(format, args...)}
}

// Errorf builds an Error of the given code; its message is the formatted text
// and a %w verb in format also makes that cause reachable through errors.As.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// ErrorCode returns the Code of the first *Error in err's chain, EInternal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// Passing reports whether err is a passing unavailability of a dependency
// (429, 5xx, no answer in time: EUnavailable after the client's retries, or
// a deadline that ran out), which says nothing about the request itself
// (the key, the address): the next run asks again. A refusal (401, 403), a
// missing endpoint or an unexpected answer is not passing.
func Passing(err error) bool {
	return err != nil && (ErrorCode(err) == EUnavailable || errors.Is(err, context.DeadlineExceeded))
}

// WaitPastDeadlineError says a dependency asked to be called again only
// after Wait (e.g. an HTTP Retry-After), which would pass the caller's
// deadline, so the caller gave up at once instead of sleeping into it.
// errors.As finds it in the chain of the dependency's error.
type WaitPastDeadlineError struct {
	Wait time.Duration // how long the dependency asked to wait, from when it was asked
	Left time.Duration // how much of the deadline was left then
	// By names what asked to wait when it is not the portal's Retry-After
	// (for example the shared request budget); "" is the portal.
	By string
}

func (e *WaitPastDeadlineError) Error() string {
	if e.By != "" {
		return fmt.Sprintf("%s asks to wait %s, longer than the %s left before the deadline",
			e.By, e.Wait.Round(time.Second), e.Left.Round(time.Millisecond))
	}
	return fmt.Sprintf("the portal asked to wait %s (Retry-After), longer than the %s left before the deadline",
		e.Wait.Round(time.Second), e.Left.Round(time.Millisecond))
}
