package onboard

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
)

// Settings are the portal-side rules of the reconcile (PORTAL_*, the
// allowlist limits): the knobs, named as every service's are.
type Settings struct {
	// MaxRangeAddresses: CIDR blocks and ranges of at most this many
	// addresses are expanded into single addresses for the portal; larger
	// ones are kept for the audit only.
	MaxRangeAddresses int
	// Breakglass addresses are always present on the portal (canonical).
	Breakglass []string
	// Enforce switches restrictions on (when it is safe, see MayEnable);
	// otherwise the portal's setting is kept.
	Enforce bool
	// MaxEntries caps the portal list (PORTAL_MAX_ENTRIES); 0 means
	// DefaultMaxEntries.
	MaxEntries int
	// Limits bound what an entry may be.
	Limits allowlist.Limits
	// DriftRepair switches restrictions back on when someone switched them
	// off while Enforce is set (PORTAL_DRIFT_REPAIR).
	DriftRepair bool
	// OffboardRemovedUsers offboards stored users the portal no longer has
	// or has terminated (OFFBOARD_REMOVED_USERS).
	OffboardRemovedUsers bool
	// OffboardMaxPercent bounds the users who left offboarded at once, in
	// percent of the stored users (default 10; at least OffboardMinUsers).
	OffboardMaxPercent int
}

// DefaultMaxEntries is the default cap of the portal list.
const DefaultMaxEntries = 2000

func (r Settings) maxEntries() int {
	if r.MaxEntries <= 0 {
		return DefaultMaxEntries
	}
	return r.MaxEntries
}

// NotPushed is an entry kept in the source of truth but not sent to the portal.
type NotPushed struct {
	Entry  string `json:"entry"`
	Reason string `json:"reason"`
}

// Desired is what the portal should allow: the addresses, in a stable order
// (users by id, entries in stored order, then break-glass), with who needs
// each, and the entries that cannot be pushed.
type Desired struct {
	Addrs     []string
	NeededBy  map[string][]string // address → user ids ("breakglass" for the break-glass list)
	NotPushed map[string][]NotPushed
	// Unreadable are stored users whose record cannot be decoded: what they
	// need is unknown, so while there are any no owned address is removed.
	Unreadable []string
	// Overflow: the entries need more addresses than the portal list may
	// hold (PORTAL_MAX_ENTRIES); expansion stopped there, before
	// allocating the rest. OverflowBy names the first user it stopped at.
	Overflow   bool
	OverflowBy string
	// beyond covers the pushable entries the expansion stopped before
	// (Overflow): their addresses are not in Addrs, but still needed, so
	// a plan never removes them (a removal-only plan past the cap).
	beyond allowlist.Set
}

// Needs reports whether a is a desired address: one of Addrs, or, past
// the cap (Overflow), an address of an entry the expansion stopped before.
func (d Desired) Needs(a string) bool {
	if _, ok := d.NeededBy[a]; ok {
		return true
	}
	if !d.Overflow {
		return false
	}
	ip, err := netip.ParseAddr(a)
	return err == nil && d.beyond.Contains(ip)
}

// DesiredState computes the desired addresses from the stored users'
// unexpired entries at now and the break-glass list. A block or range larger
// than MaxRangeAddresses is not pushed (the portal stores single addresses).
func DesiredState(users []ipguard.User, r Settings, now time.Time) Desired {
	d := Desired{NeededBy: map[string][]string{}, NotPushed: map[string][]NotPushed{}}
	users = slices.Clone(users)
	sort.Slice(users, func(i, j int) bool { return users[i].ID < users[j].ID })
	need := func(a, who string) {
		if _, ok := d.NeededBy[a]; !ok {
			d.Addrs = append(d.Addrs, a)
		}
		if by := d.NeededBy[a]; len(by) == 0 || by[len(by)-1] != who {
			d.NeededBy[a] = append(by, who)
		}
	}
	var beyond []allowlist.Entry // pushable entries past the cap (Overflow)
	for _, u := range users {
		if u.Unreadable != "" {
			d.Unreadable = append(d.Unreadable, u.ID)
			continue
		}
		for _, raw := range u.ActiveEntries(now) {
			e, err := allowlist.ParseStored([]string{raw})
			if err != nil {
				d.NotPushed[u.ID] = append(d.NotPushed[u.ID], NotPushed{Entry: raw, Reason: "stored entry does not parse: " + err.Error()})
				continue
			}
			// Bound the expansion before allocating it: never more addresses
			// than the cap allows in all (many large ranges at the largest
			// PORTAL_MAX_RANGE_ADDRESSES would otherwise exhaust memory). A
			// block larger than the cap overflows unexpanded; a smaller one
			// (at most the cap's addresses, allocated for a moment) counts
			// only the addresses it adds: users who share an office block
			// need it once.
			limit := r.maxEntries() + len(r.Breakglass)
			overflow := func() {
				if !d.Overflow {
					d.Overflow, d.OverflowBy = true, u.ID
				}
				beyond = append(beyond, e[0])
			}
			if n := e[0].NumAddresses(); n.IsInt64() && n.Int64() <= int64(r.MaxRangeAddresses) && (d.Overflow || n.Int64() > int64(limit)) {
				// Past the cap already (or by itself): not expanded, its
				// addresses needed all the same (beyond).
				overflow()
				continue
			}
			addrs, ok := e[0].Expand(r.MaxRangeAddresses)
			if ok && len(d.Addrs)+len(addrs) > limit {
				fresh := 0
				for _, a := range addrs {
					if _, ok := d.NeededBy[a.String()]; !ok {
						fresh++
					}
				}
				if len(d.Addrs)+fresh > limit {
					overflow()
					continue
				}
			}
			if !ok {
				d.NotPushed[u.ID] = append(d.NotPushed[u.ID], NotPushed{Entry: raw, Reason: fmt.Sprintf(
					"covers %s addresses, more than PORTAL_MAX_RANGE_ADDRESSES (%d); the portal stores only single addresses, so it is not pushed, only kept in DynamoDB for the audit: "+
						"while IP restrictions are on, the portal refuses logins from its addresses that no other entry lets in (the portal owner excepted); "+
						"send the addresses the user logs in from, or blocks of at most %d addresses",
					e[0].NumAddresses(), r.MaxRangeAddresses, r.MaxRangeAddresses)})
				continue
			}
			for _, a := range addrs {
				need(a.String(), u.ID)
			}
		}
	}
	for _, b := range r.Breakglass {
		need(b, "breakglass")
	}
	if len(beyond) > 0 {
		d.beyond = allowlist.NewSet(beyond)
	}
	return d
}

