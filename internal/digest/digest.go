// Package digest gathers the findings of the severities DIGEST_SEVERITIES
// names (default: low) into one message a day instead of one message each:
// counts per kind and the top users and addresses. The digest of day D
// holds the findings alerted from D−1 at DIGEST_HOUR (UTC, default 8) up to
// D at that hour; the first scheduled audit run after that hour sends it,
// once.
//
// Only messages change: the findings are still counted in the run's result,
// recorded as alerted, and sent to the findings bus and the archive like
// every other (the bus wrapper sits in front of this one).
package digest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
	"ipguard/internal/snsalert/snsmessage"
)

// maxTracked bounds the distinct users and addresses a digest counts
// separately (the rest are counted as "others"), so that one item holds it.
const maxTracked = 300

// top is how many users and addresses the message names.
const top = 10

// Digest is one day's gathered findings.
type Digest struct {
	Day       string         `json:"day"` // yyyy-mm-dd: the day it is sent (at the digest hour)
	Total     int            `json:"total"`
	Kinds     map[string]int `json:"kinds"`
	Users     map[string]int `json:"users"`
	Addresses map[string]int `json:"addresses"`
	Others    struct {
		Users, Addresses int
		Episodes         int `json:",omitempty"`
		// People: people without an allowlist beyond maxTracked.
		People int `json:",omitempty"`
	} `json:"others"`
	// People are the people who logged in without an allowlist
	// (UNKNOWN_USER_POLICY=digest: their DigestOnly findings), by user id
	// (at most maxTracked; the rest are counted in Others.People).
	People map[string]*Person `json:"people,omitempty"`
	// Logins outside the allowlist (#21 §2, episodes.go): familiar misses,
	// episodes, and per user id the networks behind the familiar misses.
	Familiar       []string                 `json:"familiar,omitempty"`
	FamiliarOthers int                      `json:"familiarOthers,omitempty"`
	Episodes       map[string]EpisodeLine   `json:"episodes,omitempty"`
	Networks       map[string]*UserNetworks `json:"networks,omitempty"`
	// Trips are the probable trips (logins from a new country told low
	// until the user's next login decides), at most maxFamiliarLines.
	Trips       []string `json:"trips,omitempty"`
	TripsOthers int      `json:"tripsOthers,omitempty"`
	// week: the suggestions of the last 7 days' digests (set when sent).
	week map[string]*UserNetworks
	// Counted are the keys of the findings counted (countedKey, at most
	// maxCounted): a finding published again (its alert failed further
	// down the chain after the digest took it, e.g. the findings bus's
	// outbox could not be written, and the audit sends it again) is not
	// counted twice.
	Counted []string `json:"counted,omitempty"`
	// Claimed is set (RFC3339) when a run starts sending it; Sent when SNS took it.
	Claimed string `json:"claimed,omitempty"`
	Sent    string `json:"sent,omitempty"`
}

// Person is one person who logged in without an allowlist.
type Person struct {
	Name string `json:"name"` // e-mail, else login, else user id (cleaned of secrets)
	// First is the date of their first such login in this digest (RFC3339).
	First  string `json:"first"`
	Logins int    `json:"logins"`
	// Type is the portal's user type when the audit looked it up (audit.UserGuest, ...).
	Type string `json:"type,omitempty"`
}

// Bounds of the texts one digest item keeps (it holds up to maxTracked
// people, users, addresses and episodes, so that it stays one DynamoDB item
// whatever the portal's names): a name or place, an address, a date, a line.
const (
	maxNameBytes = 100
	maxAddrBytes = 64
	maxDateBytes = 40
	maxLineBytes = 300
)

// kept is s as the digest item keeps it: cleaned of secrets and cut to n
// bytes (the message cleans it again for display).
func kept(s string, n int) string { return humantext.Clip(redact.Clean(s), n) }

// addPerson lists the person of a DigestOnly finding.
func (d *Digest) addPerson(f audit.Finding) {
	if d.People == nil {
		d.People = map[string]*Person{}
	}
	name := cmp.Or(f.Email, f.Login, f.User, f.UserID) // the first the finding has
	key := ipguard.CanonicalUserID(f.UserID)
	if key == "" {
		key = "name:" + name
	}
	key = kept(key, maxNameBytes)
	p := d.People[key]
	if p == nil {
		if len(d.People) >= maxTracked {
			d.Others.People++
			return
		}
		// Clipped: the item holds up to maxTracked people whatever the
		// portal's names (the message cleans them again for display).
		p = &Person{Name: kept(name, maxNameBytes), First: humantext.Clip(f.Date, maxDateBytes)}
		d.People[key] = p
	}
	p.Logins++
	if f.Date != "" && (p.First == "" || f.Date < p.First) {
		p.First = humantext.Clip(f.Date, maxDateBytes)
	}
	if f.UserType != "" {
		p.Type = humantext.Clip(f.UserType, 40)
	}
}

