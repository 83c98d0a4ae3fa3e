package allowlist

import (
	"fmt"
	"strings"

	"ipguard/internal/ipguard"
)

// ParseList validates a whole request's entries. One bad entry rejects the
// list: the error is an ipguard EInvalid error whose field is
// "<field>[i]" and whose value is the entry as given. Duplicates (by
// canonical form) are merged, keeping the first position. A list that is empty
// or longer than lim.MaxEntries is rejected.
func ParseList(field string, raw []string, lim Limits) ([]Entry, error) {
	lim = lim.orDefault()
	if len(raw) == 0 {
		return nil, ipguard.Invalid(field, "", "must list at least one address, CIDR block or range")
	}
	if len(raw) > lim.MaxEntries {
		return nil, ipguard.Invalid(field, "", "has %d entries; at most %d are allowed", len(raw), lim.MaxEntries)
	}
	seen := make(map[string]bool, len(raw))
	out := make([]Entry, 0, len(raw))
	for i, s := range raw {
		e, err := ParseEntry(s, lim)
		if err != nil {
			return nil, ipguard.Invalid(fmt.Sprintf("%s[%d]", field, i), s, "%v", err)
		}
		if key := e.String(); !seen[key] {
			seen[key] = true
			out = append(out, e)
		}
	}
	return out, nil
}

// Strings returns the canonical text of each entry.
func Strings(entries []Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.String()
	}
	return out
}

// ParseStored parses entries read back from storage, which were canonical
// when written. It skips nothing: an entry that no longer parses is an error.
func ParseStored(raw []string) ([]Entry, error) {
	out := make([]Entry, 0, len(raw))
	for _, s := range raw {
		// Stored entries passed the configured limits when written; do not
		// re-apply (possibly tightened) limits here, only syntax.
		e, err := ParseEntry(s, Limits{MinPrefixV4: 1, MinPrefixV6: 1, MaxEntries: 1 << 30})
		if err != nil {
			return nil, fmt.Errorf("stored entry %q %v", s, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ParseLoginIP parses the address text of a login event. IPv4-mapped IPv6 is
// unmapped and a zone is dropped; text that is not an address (the portal
// cuts IPv6 at the first colon) reports false.
func ParseLoginIP(s string) (ipAddr Addr, ok bool) {
	a, err := parseLoose(strings.TrimSpace(s))
	if err != nil {
		return Addr{}, false
	}
	return a, true
}