// Plan is one reconcile of the portal's list with the desired state.
//
//	portal now:    [ manual entries (not owned) ] [ owned, still needed ] [ owned, no longer needed ]
//	desired:       [ manual entries, unchanged  ] [ owned, still needed ] [ needed, missing → added, owned ]
//
// Every entry the tool does not own stays exactly as it is (ip, forAdmin);
// an owned address stays while some user's unexpired entry or break-glass
// needs it (or while a stored user is unreadable), and is removed otherwise; a needed address with no non-admin
// entry is added and becomes owned. A needed address already present as a
// non-admin entry the tool does not own is never owned, so never removed.
type Plan struct {
	List         []ipguard.Restriction // the whole list to PUT
	Owned        []string              // owned addresses after the PUT
	Added        []string              // addresses added (owned from now on)
	Removed      []string              // owned addresses removed
	MissingOwned []string              // owned, needed, but gone from the portal (drift): re-added
	Enable       bool                  // the enable flag to send
	Put          bool                  // false when nothing would change: no PUT is sent
	Warnings     []string
	// CapErr is set when the additions would pass the cap: the plan then
	// holds only the removals (applied), and the additions stay pending.
	CapErr error
}

// EnableRule says when restrictions may be switched on.
type EnableRule struct {
	// Allowed: switching on cannot lock the tool's key out (the key's
	// creator is the portal owner, or break-glass addresses are set).
	Allowed bool
	// Why explains a refusal; Kind names its cause (the alert's episode).
	Why  string
	Kind string
	// KeepOff: restrictions were switched off by hand and drift repair is
	// off: leave them off.
	KeepOff bool
	// Unavailable: the preflight could not ask the portal for a passing
	// reason (429, 5xx, no answer): not Allowed this pass, but no lock-out
	// risk either. The reconcile raises no lock-out alert, leaves the
	// lock-out episode as it was, and ends pending with this error
	// (EUnavailable), so that the next reconcile asks again.
	Unavailable error
}

