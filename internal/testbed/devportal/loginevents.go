package devportal

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"ipguard/internal/testbed/tieorder"
)

// Behaviour of api/2.0/security/audit/login/{filter,last} (docspace-api.md §3).

const (
	lastEventsCount = 20  // GET login/last and the plan fallback
	defaultCount    = 100 // ApiContext.DefaultCount
	maxCount        = 100 // ApiContext.MaxCount
	emptyGUID       = "00000000-0000-0000-0000-000000000000"
	guestUserID     = "712d9ec3-5d2b-4b13-824f-71f00191dcca" // Constants.Guest
)

// LoginEvent is one row of the portal's login_events table. IP is stored in
// full and cut at the first ':' only when written out, like the real mapper.
// Date is an instant; the portal stores it with second precision.
type LoginEvent struct {
	ID       int64     `json:"id"`
	Date     time.Time `json:"date"`
	UserID   string    `json:"userId"`
	User     string    `json:"user"`
	Login    string    `json:"login"`
	ActionID int       `json:"actionId"`
	IP       string    `json:"ip"`
	Country  string    `json:"country"`
	City     string    `json:"city"`
	Browser  string    `json:"browser"`
	Platform string    `json:"platform"`
	Page     string    `json:"page"`
}

// AddLoginEvents stores events and returns their ids in argument order. An
// event with ID 0 gets the next id (ids only ever increase); an explicit ID is
// kept and later automatic ids go above it. Dates are truncated to whole
// seconds (the MySQL datetime column). A zero Date means now.
func (p *Portal) AddLoginEvents(evs ...LoginEvent) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addLoginEventsLocked(evs...)
}

// stampLocked gives an event its id and stored date, as the portal's tables
// do: id 0 takes the next of the sequence next (ids only ever increase; an
// explicit id moves the sequence above it), a zero date means now, and dates
// are kept to the second in UTC (the MySQL datetime column). p.mu is held.
func (p *Portal) stampLocked(next, id *int64, date *time.Time) {
	if *id == 0 {
		*id = *next
	}
	if *id >= *next {
		*next = *id + 1
	}
	if date.IsZero() {
		*date = p.nowLocked()
	}
	*date = date.UTC().Truncate(time.Second)
}

// addLoginEventsLocked is AddLoginEvents for callers that hold p.mu.
func (p *Portal) addLoginEventsLocked(evs ...LoginEvent) []int64 {
	ids := make([]int64, len(evs))
	for i, ev := range evs {
		p.stampLocked(&p.nextEventID, &ev.ID, &ev.Date)
		p.events = append(p.events, ev)
		ids[i] = ev.ID
	}
	p.byDate = nil // sorted again when next needed
	return ids
}

// loginEventDto is LoginEventDto; empty optional fields are omitted.
type loginEventDto struct {
	ID       int64  `json:"id"`
	Date     string `json:"date"`
	User     string `json:"user"`
	UserID   string `json:"userId"`
	Login    string `json:"login,omitempty"`
	Action   string `json:"action"`
	ActionID int    `json:"actionId"`
	clientDto
}

// clientDto is where a row was written from, the same in LoginEventDto and
// AuditEventDto: the IP cut at the first ':' as the real mapper does, and
// every empty field omitted.
type clientDto struct {
	IP       string `json:"ip,omitempty"`
	Country  string `json:"country,omitempty"`
	City     string `json:"city,omitempty"`
	Browser  string `json:"browser,omitempty"`
	Platform string `json:"platform,omitempty"`
	Page     string `json:"page,omitempty"`
}

func clientOf(ip, country, city, browser, platform, page string) clientDto {
	ip, _, _ = strings.Cut(ip, ":") // the real mapper keeps the text before the first ':'
	return clientDto{IP: ip, Country: country, City: city, Browser: browser, Platform: platform, Page: page}
}

// userIDOrEmpty is a row's userId as written out: the empty GUID for none.
func userIDOrEmpty(id string) string {
	if id == "" {
		return emptyGUID
	}
	return id
}

func toDto(ev LoginEvent, tz time.Duration) loginEventDto {
	user := ev.User
	switch {
	case user != "":
	case ev.Login != "":
		user = ev.Login
	case strings.EqualFold(ev.UserID, guestUserID):
		user = "Guest"
	default:
		user = "Unknown"
	}
	return loginEventDto{
		ID:        ev.ID,
		Date:      formatAPIDateTime(ev.Date, tz),
		User:      user,
		UserID:    userIDOrEmpty(ev.UserID),
		Login:     ev.Login,
		Action:    actionText(ev.ActionID),
		ActionID:  ev.ActionID,
		clientDto: clientOf(ev.IP, ev.Country, ev.City, ev.Browser, ev.Platform, ev.Page),
	}
}