// maxCounted bounds the findings a digest remembers as counted (Counted),
// so that one item holds it; a finding past it is counted, not remembered.
const maxCounted = 1000

// countedKey names a finding as the findings bus's findingId does (its kind
// and event id; without one, its address, span and cause), hashed short; ""
// for a finding that names none of them (counted every time it comes).
func countedKey(f audit.Finding) string {
	var id string
	switch {
	case f.EventID != 0:
		id = strconv.FormatInt(f.EventID, 10)
	case f.IP != "" || f.FirstAt != "" || f.Date != "":
		id = f.IP + "|" + f.FirstAt + "|" + f.Date + "|" + f.Cause
	default:
		return ""
	}
	h := fnv.New64a()
	h.Write([]byte(f.Kind + "\x00" + id))
	return strconv.FormatUint(h.Sum64(), 36)
}

// addNew counts the findings of fs that d has not counted yet (Counted)
// and returns how many it counted.
func (d *Digest) addNew(fs []audit.Finding) int {
	seen := make(map[string]bool, len(d.Counted))
	for _, k := range d.Counted {
		seen[k] = true
	}
	n := 0
	for _, f := range fs {
		k := countedKey(f)
		if k != "" && seen[k] {
			continue
		}
		d.Add(f)
		n++
		if k != "" && len(d.Counted) < maxCounted {
			seen[k] = true
			d.Counted = append(d.Counted, k)
		}
	}
	return n
}

// Add counts f.
func (d *Digest) Add(f audit.Finding) {
	if f.DigestOnly && f.Kind == audit.KindUnknownUser {
		d.addPerson(f)
	}
	if d.Kinds == nil {
		d.Kinds, d.Users, d.Addresses = map[string]int{}, map[string]int{}, map[string]int{}
	}
	d.Total++
	d.Kinds[f.Kind]++
	user := cmp.Or(f.Email, f.Login, f.UserID)
	if f.Kind == audit.KindFailedLoginBurst && len(f.Logins) > 0 {
		user = f.Logins[0]
	}
	// Cleaned of secrets and cut before they are stored (the item outlives
	// the run, and holds maxTracked of each).
	count(d.Users, kept(user, maxNameBytes), &d.Others.Users)
	count(d.Addresses, kept(f.IP, maxAddrBytes), &d.Others.Addresses)
	d.addMiss(f, user)
}

func count(m map[string]int, k string, others *int) {
	if k == "" {
		return
	}
	if _, ok := m[k]; ok || len(m) < maxTracked {
		m[k]++
		return
	}
	*others++
}

// Day is the digest day that gathers a finding alerted at t: the date of
// the first digest hour after t (UTC).
func Day(t time.Time, hour int) string {
	t = t.UTC()
	if t.Hour() >= hour {
		t = t.AddDate(0, 0, 1)
	}
	return t.Format("2006-01-02")
}

// Due lists the digest days whose hour has come at now, oldest first: the
// latest (today from the digest hour on, else yesterday) and every day
// before it whose item may still be kept (keep): a digest whose runs all
// failed, or stopped short, for days is still sent once a run completes.
func Due(now time.Time, hour int) []string {
	now = now.UTC()
	latest := now
	if now.Hour() < hour {
		latest = now.AddDate(0, 0, -1)
	}
	days := int(keep / (24 * time.Hour))
	out := make([]string, 0, days+1)
	for k := days; k >= 0; k-- {
		out = append(out, latest.AddDate(0, 0, -k).Format("2006-01-02"))
	}
	return out
}

