// Package redact removes secrets from text bound for a human: error
// messages, log lines and alerts.
//
// A secret is registered once it is known (the DocSpace API key and the
// secret string it came from, when Secrets Manager returns them: a JSON
// secret by each of its values, not its structure). From then on
// Clean replaces every run of MinRun or more consecutive characters that also
// occurs in a registered secret with "[redacted]", so that a truncated or
// partly echoed key is caught as well as the whole one. A secret shorter than
// MinRun is replaced only where it occurs whole.
//
// The registry is process-wide on purpose: every path out of the process (the
// logger, the Lambda response and error, the SNS publisher) cleans with it without
// being wired to the place the secret was read.
package redact

import (
	"strings"
	"sync"
)

// MinRun is the shortest run of a secret's characters that Clean removes.
const MinRun = 8

// Mark replaces each removed run.
const Mark = "[redacted]"

var (
	mu     sync.RWMutex
	grams  = map[string]struct{}{} // every MinRun-byte substring of a registered secret
	shorts []string                // registered secrets shorter than MinRun
)

// Remember registers secret; it is safe for concurrent use and idempotent.
// Leading and trailing white space is registered as part of the secret and
// without it.
func Remember(secret string) {
	if strings.TrimSpace(secret) == "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range []string{secret, strings.TrimSpace(secret)} {
		if len(s) < MinRun {
			if !contains(shorts, s) {
				shorts = append(shorts, s)
			}
			continue
		}
		for i := 0; i+MinRun <= len(s); i++ {
			grams[s[i:i+MinRun]] = struct{}{}
		}
	}
}

// Clean returns text with every run of at least MinRun bytes that occurs in a
// registered secret replaced by Mark. Text that holds no such run comes back
// unchanged (the same string, no copy).
func Clean(text string) string {
	mu.RLock()
	defer mu.RUnlock()
	if len(grams) == 0 && len(shorts) == 0 {
		return text
	}
	for _, s := range shorts {
		text = strings.ReplaceAll(text, s, Mark)
	}
	if len(grams) == 0 || len(text) < MinRun {
		return text
	}
	// A run is the union of overlapping or touching MinRun-byte windows of
	// text that are windows of some secret.
	var out strings.Builder
	written := 0 // text[:written] is in out
	start, end := -1, -1
	flush := func() {
		out.WriteString(text[written:start])
		out.WriteString(Mark)
		written = end
	}
	for i := 0; i+MinRun <= len(text); i++ {
		if _, hit := grams[text[i:i+MinRun]]; !hit {
			continue
		}
		if start >= 0 && i <= end {
			end = i + MinRun
			continue
		}
		if start >= 0 {
			flush()
		}
		start, end = i, i+MinRun
	}
	if start < 0 {
		return text
	}
	flush()
	out.WriteString(text[written:])
	return out.String()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
