package docspace

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"ipguard/internal/ipguard"
)

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
// and stops at a short page.
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
	for start := 0; ; start += pageSize {
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