// Render is the digest message (pure). Values from the portal are cleaned
// (humantext.Line).
func Render(portal string, hour int, d Digest) ipguard.Alert {
	c := func(s string) string { return humantext.Line(s, 240) }
	var kinds []string
	for k := range d.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	day, _ := time.Parse("2006-01-02", d.Day)
	fmt.Fprintf(&b, "DocSpace IP Guard daily digest for %s: %d finding(s) from %s %02d:00 to %s %02d:00 UTC.\n",
		c(portal), d.Total, day.AddDate(0, 0, -1).Format("2006-01-02"), hour, d.Day, hour)
	if len(d.People)+d.Others.People > 0 {
		b.WriteString("These are findings of severities sent once a day (DIGEST_SEVERITIES) and logins of people without an\nallowlist (UNKNOWN_USER_POLICY=digest); each one is also on the findings bus.\n\nBy kind:\n")
	} else {
		b.WriteString("These are findings of severities sent once a day (DIGEST_SEVERITIES) and logins outside the allowlist told here rather than one by one (ALERT_MODE=grouped); each one is also on the findings bus.\n\nBy kind:\n")
	}
	for _, k := range kinds {
		fmt.Fprintf(&b, "  - %s: %d\n", k, d.Kinds[k])
	}
	section := func(name string, m map[string]int, others int) {
		fmt.Fprintf(&b, "\nTop %s:\n", name)
		for _, kv := range ranked(m, top) {
			fmt.Fprintf(&b, "  - %s: %d\n", c(kv.k), kv.n)
		}
		if rest := len(m) - top; rest > 0 || others > 0 {
			fmt.Fprintf(&b, "  (and %d more)\n", max(rest, 0)+others)
		}
	}
	section("users", d.Users, d.Others.Users)
	section("addresses", d.Addresses, d.Others.Addresses)
	people := listedPeople(d)
	writePeople(&b, d, people)
	week := d.week
	if week == nil {
		week = d.Networks
	}
	renderMisses(&b, d, week)
	fields := map[string]any{"kind": "digest", "portal": portal, "day": d.Day, "total": d.Total, "kinds": d.Kinds,
		"topUsers": ranked(d.Users, top), "topAddresses": ranked(d.Addresses, top),
		"familiarMisses": len(d.Familiar) + d.FamiliarOthers, "episodes": len(d.Episodes) + d.Others.Episodes}
	if n := len(d.People) + d.Others.People; n > 0 {
		fields["peopleWithoutAllowlist"] = n
		fields["people"] = people
	}
	body, _ := json.Marshal(fields)
	return ipguard.Alert{
		Subject: clipRunes(fmt.Sprintf("DocSpace daily digest %s: %d finding(s)", d.Day, d.Total), snsmessage.MaxSubjectRunes),
		Default: string(body),
		Email:   b.String(),
		SMS:     smsLine(d),
		Kinds:   []string{"digest"},
	}
}

// smsLine is the digest's SMS text ("1 finding", "3 findings").
func smsLine(d Digest) string {
	findings := fmt.Sprintf("%d findings", d.Total)
	if d.Total == 1 {
		findings = "1 finding"
	}
	if n := len(d.People) + d.Others.People; n > 0 {
		return fmt.Sprintf("DocSpace digest %s: %s, %d people without allowlist. See email.", d.Day, findings, n)
	}
	return fmt.Sprintf("DocSpace digest %s: %s. See email.", d.Day, findings)
}

// maxListedPeople is how many people without an allowlist the message names.
const maxListedPeople = 25

