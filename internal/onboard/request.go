// Package onboard validates a new user's allowed addresses, stores them in the
// source of truth and makes sure the portal's allowlist lets the user in,
// without removing anything already there and without racing another
// onboarding.
package onboard

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"ipguard/internal/ipguard"
)

// Request is one onboarding as the pipeline sends it, before validation.
type Request struct {
	ID         string
	Email      string
	AllowedIPs []string
}

// DecodeRequest reads an onboarding payload (invoked directly, or the detail
// of an EventBridge event)
//
//	{"id": "...", "email": "...", "allowedIps": ["..."]}   ("userId" is an alias of "id")
//
// Keys match case-insensitively. Wrong types are EInvalid errors naming the field.
func DecodeRequest(payload []byte) (Request, error) {
	obj, err := object(payload, "event")
	if err != nil {
		return Request{}, err
	}
	var r Request
	id, err := optionalString(obj, "id")
	if err != nil {
		return Request{}, err
	}
	alias, err := optionalString(obj, "userId")
	if err != nil {
		return Request{}, err
	}
	switch {
	case strings.TrimSpace(id) == "":
		r.ID = alias
	case strings.TrimSpace(alias) != "" && strings.TrimSpace(alias) != strings.TrimSpace(id):
		return Request{}, ipguard.Invalid("userId", alias, "differs from id %q; send one of them", id)
	default:
		r.ID = id
	}
	if r.Email, err = optionalString(obj, "email"); err != nil {
		return Request{}, err
	}
	raw, ok := lookup(obj, "allowedIps")
	if !ok || string(raw) == "null" {
		return Request{}, ipguard.Invalid("allowedIps", "", "is required: a list of addresses, CIDR blocks or a-b ranges")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return Request{}, ipguard.Invalid("allowedIps", string(raw), "must be a list of strings")
	}
	for i, item := range items {
		var s string
		if err := json.Unmarshal(item, &s); err != nil {
			return Request{}, ipguard.Invalid(fmt.Sprintf("allowedIps[%d]", i), string(item), "must be a string")
		}
		r.AllowedIPs = append(r.AllowedIPs, s)
	}
	return r, nil
}

// canonicalID trims the id and lower-cases a GUID (the form the portal's
// login events carry), so that the audit finds the user.
func canonicalID(id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return "", ipguard.Invalid("id", "", "is required: the DocSpace user id")
	}
	if len(id) > 128 {
		return "", ipguard.Invalid("id", id, "is longer than 128 characters")
	}
	for _, r := range id {
		if unicode.IsSpace(r) || unicode.IsControl(r) || invisible(r) {
			return "", ipguard.Invalid("id", id, "must not contain white space, control or invisible characters (%U)", r)
		}
	}
	return ipguard.CanonicalUserID(id), nil
}

func canonicalEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", ipguard.Invalid("email", "", "is required")
	}
	for _, r := range email {
		if unicode.IsControl(r) || invisible(r) {
			return "", ipguard.Invalid("email", email, "must not contain control or invisible characters (%U)", r)
		}
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", ipguard.Invalid("email", email, "is not a valid e-mail address (expected user@example.com)")
	}
	local, domain, _ := strings.Cut(email, "@")
	if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") || strings.HasPrefix(domain, "[") {
		return "", ipguard.Invalid("email", email, "is not a valid e-mail address (expected user@example.com)")
	}
	return email, nil
}

// invisible reports format characters (bidi controls, zero-width
// characters, soft hyphen, BOM), line/paragraph separators and private-use
// characters: text that shows differently from what it is.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co) || unicode.Is(unicode.Variation_Selector, r)
}

func object(b []byte, what string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, ipguard.Invalid(what, string(b), "must be a JSON object")
	}
	return obj, nil
}

func lookup(obj map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := obj[key]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func optionalString(obj map[string]json.RawMessage, key string) (string, error) {
	raw, ok := lookup(obj, key)
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", ipguard.Invalid(key, string(raw), "must be a string")
	}
	return s, nil
}