// sortedLocked returns the events newest first; equal dates fall back to
// the higher id first. The slice is shared and kept until the next add:
// callers hold p.mu and copy what they keep.
func (p *Portal) sortedLocked() []LoginEvent {
	if p.byDate == nil {
		p.byDate = append([]LoginEvent(nil), p.events...)
		newestFirst(p.byDate, func(ev LoginEvent) (time.Time, int64) { return ev.Date, ev.ID })
	}
	return p.byDate
}

// newestFirst sorts rows newest first; equal dates fall back to the higher
// id first. The login history and the audit trail both order so.
func newestFirst[E any](rows []E, at func(E) (time.Time, int64)) {
	sort.SliceStable(rows, func(i, j int) bool {
		di, idi := at(rows[i])
		dj, idj := at(rows[j])
		if !di.Equal(dj) {
			return di.After(dj)
		}
		return idi > idj
	})
}

// sortedEvents returns a copy of the events newest first. Callers hold p.mu.
func (p *Portal) sortedEvents() []LoginEvent {
	return append([]LoginEvent(nil), p.sortedLocked()...)
}

// windowLocked returns a copy of the rows at positions [start, start+count)
// of the date-sorted list. With the tie switch on, the rows of every second
// that touches the window are shuffled over the second's whole extent
// first, as the real query (no tie-breaker) may order them differently on
// each request: rows of a second cut by the window swap in and out of it.
func (p *Portal) windowLocked(start, count int) []LoginEvent {
	all := p.sortedLocked()
	if start >= len(all) || count <= 0 {
		return nil
	}
	end := min(start+count, len(all))
	if !p.shuffleTies {
		return append([]LoginEvent(nil), all[start:end]...)
	}
	return tieorder.Window(all, start, end, func(ev LoginEvent) time.Time { return ev.Date }, p.rng)
}

// SetTieShuffle switches the same-second order: off (the default) orders
// rows of one second by descending id, stably; on shuffles them anew on
// every login/filter request, which the real API (ordering by a date of
// whole seconds, no tie-breaker) is free to do.
func (p *Portal) SetTieShuffle(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shuffleTies = on
}

// SetStorm makes each of the next requests login/filter requests first
// insert rows new login events (dated now: a failed login from
// 198.18.0.250 by the guest account), as a busy portal writes them between
// two page requests; requests 0 means every request until turned off with
// rows 0.
func (p *Portal) SetStorm(rows, requests int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.storm, p.stormLeft = max(rows, 0), requests
}

// getLastLoginEvents serves GET login/last: the 20 newest events.
func (p *Portal) getLastLoginEvents(w http.ResponseWriter, r *http.Request, c caller) {
	if !demandEditPortalSettings(w, c.role, "ASC.Web.Api.Controllers.SecurityController.GetLastLoginEventsAsync()") {
		return
	}
	p.writeLastEvents(w, r)
}

func (p *Portal) writeLastEvents(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	evs, tz := p.sortedEvents(), p.tz
	p.mu.Unlock()
	if len(evs) > lastEventsCount {
		evs = evs[:lastEventsCount]
	}
	writeEvents(w, r, evs, tz)
}

// getAuditLifetime serves GET security/audit/settings/lifetime
// (TenantAuditSettings) with the default and largest lifetimes, 180 days:
// the dev portal never deletes its events.
func (p *Portal) getAuditLifetime(w http.ResponseWriter, r *http.Request, c caller) {
	if !demandEditPortalSettings(w, c.role, "ASC.Web.Api.Controllers.SecurityController.GetAuditSettingsAsync()") {
		return
	}
	writeSuccess(w, r, map[string]any{"loginHistoryLifeTime": 180, "auditTrailLifeTime": 180, "lastModified": "0001-01-01T00:00:00.0000000Z"}, 1)
}

func writeEvents(w http.ResponseWriter, r *http.Request, evs []LoginEvent, tz time.Duration) {
	writeRows(w, r, evs, tz, toDto)
}

// writeRows answers with rows, each written out by dto in the portal's
// time zone tz.
func writeRows[E, D any](w http.ResponseWriter, r *http.Request, rows []E, tz time.Duration, dto func(E, time.Duration) D) {
	out := make([]D, len(rows))
	for i, row := range rows {
		out[i] = dto(row, tz)
	}
	writeSuccess(w, r, out, len(out))
}