// listedPeople are the people the message names: the earliest seen
// first (ties by name), at most maxListedPeople.
func listedPeople(d Digest) []Person {
	out := make([]Person, 0, len(d.People))
	for _, p := range d.People {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].First != out[j].First {
			return out[i].First < out[j].First
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > maxListedPeople {
		out = out[:maxListedPeople]
	}
	return out
}

// writePeople is the digest's section on people without an allowlist
// (UNKNOWN_USER_POLICY=digest): "7 people logged in who have no
// allowlist: …, first seen …, guests: …". Names come from the portal
// and are cleaned (humantext.Line).
func writePeople(b *strings.Builder, d Digest, listed []Person) {
	n := len(d.People) + d.Others.People
	if n == 0 {
		return
	}
	c := func(s string) string { return humantext.Line(s, 240) }
	who := "people"
	if n == 1 {
		who = "person"
	}
	var names, guests []string
	first := ""
	for _, p := range listed {
		names = append(names, c(p.Name))
		if p.Type == audit.UserGuest {
			guests = append(guests, c(p.Name))
		}
	}
	for _, p := range d.People {
		if first == "" || (p.First != "" && p.First < first) {
			first = p.First
		}
	}
	more := ""
	if rest := n - len(listed); rest > 0 {
		more = fmt.Sprintf(" (and %d more)", rest)
	}
	fmt.Fprintf(b, "\n%d %s logged in who have no allowlist: %s%s, first seen %s", n, who, strings.Join(names, ", "), more, c(first))
	if len(guests) > 0 {
		fmt.Fprintf(b, ", guests: %s", strings.Join(guests, ", "))
	}
	b.WriteString(".\n")
	for _, p := range listed {
		kind := ""
		if p.Type != "" {
			kind = " (" + c(p.Type) + ")"
		}
		fmt.Fprintf(b, "  - %s%s: %s, first seen %s\n", c(p.Name), kind, logins(p.Logins), c(p.First))
	}
	b.WriteString("  Their logins were not sent one by one (UNKNOWN_USER_POLICY=digest); the behaviour rules judged\n" +
		"  them like everyone's. Onboard the ones who need an allowlist, or set UNKNOWN_USER_POLICY=ignore.\n")
}

func logins(n int) string {
	if n == 1 {
		return "1 login"
	}
	return fmt.Sprintf("%d logins", n)
}

type kv struct {
	k string
	n int
}

func (x kv) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"name": x.k, "count": x.n})
}

func ranked(m map[string]int, n int) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].k < out[j].k
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func clipRunes(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}

// Store keeps the digests (dynamo.Store): JSON items with a revision.
type Store interface {
	LoadRevised(ctx context.Context, pk string, v any) (rev int64, ok bool, err error)
	SaveRevised(ctx context.Context, pk string, v any, rev int64, expires time.Time) error
}

// Prefix keys the digest items: digest#<day>.
const Prefix = "digest#"

// keep is how long a digest item stays (expiresAt).
const keep = 8 * 24 * time.Hour

// claimStale: a claim older than this without Sent was a run that died
// while sending; a later run sends the digest.
const claimStale = 15 * time.Minute

// Publisher is the publisher seam's digest step: an audit alert whose
// severity is in Severities, or whose findings are all DigestOnly (people
// without an allowlist, UNKNOWN_USER_POLICY=digest, whatever their
// severity), is added to the day's digest instead of being sent; every
// other alert (the test alert, and any alert carrying a run-wide notice)
// goes to Next.
type Publisher struct {
	Next interface {
		Publish(ctx context.Context, a ipguard.Alert) (string, error)
	}
	Store      Store
	Severities map[string]bool // DIGEST_SEVERITIES
	Hour       int             // DIGEST_HOUR, UTC
	Portal     string
	Now        func() time.Time
	Log        *slog.Logger
}

// Publish adds the alert's findings to the digest of Day(now) (those it
// counted before only once: Counted) and returns
// "digest:<day>" (audit.DigestMessagePrefix) as the message id, or sends the alert on. Adding is one
// conditional write (retried on a concurrent change); a failure is returned
// like a failed publish, so the caller alerts the findings again later.
func (p *Publisher) Publish(ctx context.Context, a ipguard.Alert) (string, error) {
	var pl struct {
		audit.Payload
		Test bool `json:"test"`
	}
	unknownOnly := len(a.Kinds) == 1 && a.Kinds[0] == audit.KindUnknownUser
	if !(a.Digest || p.Severities[a.Severity] || unknownOnly) || json.Unmarshal([]byte(a.Default), &pl) != nil || pl.Events == nil || pl.Test {
		return p.Next.Publish(ctx, a)
	}
	if len(pl.Notices) > 0 {
		// Run-wide news (enforcement suspended) is told at once: a batch
		// that carries it is a message even when its findings would wait
		// for the digest.
		return p.Next.Publish(ctx, a)
	}
	if !a.Digest && !p.Severities[a.Severity] && !allDigestOnly(pl.Events) {
		return p.Next.Publish(ctx, a) // unknown_user findings told one by one (UNKNOWN_USER_POLICY=alert)
	}
	day := Day(p.now(), p.Hour)
	for attempt := 0; ; attempt++ {
		var d Digest
		rev, _, err := p.Store.LoadRevised(ctx, Prefix+day, &d)
		if err != nil {
			return "", fmt.Errorf("digest: read %s: %w", day, err)
		}
		d.Day = day
		if d.addNew(pl.Events) == 0 {
			return audit.DigestMessagePrefix + day, nil // every one was counted before
		}
		err = p.Store.SaveRevised(ctx, Prefix+day, d, rev, p.now().Add(keep))
		if err == nil {
			return audit.DigestMessagePrefix + day, nil
		}
		if ipguard.ErrorCode(err) != ipguard.EConflict || attempt == 4 {
			return "", fmt.Errorf("digest: add %d findings to %s: %w", len(pl.Events), day, err)
		}
	}
}

