// Package devportal is a local stand-in for the ONLYOFFICE DocSpace API: the
// IP-restriction, login-audit, audit-trail, API-key, people and
// active-connection endpoints under /api/2.0, answering the way
// docs/docspace-api.md documents the real server (envelopes, status
// codes, validation, quirks such as non-stable ids, truncated IPv6 addresses
// and filters applied inside the page window), plus switches that inject
// faults (rate limits, proxy errors, delays, broken bodies) and a small
// unauthenticated control API under /_dev/ for demos.
//
// It is a test and demo tool: it keeps everything in memory, serves one
// tenant (id 1) and must only listen on loopback.
package devportal

import (
	"math/rand/v2"
	"sync"
	"time"

	"ipguard/internal/ipguard"
)

// Options configures a Portal. The zero value is a portal nobody can call
// (every request answers 401) with its time zone at UTC. Every portal starts
// with two users: the owner (OwnerID) and a regular user (RegularUserID).
type Options struct {
	AdminKeys []string      // keys created by the owner (a DocSpace admin for every route)
	UserKeys  []string      // keys created by the regular user (403 on admin routes)
	TZOffset  time.Duration // portal time zone UTC offset for event dates (e.g. 3*time.Hour)
}

// Portal is one in-memory DocSpace tenant. All methods are safe for
// concurrent use, also while Handler serves requests.
type Portal struct {
	mu sync.Mutex

	users    map[string]*User   // by canonical GUID
	keys     map[string]*APIKey // by secret
	keyCount int
	skew     time.Duration // portal clock minus real clock

	ended   map[int64]string // login event id → what ended its session
	logouts []LogoutCall

	audit        []AuditEvent
	nextAuditID  int64
	noKeysSelf   bool
	noAuditTrail bool
	auditLag     time.Duration // events of action 2000 and up show this long after their date (SetAuditLag)

	restrictions []storedRestriction
	enable       bool
	lastModified time.Time // zero until the first save
	nextRowID    int32

	events      []LoginEvent
	byDate      []LoginEvent // events sorted newest first; nil after an add
	nextEventID int64
	tz          time.Duration
	fallback    bool
	shuffleTies bool
	storm       int // rows inserted before each login/filter request
	stormLeft   int // requests the storm lasts; 0: until turned off
	rng         *rand.Rand

	faults   []*faultState
	requests []*Request
}

// storedRestriction is one row of tenants_iprestrictions.
type storedRestriction struct {
	ID int32
	ipguard.Restriction
}

// New returns an empty portal: no restrictions, enable false, no login events.
func New(opts Options) *Portal {
	p := &Portal{
		users:       defaultUsers(),
		keys:        map[string]*APIKey{},
		ended:       map[int64]string{},
		nextRowID:   1,
		nextEventID: 1,
		nextAuditID: 1,
		rng:         rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		tz:          opts.TZOffset,
	}
	for _, k := range opts.UserKeys {
		if k != "" {
			p.newKeyLocked(k, RegularUserID)
		}
	}
	for _, k := range opts.AdminKeys { // an admin key listed twice stays admin
		if k != "" {
			p.newKeyLocked(k, OwnerID)
		}
	}
	return p
}

// Restrictions returns a copy of the stored allowlist in stored order and the
// enable flag, as the portal would enforce them now.
func (p *Portal) Restrictions() ([]ipguard.Restriction, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ipguard.Restriction, len(p.restrictions))
	for i, r := range p.restrictions {
		out[i] = r.Restriction
	}
	return out, p.enable
}

// SetRestrictions replaces the allowlist and the enable flag without any
// validation, the way data saved by older portal versions may look. Every row
// gets a new id, as with a PUT.
func (p *Portal) SetRestrictions(list []ipguard.Restriction, enable bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replaceRestrictions(list, enable)
}

// replaceRestrictions deletes every row and inserts list with fresh ids, like
// IPRestrictionsRepository does in one transaction. Callers hold p.mu.
func (p *Portal) replaceRestrictions(list []ipguard.Restriction, enable bool) {
	rows := make([]storedRestriction, len(list))
	for i, r := range list {
		rows[i] = storedRestriction{ID: p.nextRowID, Restriction: r}
		p.nextRowID++
	}
	p.restrictions = rows
	p.enable = enable
	p.lastModified = lastModifiedNow()
}

// SetTimeZone sets the portal time zone (a fixed UTC offset) that login
// event dates are written in from now on.
func (p *Portal) SetTimeZone(offset time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tz = offset
}

// SetPlanFallback switches the "plan without audit" behaviour: while on,
// GET security/audit/login/filter returns the 20 newest events whatever its
// paging and filter parameters say (they are still validated), with HTTP 200.
func (p *Portal) SetPlanFallback(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fallback = on
}

// Request is one API request the portal received (control requests under
// /_dev/ are not logged). Path is the full URL path as received, e.g.
// "/api/2.0/settings/iprestrictions"; Status is the HTTP status answered, 0
// while the request is still being served or when the client went away
// before an answer.
type Request struct {
	Method   string `json:"method"`
	Path     string `json:"path"`
	RawQuery string `json:"rawQuery"`
	Status   int    `json:"status"`
}

// Requests returns a copy of the request log in arrival order.
func (p *Portal) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.requests))
	for i, r := range p.requests {
		out[i] = *r
	}
	return out
}

// ResetRequests empties the request log.
func (p *Portal) ResetRequests() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = nil
}

// logRequest appends a request to the log and returns the entry to complete.
func (p *Portal) logRequest(method, path, rawQuery string) *Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &Request{Method: method, Path: path, RawQuery: rawQuery}
	p.requests = append(p.requests, e)
	return e
}

// finishRequest records the status a logged request was answered with.
func (p *Portal) finishRequest(e *Request, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.Status = status
}