// loginFilter is LoginEventRequestDto after query binding.
type loginFilter struct {
	userID     string // canonical lower-case GUID; "" = all users
	action     int    // -1 (None) = all actions
	from, to   *time.Time
	count      int
	startIndex int
}

// getLoginEventsByFilter serves GET login/filter. Parameters are bound and
// validated first (400 validation envelope), then admin is demanded (403),
// then — unless the plan fallback is on, which answers like login/last —
// the date-sorted list is cut to the page window Skip(startIndex).Take(count)
// and only then filtered by userId, action, from and to, as the real
// repository does (inferred from code):
//
//	all events, newest first:  e9 e8 e7 e6 e5 e4 e3 e2 e1
//	startIndex=2, count=3:           [e7 e6 e5]
//	userId=U (owns e8 e6 e2):           [e6]       ← e8 and e2 are not seen
func (p *Portal) getLoginEventsByFilter(w http.ResponseWriter, r *http.Request, c caller) {
	f, ok := bindFilterAsAdmin(w, r, c, "ASC.Web.Api.Controllers.SecurityController.GetLoginEventsByFilterAsync(LoginEventRequestDto inDto)")
	if !ok {
		return
	}
	if p.fallbackOn() {
		p.writeLastEvents(w, r)
		return
	}

	p.mu.Lock()
	if rows := p.storm; rows > 0 {
		if p.stormLeft > 0 {
			if p.stormLeft--; p.stormLeft == 0 {
				p.storm = 0 // this request's rows are the last
			}
		}
		storm := make([]LoginEvent, rows)
		for i := range storm {
			storm[i] = LoginEvent{UserID: guestUserID, Login: "storm@example.com", ActionID: 1013, IP: "198.18.0.250"}
		}
		p.addLoginEventsLocked(storm...)
	}
	evs, tz := p.windowLocked(max(f.startIndex, 0), f.count), p.tz
	p.mu.Unlock()

	page := make([]LoginEvent, 0, len(evs))
	for _, ev := range evs {
		if f.keeps(ev.UserID, ev.ActionID, ev.Date) {
			page = append(page, ev)
		}
	}
	writeEvents(w, r, page, tz)
}

// fallbackOn reports whether the plan fallback is on (filter requests
// answer like last).
func (p *Portal) fallbackOn() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fallback
}

// keeps reports whether a row of userID, action and date passes the
// filter's userId, action, from and to (the page window aside): the one
// rule of login/filter and the audit trail's events/filter.
func (f loginFilter) keeps(userID string, action int, date time.Time) bool {
	switch {
	case f.userID != "" && canonicalGUID(userID) != f.userID,
		f.action != -1 && action != f.action,
		f.from != nil && date.Before(*f.from),
		f.to != nil && date.After(*f.to):
		return false
	}
	return true
}

// bindFilterAsAdmin binds and validates a filter request's query (400
// validation envelope), then demands admin (403, naming the controller
// method), in the real API's order; false means the answer is written.
func bindFilterAsAdmin(w http.ResponseWriter, r *http.Request, c caller, method string) (loginFilter, bool) {
	f, errs := bindLoginFilter(r)
	if errs != nil {
		writeValidation(w, r, errs)
		return f, false
	}
	return f, demandEditPortalSettings(w, c.role, method)
}

// bindLoginFilter binds the query like ASP.NET: parameter names match
// case-insensitively, the first of repeated values counts, an empty value is
// treated as absent, and every failure is collected into ModelState errors.
func bindLoginFilter(r *http.Request) (loginFilter, map[string][]string) {
	q := map[string]string{}
	for k, vs := range r.URL.Query() {
		lk := strings.ToLower(k)
		if _, seen := q[lk]; !seen && len(vs) > 0 && vs[0] != "" {
			q[lk] = vs[0]
		}
	}
	f := loginFilter{action: -1, count: defaultCount}
	errs := map[string][]string{}
	invalid := func(key, display, v string) {
		errs[key] = append(errs[key], "The value '"+v+"' is not valid for "+display+".")
	}

	if v, ok := q["count"]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		switch {
		case err != nil:
			invalid("count", "Count", v)
		case n < 1 || n > maxCount:
			errs["Count"] = append(errs["Count"], "The field Count must be between 1 and 100.")
		default:
			f.count = int(n)
		}
	}
	if v, ok := q["startindex"]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			invalid("startIndex", "StartIndex", v)
		} else {
			f.startIndex = int(n)
		}
	}
	if v, ok := q["userid"]; ok {
		g := canonicalGUID(v)
		switch {
		case g == "":
			invalid("userId", "UserId", v)
		case g != emptyGUID:
			f.userID = g
		}
	}
	if v, ok := q["action"]; ok {
		a, ok := parseMessageAction(v)
		if !ok {
			invalid("action", "Action", v)
		} else if a != 0 {
			f.action = a
		}
	}
	for _, d := range []struct {
		key, display string
		dst          **time.Time
	}{{"from", "From", &f.from}, {"to", "To", &f.to}} {
		if v, ok := q[d.key]; ok {
			t, err := parseAPIDateTime(v)
			if err != nil {
				invalid(d.key, d.display, v)
			} else {
				*d.dst = &t
			}
		}
	}
	if len(errs) > 0 {
		return f, errs
	}
	return f, nil
}