// PlanReconcile plans the PUT that brings current (the portal's list, with
// enabled its setting) to the desired state d, given the owned addresses.
// It fails (EConfig) when the list would hold more than MaxEntries entries.
func PlanReconcile(current []ipguard.Restriction, enabled bool, owned []string, d Desired, r Settings, en EnableRule) (Plan, error) {
	var p Plan
	ownedSet := make(map[string]bool, len(owned))
	for _, a := range owned {
		ownedSet[a] = true
	}
	claimed := map[string]bool{} // owned address whose (first non-admin) entry was seen
	present := map[string]bool{} // addresses with a non-admin entry in the new list
	for _, c := range current {
		if !c.ForAdmin && ownedSet[c.IP] && !claimed[c.IP] {
			claimed[c.IP] = true
			if d.Needs(c.IP) || len(d.Unreadable) > 0 {
				p.List = append(p.List, c)
				present[c.IP] = true
				p.Owned = append(p.Owned, c.IP)
			} else {
				p.Removed = append(p.Removed, c.IP)
			}
			continue
		}
		p.List = append(p.List, c) // not ours: unchanged
		if !c.ForAdmin {
			present[c.IP] = true
		}
	}
	for _, a := range d.Addrs {
		if present[a] {
			continue
		}
		// Missing, or present only as a forAdmin entry (which lets only
		// admins in): a non-admin entry of our own.
		present[a] = true
		p.List = append(p.List, ipguard.Restriction{IP: a})
		p.Added = append(p.Added, a)
		p.Owned = append(p.Owned, a)
		if ownedSet[a] && !claimed[a] {
			p.MissingOwned = append(p.MissingOwned, a)
		}
	}
	if len(d.Unreadable) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf(
			"stored user(s) %s cannot be read, so what they need is unknown: no address is removed from the portal until their items (pk user#<id>) are fixed or deleted in the table",
			humantext.Line(strings.Join(d.Unreadable, ", "), 300)))
	}
	if n := len(p.List); n > r.maxEntries() || d.Overflow {
		// The portal's own entries can pass the cap: a configuration
		// matter (raise the cap or clean the portal), not the caller's input.
		capErr := &ipguard.Error{Code: ipguard.EConfig, Field: "PORTAL_MAX_ENTRIES", Value: fmt.Sprint(r.maxEntries()),
			Message: fmt.Sprintf("the portal list would hold %d entries or more, more than the cap; remove entries or raise PORTAL_MAX_ENTRIES", n)}
		if len(p.Removed) == 0 {
			return Plan{}, capErr
		}
		// A security removal never waits behind additions that pass the
		// cap: the removals go out alone, the additions stay pending.
		added := map[string]bool{}
		for _, a := range p.Added {
			added[a] = true
		}
		p.List = slices.DeleteFunc(p.List, func(x ipguard.Restriction) bool { return !x.ForAdmin && added[x.IP] })
		p.Owned = slices.DeleteFunc(p.Owned, func(a string) bool { return added[a] })
		p.Added, p.MissingOwned, p.CapErr = nil, nil, capErr
	}
	p.Enable = enabled
	switch {
	case !r.Enforce || enabled:
	case len(p.List) == 0:
		// The portal refuses enable=true with an empty list.
		p.Warnings = append(p.Warnings, "restrictions not enabled: the portal list would be empty (no entry small enough to push and no PORTAL_BREAKGLASS_IPS)")
	case en.KeepOff:
		p.Warnings = append(p.Warnings, "restrictions are off on the portal although PORTAL_ENFORCE=true; left off because PORTAL_DRIFT_REPAIR=false (an admin may have switched them off on purpose)")
	case !en.Allowed:
		p.Warnings = append(p.Warnings, "restrictions not enabled: "+en.Why)
	default:
		p.Enable = true
	}
	if len(p.List) == 0 && p.Enable {
		// The portal refuses enable=true with an empty list, and an empty
		// list restricts nobody anyway.
		p.Enable = false
		p.Warnings = append(p.Warnings, "restrictions switched off: the last entry left the portal list and an empty list cannot be enforced; set PORTAL_BREAKGLASS_IPS to keep restrictions on")
	}
	p.Put = len(p.Added) > 0 || len(p.Removed) > 0 || p.Enable != enabled
	return p, nil
}

// CheckKept is the invariant checked before every PUT: every entry of
// current that the tool does not own (all but the first non-admin entry of
// each owned address) is in next, unchanged, as often as before. A plan
// that breaks it is a bug and is never sent (EInternal).
func CheckKept(current, next []ipguard.Restriction, owned []string) error {
	ownedSet := make(map[string]bool, len(owned))
	for _, a := range owned {
		ownedSet[a] = true
	}
	have := map[ipguard.Restriction]int{}
	for _, n := range next {
		have[n]++
	}
	claimed := map[string]bool{}
	var lost []string
	for _, c := range current {
		if !c.ForAdmin && ownedSet[c.IP] && !claimed[c.IP] {
			claimed[c.IP] = true
			continue
		}
		if have[c] == 0 {
			lost = append(lost, describe(c))
			continue
		}
		have[c]--
	}
	if len(lost) > 0 {
		return ipguard.Errorf(ipguard.EInternal,
			"refusing to update the portal allowlist: the new list would drop or change entries this tool does not own (%s); nothing was sent",
			strings.Join(lost, ", "))
	}
	return nil
}

func describe(r ipguard.Restriction) string {
	if r.ForAdmin {
		return r.IP + " (forAdmin)"
	}
	return r.IP
}

// sameList reports whether a and b hold the same entries (order ignored).
func sameList(a, b []ipguard.Restriction) bool {
	if len(a) != len(b) {
		return false
	}
	n := map[ipguard.Restriction]int{}
	for _, r := range a {
		n[r]++
	}
	for _, r := range b {
		if n[r]--; n[r] < 0 {
			return false
		}
	}
	return true
}

// diffList returns the entries of a that are not in b (multiset difference).
func diffList(a, b []ipguard.Restriction) []ipguard.Restriction {
	n := map[ipguard.Restriction]int{}
	for _, r := range b {
		n[r]++
	}
	var out []ipguard.Restriction
	for _, r := range a {
		if n[r] > 0 {
			n[r]--
			continue
		}
		out = append(out, r)
	}
	return out
}
