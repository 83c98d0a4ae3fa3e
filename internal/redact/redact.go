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
	"encoding/json"
	"ipguard/internal/humantext"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The text a run is looked for in may have been escaped on its way out
// (a log line and a Lambda result are JSON, an error quotes with %q, an alert
// shows escaped text, and an alert's JSON body is JSON again inside the SNS
// message): a secret is also registered in each of those spellings, and in
// each spelling of those spellings, so that its runs are found there too.

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
// without it, each in its escaped spellings (see escapes).
func Remember(secret string) {
	if strings.TrimSpace(secret) == "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range spellings(secret, strings.TrimSpace(secret)) {
		if len(s) < MinRun {
			if !slices.Contains(shorts, s) {
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

// escapes are the ways text is escaped on a path out of the process.
var escapes = []func(string) string{
	func(s string) string { return jsonInner(s, true) },                     // encoding/json
	func(s string) string { return jsonInner(s, false) },                    // SNS message, slog
	func(s string) string { q := strconv.Quote(s); return q[1 : len(q)-1] }, // %q
	func(s string) string { return humantext.Line(s, math.MaxInt) },         // text for a person
}

// spellings are secrets and their spellings after one and after two escapes.
func spellings(secrets ...string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) bool {
		if seen[s] {
			return false
		}
		seen[s] = true
		out = append(out, s)
		return true
	}
	for _, s := range secrets {
		add(s)
		for _, e1 := range escapes {
			once := e1(s)
			add(once)
			for _, e2 := range escapes {
				add(e2(once))
			}
		}
	}
	return out
}

// jsonInner is s as a JSON string, without the quotes.
func jsonInner(s string, html bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(s) // a string always encodes
	q := strings.TrimSuffix(b.String(), "\n")
	return q[1 : len(q)-1]
}
