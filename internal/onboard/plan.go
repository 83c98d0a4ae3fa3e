package onboard

import (
	"fmt"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
)

// Rules are the portal-side onboarding rules.
type Rules struct {
	// MaxRangeAddresses: CIDR blocks and ranges of at most this many
	// addresses are expanded into single addresses for the portal; larger
	// ones are kept for the audit only.
	MaxRangeAddresses int
	// Breakglass addresses are always present on the portal (canonical).
	Breakglass []string
	// Enforce sends enable=true; otherwise the portal's setting is kept.
	Enforce bool
	// Limits bound what an entry may be.
	Limits allowlist.Limits
}

// NotPushed is an entry kept in the source of truth but not sent to the portal.
type NotPushed struct {
	Entry  string `json:"entry"`
	Reason string `json:"reason"`
}

// Plan is what one onboarding does to the portal's allowlist.
type Plan struct {
	List      []ipguard.Restriction // the whole list to PUT: every current entry unchanged, then the additions
	Added     []string              // addresses appended, in order
	NotPushed []NotPushed
	Enable    bool // the enable flag to send
	Put       bool // false when nothing would change: no PUT is sent
	Warnings  []string
}

// PlanPortal merges a user's entries into the portal's current list.
//
// Every current entry is kept exactly as it was (text, forAdmin flag, order),
// no address is added twice, breakglass addresses are always present, and the
// portal compares strings exactly, so additions are canonical single
// addresses. enable is always explicit; a list that would be empty is never
// sent with enable true.
func PlanPortal(current []ipguard.Restriction, currentEnabled bool, entries []allowlist.Entry, r Rules) Plan {
	p := Plan{List: append([]ipguard.Restriction(nil), current...)}
	present := make(map[string]bool, len(current))
	for _, c := range current {
		present[c.IP] = true
	}
	add := func(ip string) {
		if !present[ip] {
			present[ip] = true
			p.List = append(p.List, ipguard.Restriction{IP: ip})
			p.Added = append(p.Added, ip)
		}
	}
	for _, e := range entries {
		addrs, ok := e.Expand(r.MaxRangeAddresses)
		if !ok {
			p.NotPushed = append(p.NotPushed, NotPushed{Entry: e.String(), Reason: fmt.Sprintf(
				"covers %s addresses, more than PORTAL_MAX_RANGE_ADDRESSES (%d); the portal stores only single addresses, so it is kept in DynamoDB for the audit but not pushed",
				e.NumAddresses(), r.MaxRangeAddresses)})
			continue
		}
		for _, a := range addrs {
			add(a.String())
		}
	}
	for _, b := range r.Breakglass {
		add(b)
	}
	p.Enable = currentEnabled
	if r.Enforce {
		p.Enable = true
	}
	if len(p.List) == 0 {
		// Nothing to allow: never ask for enable=true with an empty list (the
		// portal rejects it), and leave the current setting alone.
		p.Enable = currentEnabled
	}
	if r.Enforce && !p.Enable {
		p.Warnings = append(p.Warnings, "restrictions not enabled: the portal list would be empty (no entry small enough to push and no PORTAL_BREAKGLASS_IPS)")
	}
	p.Put = len(p.Added) > 0 || p.Enable != currentEnabled
	return p
}
