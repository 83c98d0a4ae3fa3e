package docspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"ipguard/internal/ipguard"
)

const (
	pathIPRestrictions         = "/api/2.0/settings/iprestrictions"
	pathIPRestrictionsSettings = "/api/2.0/settings/iprestrictions/settings"
)

// IPRestrictions returns the portal's IP allowlist as stored, in the
// portal's order (which is not stable). Needs an owner or DocSpace-admin key
// with *:read or *:write scope. A 2xx answer without "response", with a null
// one, or with one that is not a list of {"ip": string, "forAdmin": bool}
// is an error (EUnavailable): it is never taken for an empty list, which
// the next PUT would make real.
func (c *Client) IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error) {
	list := []ipguard.Restriction{}
	err := c.do(ctx, call{
		op: "get ip restrictions", method: http.MethodGet, path: pathIPRestrictions,
		decode: func(raw json.RawMessage) error {
			if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
				return errors.New(`the answer has no "response" list`)
			}
			var rows []struct {
				IP       *string `json:"ip"`
				ForAdmin *bool   `json:"forAdmin"`
			}
			if err := json.Unmarshal(raw, &rows); err != nil {
				return errors.New(`the answer's "response" is not a list of restrictions`)
			}
			for i, r := range rows {
				if r.IP == nil {
					return fmt.Errorf(`restriction %d of the answer has no "ip"`, i)
				}
				list = append(list, ipguard.Restriction{IP: *r.IP, ForAdmin: r.ForAdmin != nil && *r.ForAdmin})
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// IPRestrictionsEnabled reports whether the portal enforces its allowlist.
func (c *Client) IPRestrictionsEnabled(ctx context.Context) (bool, error) {
	var settings struct {
		Enable *bool `json:"enable"`
	}
	err := c.do(ctx, call{
		op: "get ip restrictions settings", method: http.MethodGet, path: pathIPRestrictionsSettings,
		decode: func(raw json.RawMessage) error {
			if raw == nil {
				return errors.New("no settings in the response")
			}
			if err := json.Unmarshal(raw, &settings); err != nil {
				return err
			}
			if settings.Enable == nil {
				return errors.New(`settings have no "enable"`)
			}
			return nil
		},
	})
	if err != nil {
		return false, err
	}
	return *settings.Enable, nil
}

// PutIPRestrictions replaces the portal's whole allowlist with list and sets
// enforcement to enable, in one request. enable is always sent; an empty list
// is sent as []. The portal refuses (400, EInvalid) enable with an empty list
// and any entry that is not a single IP address. Because the request replaces
// everything, it is safe to retry. Needs an owner or DocSpace-admin key with
// *:write (full access) scope.
func (c *Client) PutIPRestrictions(ctx context.Context, list []ipguard.Restriction, enable bool) error {
	_, err := c.SaveIPRestrictions(ctx, list, enable)
	return err
}

// SaveIPRestrictions is PutIPRestrictions for a writer that fences itself
// and attributes its own saves: it returns the portal's Date of the
// successful answer (zero when the portal sent none), and it starts an
// attempt (the first or a retry) only while at least one attempt's timeout
// is left before ctx's deadline, so no attempt of it runs past that
// deadline. An error in whose chain is ipguard.ErrNotApplied was not
// applied (refused with a 4xx answer every time, or never sent); any other
// error leaves the outcome unknown: the PUT may have landed, or land later.
// Every attempt that went without a definite answer (no answer, 5xx) is
// noted in ctx's ipguard.UnansweredWrites, also when a retry succeeds: that
// attempt may still land after the answered one.
func (c *Client) SaveIPRestrictions(ctx context.Context, list []ipguard.Restriction, enable bool) (time.Time, error) {
	if list == nil {
		list = []ipguard.Restriction{}
	}
	var date time.Time
	err := c.do(ctx, call{
		op: "put ip restrictions", method: http.MethodPut, path: pathIPRestrictions, fenced: true, date: &date,
		body: struct {
			IPRestrictions []ipguard.Restriction `json:"ipRestrictions"`
			Enable         bool                  `json:"enable"`
		}{list, enable},
	})
	return date, err
}

// AttemptTimeout is how long one attempt of a call may take.
func (c *Client) AttemptTimeout() time.Duration { return c.timeout }
