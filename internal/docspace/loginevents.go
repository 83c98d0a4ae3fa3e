package docspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"ipguard/internal/ipguard"
)

// The portal's two security audit lists, which send their rows alike
// (wireRow): the login history (security/audit/login) and the audit trail
// of configuration changes (security/audit/events).

const pathLoginEvents = "/api/2.0/security/audit/login/filter"

// fromLayout is how the portal wants a UTC instant in a query: "Z", no fraction.
const fromLayout = "2006-01-02T15:04:05Z"

// LoginEvents returns one page of the portal's login history, newest first:
// at most count (1..100) events, skipping startIndex (≥ 0) newer ones, and
// only events at or after from (truncated down to the second) unless from is
// zero. It sends no other filter (user, action, to), because the portal
// applies those inside the page window. Callers page with startIndex += count
// and stop at a short page.
//
// Each event keeps the JSON it came as in Raw; Date is the instant in UTC; IP
// is kept as text (IPv6 addresses arrive cut at the first colon). An event
// whose id or date cannot be read does not fail the call: it comes back in
// its place with Unreadable saying why and Raw holding its JSON, so that one
// bad row cannot stop every audit. A response that is not a list fails, and
// so does an answer without one (missing or null "response"): it is never
// taken for an empty page.
//
// Caution: on a plan without the audit feature the portal ignores paging and
// returns its 20 newest events.
func (c *Client) LoginEvents(ctx context.Context, from time.Time, startIndex, count int) ([]ipguard.LoginEvent, error) {
	if count < 1 || count > 100 {
		return nil, ipguard.Invalid("count", strconv.Itoa(count), "must be between 1 and 100")
	}
	if startIndex < 0 {
		return nil, ipguard.Invalid("startIndex", strconv.Itoa(startIndex), "must not be negative")
	}
	q := url.Values{}
	q.Set("count", strconv.Itoa(count))
	q.Set("startIndex", strconv.Itoa(startIndex))
	if !from.IsZero() {
		q.Set("from", from.UTC().Truncate(time.Second).Format(fromLayout))
	}
	var events []ipguard.LoginEvent
	err := c.do(ctx, call{
		op: "get login events", method: http.MethodGet, path: pathLoginEvents, query: q,
		decode: func(raw json.RawMessage) error {
			if raw == nil {
				// An empty page is "response": []; no list at all is
				// never taken for one (the walk would end there).
				return errors.New(`the answer has no "response" list`)
			}
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				return err
			}
			events = make([]ipguard.LoginEvent, 0, len(items))
			for i, item := range items {
				ev, err := decodeLoginEvent(item)
				if err != nil {
					ev.Raw = item
					ev.Unreadable = fmt.Sprintf("login event [%d] of the page at startIndex %d: %v", i, startIndex, err)
				}
				events = append(events, ev)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if events == nil {
		events = []ipguard.LoginEvent{}
	}
	return events, nil
}

// wireLoginEvent is LoginEventDto as sent. Numbers may come as strings (the
// portal reads and may write them leniently).
type wireLoginEvent struct {
	wireRow
	Login string `json:"login"`
}

// wireRow is what a LoginEventDto and an AuditEventDto send alike.
type wireRow struct {
	ID       flexInt `json:"id"`
	Date     string  `json:"date"`
	User     string  `json:"user"`
	UserID   string  `json:"userId"`
	Action   string  `json:"action"`
	ActionID flexInt `json:"actionId"`
	IP       string  `json:"ip"`
	Country  string  `json:"country"`
	City     string  `json:"city"`
	Browser  string  `json:"browser"`
	Platform string  `json:"platform"`
	Page     string  `json:"page"`
}

// decodeRow reads raw into w (a wire event embedding row) and returns the
// row's date. A row without an id, or whose date cannot be read, is an
// error; dateOnly says the id was read and only the date failed.
func decodeRow(raw json.RawMessage, w any, row *wireRow) (date time.Time, dateOnly bool, err error) {
	if err := json.Unmarshal(raw, w); err != nil {
		return time.Time{}, false, err
	}
	if !row.ID.set {
		return time.Time{}, false, fmt.Errorf("event has no id")
	}
	date, err = parseDate(row.Date)
	if err != nil {
		return time.Time{}, true, fmt.Errorf("event %d: %w", row.ID.n, err)
	}
	return date, false, nil
}

// decodeLoginEvent reads one event; raw becomes its Raw. On error the
// returned event still holds the id and date when they could be read.
func decodeLoginEvent(raw json.RawMessage) (ipguard.LoginEvent, error) {
	var w wireLoginEvent
	date, dateOnly, err := decodeRow(raw, &w, &w.wireRow)
	if err != nil {
		if dateOnly {
			return ipguard.LoginEvent{ID: w.ID.n}, err
		}
		return ipguard.LoginEvent{}, err
	}
	return ipguard.LoginEvent{
		ID:       w.ID.n,
		Date:     date,
		User:     w.User,
		UserID:   w.UserID,
		Login:    w.Login,
		Action:   w.Action,
		ActionID: int(w.ActionID.n),
		IP:       w.IP,
		Country:  w.Country,
		City:     w.City,
		Browser:  w.Browser,
		Platform: w.Platform,
		Page:     w.Page,
		Raw:      raw,
	}, nil
}

// flexInt reads an integer sent as a JSON number or a numeric string.
type flexInt struct {
	n   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an integer", b)
	}
	f.n, f.set = n, true
	return nil
}

const pathAuditEvents = "/api/2.0/security/audit/events/filter"

// ActionIPRestrictionsUpdated is the audit-trail code of every save of the
// IP allowlist or its settings (IPRestrictionsSettingsUpdated, v3.7.1+).
const ActionIPRestrictionsUpdated = 6094

// AuditEvent is one audit-trail event (a configuration change). Date is in
// UTC; IP is text as the portal sends it (IPv6 cut at the first colon);
// Action is the portal's localized text, ActionID the code to decide on.
// Raw keeps the JSON the event came as.
type AuditEvent struct {
	ID       int64
	Date     time.Time
	User     string
	UserID   string
	Action   string
	ActionID int
	IP       string
	Country  string
	City     string
	Browser  string
	Platform string
	Page     string
	Target   []string
	Raw      json.RawMessage
}

// AuditEvents returns one page of the audit trail, newest first: events with
// actionID (all when 0) at or after from (truncated to the second; no bound
// when zero), skipping startIndex (≥ 0) matching ones, at most count
// (1..100). The portal filters before paging here, unlike the login
// history. A portal without the audit trail answers 404: errors.Is(err,
// ErrNotSupported). Retried like every GET.
//
// Caution: on a plan without the audit feature the portal ignores every
// parameter and returns its 20 newest events of any kind; AllowlistChanges
// detects that.
func (c *Client) AuditEvents(ctx context.Context, actionID int, from time.Time, startIndex, count int) ([]AuditEvent, error) {
	if count < 1 || count > 100 {
		return nil, ipguard.Invalid("count", strconv.Itoa(count), "must be between 1 and 100")
	}
	if startIndex < 0 {
		return nil, ipguard.Invalid("startIndex", strconv.Itoa(startIndex), "must not be negative")
	}
	q := url.Values{}
	if actionID != 0 {
		q.Set("action", strconv.Itoa(actionID))
	}
	if !from.IsZero() {
		q.Set("from", from.UTC().Truncate(time.Second).Format(fromLayout))
	}
	q.Set("count", strconv.Itoa(count))
	q.Set("startIndex", strconv.Itoa(startIndex))
	events := []AuditEvent{}
	err := c.do(ctx, call{
		op: "get audit events", method: http.MethodGet, path: pathAuditEvents, query: q, notFound: ErrNotSupported,
		decode: func(raw json.RawMessage) error {
			if raw == nil {
				return nil
			}
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				return err
			}
			for i, item := range items {
				ev, err := decodeAuditEvent(item)
				if err != nil {
					return fmt.Errorf("audit event [%d]: %w", i, err)
				}
				events = append(events, ev)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// AllowlistChanges returns every IP-allowlist save (action 6094) at or
// after since, newest first, without duplicates. It pages with count=100
// and stops at a short page. The trail orders by date alone (whole seconds,
// no tie-breaker), so two requests may order the saves of one second
// differently: each next page starts at the first save of the previous
// page's oldest second (overlapping it; duplicates are dropped by id), so
// a save of a second a page boundary cuts is never missed. Saves that
// arrive while it pages shift the list down: they are read again, never
// skipped.
//
// complete is false when the portal answered with its plan fallback (20
// newest events of any kind, whatever was asked): events then holds only the
// 6094 events after since among those 20, and older changes may be missing.
// The fallback shows as events of another action or from before since in a
// page, or — when the first page holds exactly 20 matching events — as a
// second request at startIndex=20 that repeats the newest one.
//
// A portal without the audit trail (before v3.7.1) answers 404:
// errors.Is(err, ErrNotSupported).
func (c *Client) AllowlistChanges(ctx context.Context, since time.Time) (events []AuditEvent, complete bool, err error) {
	const pageSize, fallbackSize = 100, 20
	since = since.UTC().Truncate(time.Second)
	seen := map[int64]bool{}
	complete = true
	events = []AuditEvent{}
	for start := 0; ; {
		page, err := c.AuditEvents(ctx, ActionIPRestrictionsUpdated, since, start, pageSize)
		if err != nil {
			return nil, false, err
		}
		for _, ev := range page {
			if ev.ActionID != ActionIPRestrictionsUpdated || (!since.IsZero() && ev.Date.Before(since)) {
				complete = false // the portal did not filter: plan fallback
				continue
			}
			if !seen[ev.ID] {
				seen[ev.ID] = true
				events = append(events, ev)
			}
		}
		if !complete {
			return events, false, nil
		}
		if start == 0 && len(page) == fallbackSize {
			probe, err := c.AuditEvents(ctx, ActionIPRestrictionsUpdated, since, fallbackSize, pageSize)
			if err != nil {
				return nil, false, err
			}
			for _, ev := range probe {
				if ev.ID == page[0].ID {
					return events, false, nil
				}
			}
		}
		if len(page) < pageSize {
			return events, true, nil
		}
		// Overlap the page's oldest second (unless it fills the page: then
		// no overlap can order it, and the page is passed whole).
		oldest, tied := page[len(page)-1].Date.Truncate(time.Second), 0
		for i := len(page) - 1; i >= 0 && page[i].Date.Truncate(time.Second).Equal(oldest); i-- {
			tied++
		}
		if tied == len(page) {
			tied = 0
		}
		start += len(page) - tied
	}
}

// wireAuditEvent is AuditEventDto as sent, the fields read.
type wireAuditEvent struct {
	wireRow
	Target json.RawMessage `json:"target"`
}

func decodeAuditEvent(raw json.RawMessage) (AuditEvent, error) {
	var w wireAuditEvent
	date, _, err := decodeRow(raw, &w, &w.wireRow)
	if err != nil {
		return AuditEvent{}, err
	}
	return AuditEvent{ID: w.ID.n, Date: date, User: w.User, UserID: w.UserID, Action: w.Action,
		ActionID: int(w.ActionID.n), IP: w.IP, Country: w.Country, City: w.City, Browser: w.Browser,
		Platform: w.Platform, Page: w.Page, Target: targets(w.Target), Raw: raw}, nil
}

// targets reads "target" leniently: an array of strings or numbers, a single
// string, or nothing.
func targets(raw json.RawMessage) []string {
	var list []any
	if json.Unmarshal(raw, &list) != nil {
		var one string
		if json.Unmarshal(raw, &one) == nil && one != "" {
			return []string{one}
		}
		return nil
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		switch t := v.(type) {
		case string:
			out = append(out, t)
		case float64:
			out = append(out, strconv.FormatFloat(t, 'f', -1, 64))
		}
	}
	return out
}

const pathAuditLifetime = "/api/2.0/security/audit/settings/lifetime"

// MaxLoginHistoryDays is the longest login history a portal keeps (its
// default too: TenantAuditSettings.MaxLifeTime).
const MaxLoginHistoryDays = 180

// LoginHistoryLifetime returns how long the portal keeps login events
// (loginHistoryLifeTime, days): a daily job deletes older ones, so a login
// older than that may be gone before anyone read it. A value absent, 0 or
// out of 1..180 reads as 180, as the portal treats an unset one. On SaaS a
// plan without the login history answers 402 (an error like any other).
func (c *Client) LoginHistoryLifetime(ctx context.Context) (time.Duration, error) {
	days := 0
	err := c.do(ctx, call{
		op: "get audit settings", method: http.MethodGet, path: pathAuditLifetime,
		decode: func(raw json.RawMessage) error {
			var s struct {
				Days flexInt `json:"loginHistoryLifeTime"`
			}
			if raw == nil {
				return errors.New(`the answer has no "response" object`)
			}
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			days = int(s.Days.n)
			return nil
		},
	})
	if err != nil {
		return 0, err
	}
	if days < 1 || days > MaxLoginHistoryDays {
		days = MaxLoginHistoryDays
	}
	return time.Duration(days) * 24 * time.Hour, nil
}