// canonicalGUID returns s as a lower-case hyphenated GUID, or "" when s is
// not one of the .NET Guid forms D, N, B or P.
func canonicalGUID(s string) string {
	if len(s) == 38 && (s[0] == '{' && s[37] == '}' || s[0] == '(' && s[37] == ')') {
		s = s[1:37]
	}
	var hex string
	switch len(s) {
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return ""
		}
		hex = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	case 32:
		hex = s
	default:
		return ""
	}
	hex = strings.ToLower(hex)
	for _, c := range []byte(hex) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return hex[:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:]
}

// messageActions are the MessageAction values stored in login history
// (codes < 2000), with their enum names and English texts.
var messageActions = map[int]struct{ name, text string }{
	-1:   {"None", "None"},
	1000: {"LoginSuccess", "Login Success"},
	1001: {"LoginSuccessViaSocialAccount", "Login Success via Social Account"},
	1002: {"LoginFailInvalidCombination", "Login Failed. Invalid Combination"},
	1003: {"LoginFailSocialAccountNotFound", "Login Failed. Social Account Not Found"},
	1004: {"LoginFailDisabledProfile", "Login Failed. Disabled Profile"},
	1005: {"LoginFail", "Login Failed"},
	1006: {"Logout", "Logout"},
	1007: {"LoginSuccessViaSms", "Login Success via SMS"},
	1008: {"LoginFailViaSms", "Login Failed via SMS"},
	1009: {"LoginFailIpSecurity", "Login Failed. IP Security"},
	1010: {"LoginSuccessViaApi", "Login Success via API"},
	1011: {"LoginSuccessViaSocialApp", "Login Success via Social App"},
	1012: {"LoginSuccessViaApiSms", "Login Success via API and SMS"},
	1013: {"LoginFailViaApi", "Login Failed via API"},
	1014: {"LoginFailViaApiSms", "Login Failed via API and SMS"},
	1015: {"LoginSuccessViaSSO", "Login Success via SSO"},
	1016: {"SessionStarted", "Session Started"},
	1017: {"SessionCompleted", "Session Completed"},
	1018: {"LoginFailViaSSO", "Login Failed via SSO"},
	1019: {"LoginSuccessViaApiSocialAccount", "Login Success via API and Social Account"},
	1020: {"LoginFailViaApiSocialAccount", "Login Failed via API and Social Account"},
	1021: {"LoginSuccesViaTfaApp", "Login Success via TFA App"},
	1022: {"LoginFailViaTfaApp", "Login Failed via TFA App"},
	1023: {"LoginFailBruteForce", "Login Failed. Brute Force"},
	1024: {"LoginSuccessViaApiTfa", "Login Success via API and TFA"},
	1025: {"LoginFailViaApiTfa", "Login Failed via API and TFA"},
	1026: {"LoginFailRecaptcha", "Login Failed. reCAPTCHA"},
	1027: {"AuthLinkActivated", "Auth Link Activated"},
	1028: {"LoginSuccessViaOAuth", "Login Success via OAuth"},
	1029: {"LoginSuccessViaPassword", "Login Success via Password"},
}

// actionText is the English text of a MessageAction.
func actionText(id int) string {
	if a, ok := messageActions[id]; ok {
		return a.text
	}
	return "Unknown Action"
}

// parseMessageAction binds an "action" value: any int32, or an enum name
// matched case-insensitively (as Enum.Parse with ignoreCase does).
func parseMessageAction(v string) (int, bool) {
	if n, err := strconv.ParseInt(v, 10, 32); err == nil {
		return int(n), true
	}
	for _, m := range []map[int]struct{ name, text string }{messageActions, auditActions} {
		for id, a := range m {
			if strings.EqualFold(a.name, v) {
				return id, true
			}
		}
	}
	return 0, false
}
