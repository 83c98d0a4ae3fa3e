package wiring

import (
	"errors"
	"strings"

	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
)

// errorMessage is the message of err's Lambda error response, cleaned of
// secrets. Its first line says what to fix when err is a configuration
// error that knows it (a broken portal URL, a missing secret, a refused
// key: the innermost cause that names a variable or the portal's answer);
// the full chain follows on the next line for the record.
func errorMessage(err error) string {
	msg := redact.Clean(err.Error())
	if fix := fixLine(err); fix != "" && !strings.HasPrefix(msg, fix) {
		return fix + "\n" + msg
	}
	return msg
}

// fixLine is the one line that says what to fix, or "".
func fixLine(err error) string {
	if ipguard.ErrorCode(err) != ipguard.EConfig {
		return ""
	}
	var de *docspace.Error
	if errors.As(err, &de) {
		if f := de.Fix(); f != "" {
			return redact.Clean(f)
		}
	}
	// The innermost configuration error: one that names a variable if any
	// does, else the deepest (an AWS one names its variable in its text),
	// without the SDK's own chain.
	var named, deepest *ipguard.Error
	walk(err, func(e error) {
		if ie, ok := e.(*ipguard.Error); ok && ie.Code == ipguard.EConfig {
			deepest = ie
			if ie.Field != "" {
				named = ie
			}
		}
	})
	if named == nil {
		named = deepest
	}
	if named == nil {
		return ""
	}
	line := named.Error()
	if i := strings.Index(line, ": operation error "); i > 0 {
		line = line[:i]
	}
	line, _, _ = strings.Cut(line, "\n")
	return redact.Clean(line)
}

// walk visits err and every error in its tree, outermost first.
func walk(err error, visit func(error)) {
	if err == nil {
		return
	}
	visit(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), visit)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, visit)
		}
	}
}