// allDigestOnly reports whether every finding of an alert is DigestOnly
// (audit.RenderAlerts puts them in batches of their own).
func allDigestOnly(fs []audit.Finding) bool {
	for _, f := range fs {
		if !f.DigestOnly {
			return false
		}
	}
	return len(fs) > 0
}

// SendDue sends each due digest (see Due) that holds findings and was not
// sent, once: a run claims it (a conditional write), publishes it to Next
// and marks it sent. A run that dies after its claim leaves the digest to
// a run 15 minutes later. It returns the days sent. A day that cannot be
// read or sent holds back no other day: SendDue goes on with the next and
// returns the first failure (with how many days failed) at the end.
func (p *Publisher) SendDue(ctx context.Context) (sent []string, err error) {
	var first error
	failed := 0
	for _, day := range Due(p.now(), p.Hour) {
		if ctx.Err() != nil {
			break
		}
		ok, derr := p.sendDay(ctx, day)
		if derr != nil {
			failed++
			if first == nil {
				first = derr
			}
			continue
		}
		if ok {
			sent = append(sent, day)
		}
	}
	if failed > 1 {
		first = fmt.Errorf("%w (and %d more days failed)", first, failed-1)
	}
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("digest: out of time before every due day was sent: %w", ctx.Err())
	}
	return sent, first
}

// sendDay sends the digest of day if it is due to be sent (see SendDue);
// ok says it was sent by this call.
func (p *Publisher) sendDay(ctx context.Context, day string) (ok bool, err error) {
	now := p.now()
	var d Digest
	rev, ok, err := p.Store.LoadRevised(ctx, Prefix+day, &d)
	if err != nil {
		return false, fmt.Errorf("digest: read %s: %w", day, err)
	}
	if !ok || d.Total == 0 || d.Sent != "" {
		return false, nil
	}
	if c, perr := time.Parse(time.RFC3339, d.Claimed); perr == nil && now.Sub(c) < claimStale {
		return false, nil // another run is sending it
	}
	d.Claimed = now.UTC().Format(time.RFC3339)
	if err := p.Store.SaveRevised(ctx, Prefix+day, d, rev, now.Add(keep)); err != nil {
		if ipguard.ErrorCode(err) == ipguard.EConflict {
			return false, nil
		}
		return false, fmt.Errorf("digest: claim %s: %w", day, err)
	}
	rev++
	d.week = p.weekNetworks(ctx, day, d)
	if _, err := p.Next.Publish(ctx, Render(p.Portal, p.Hour, d)); err != nil {
		d.Claimed = ""
		_ = p.Store.SaveRevised(ctx, Prefix+day, d, rev, now.Add(keep)) // the next run tries again
		return false, fmt.Errorf("digest: send %s: %w", day, err)
	}
	d.Sent = now.UTC().Format(time.RFC3339)
	if err := p.Store.SaveRevised(ctx, Prefix+day, d, rev, now.Add(keep)); err != nil {
		ipguard.LoggerOrDiscard(p.Log).WarnContext(ctx, "digest sent but not marked sent; a run 15 minutes after the claim may send it again", "day", day, "error", err.Error())
	}
	return true, nil
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

// weekNetworks merges the suggestions of day's digest with those of the six
// digest days before it (items are kept 8 days). A day that cannot be read
// is left out: the suggestion is advice, the digest is sent anyway.
func (p *Publisher) weekNetworks(ctx context.Context, day string, d Digest) map[string]*UserNetworks {
	week := map[string]*UserNetworks{}
	mergeWeek(week, d)
	t, err := time.Parse("2006-01-02", day)
	if err != nil {
		return week
	}
	for k := 1; k < 7; k++ {
		var old Digest
		if _, ok, err := p.Store.LoadRevised(ctx, Prefix+t.AddDate(0, 0, -k).Format("2006-01-02"), &old); err == nil && ok {
			mergeWeek(week, old)
		}
	}
	return week
}
