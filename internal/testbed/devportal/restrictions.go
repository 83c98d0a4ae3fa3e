package devportal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"ipguard/internal/ipguard"
)

// Behaviour of api/2.0/settings/iprestrictions[/settings] (docspace-api.md §2).

const (
	tenantID = 1
	// emptyETag is what GET iprestrictions always sends: the portal hashes a
	// stream it forgot to rewind, so every list has the MD5 of empty input.
	emptyETag = `W/"d41d8cd98f00b204e9800998ecf8427e"`
	// maxIPLength is the width of the tenants_iprestrictions.ip column.
	maxIPLength = 50
	// msgAddAtLeastOne is Resource.ErrorIpRestriction in English.
	msgAddAtLeastOne = "Add at least 1 allowed IP address."
)

// restrictionRow is an IPRestriction as GET returns it.
type restrictionRow struct {
	ID       int32  `json:"id"`
	TenantID int32  `json:"tenantId"`
	IP       string `json:"ip"`
	ForAdmin bool   `json:"forAdmin"`
}

// restrictionSettings is IPRestrictionsSettings.
type restrictionSettings struct {
	Enable       bool   `json:"enable"`
	LastModified string `json:"lastModified"`
}

// restrictionsDto is IpRestrictionsDto as the PUT echoes it back.
type restrictionsDto struct {
	IPRestrictions []ipguard.Restriction `json:"ipRestrictions"`
	Enable         *bool                 `json:"enable,omitempty"`
}

// getRestrictions serves GET settings/iprestrictions: the stored rows in
// stored order. A stored entry that is not a single address (only possible
// through SetRestrictions) makes it fail with 500, as IPAddress.Parse does
// on the real server while computing the ETag.
func (p *Portal) getRestrictions(w http.ResponseWriter, r *http.Request, c caller) {
	if !demandEditPortalSettings(w, c.role, "ASC.Web.Api.Controllers.Settings.IpRestrictionsController.GetIpRestrictions()") {
		return
	}
	p.mu.Lock()
	rows := make([]restrictionRow, len(p.restrictions))
	for i, s := range p.restrictions {
		rows[i] = restrictionRow{ID: s.ID, TenantID: tenantID, IP: s.IP, ForAdmin: s.ForAdmin}
	}
	p.mu.Unlock()

	for _, row := range rows {
		if !dotnetTryParseIP(row.IP) {
			writeError(w, http.StatusInternalServerError, "An invalid IP address was specified.",
				"System.FormatException",
				"   at System.Net.IPAddress.Parse(String ipString)\n   at ASC.Web.Api.Controllers.Settings.IpRestrictionsController.GetIpRestrictions()",
				hresultFormat)
			return
		}
	}
	w.Header().Set("ETag", emptyETag)
	if inm := strings.TrimSpace(r.Header.Get("If-None-Match")); inm != "" &&
		strings.Trim(strings.TrimPrefix(inm, "W/"), `"`) == strings.Trim(strings.TrimPrefix(emptyETag, "W/"), `"`) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeSuccess(w, r, rows, len(rows))
}

// getRestrictionSettings serves GET settings/iprestrictions/settings.
func (p *Portal) getRestrictionSettings(w http.ResponseWriter, r *http.Request, c caller) {
	if !demandEditPortalSettings(w, c.role, "ASC.Web.Api.Controllers.Settings.IpRestrictionsController.ReadIpRestrictionsSettings()") {
		return
	}
	p.mu.Lock()
	enable, modified := p.enable, p.lastModified
	p.mu.Unlock()

	if !modified.IsZero() {
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !modified.After(ims) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	writeSuccess(w, r, restrictionSettings{
		Enable:       enable,
		LastModified: modified.Format("2006-01-02T15:04:05"),
	}, 1)
}

// putRestrictions serves both PUT routes, which run identical code since
// v3.0 (§2.3): bind the body (400 validation envelope on failure), demand
// admin (403), coerce a null list to empty, derive enable, refuse enable
// with an empty list and any entry IPAddress.TryParse rejects (400 error
// envelope), then replace every row (new ids), save enable, and echo the
// request DTO. Each save writes audit-trail event 6094 naming the caller
// (the key's creator) and the caller's address.
func (p *Portal) putRestrictions(action string) apiHandler {
	frame := "ASC.Web.Api.Controllers.Settings.IpRestrictionsController." + action + "(IpRestrictionsDto inDto)"
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		dto, errs := decodeRestrictionsDto(r.Body)
		if errs != nil {
			writeValidation(w, r, errs)
			return
		}
		if !demandEditPortalSettings(w, c.role, frame) {
			return
		}
		enable := len(dto.list) > 0
		if dto.enable != nil {
			enable = *dto.enable
		}
		if enable && len(dto.list) == 0 {
			writeArgumentError(w, msgAddAtLeastOne, "   at "+frame)
			return
		}
		for _, e := range dto.list {
			if e == nil { // r.Ip on a null element
				writeError(w, http.StatusInternalServerError, "Object reference not set to an instance of an object.",
					"System.NullReferenceException", "   at "+frame, hresultNullReference)
				return
			}
			if e.ip == nil || !dotnetTryParseIP(*e.ip) {
				writeArgumentError(w, "IpRestrictions", "   at "+frame)
				return
			}
		}
		list := make([]ipguard.Restriction, len(dto.list))
		for i, e := range dto.list {
			if len(*e.ip) > maxIPLength {
				writeError(w, http.StatusInternalServerError,
					"An error occurred while saving the entity changes. See the inner exception for details.",
					"Microsoft.EntityFrameworkCore.DbUpdateException",
					"   at ASC.IPSecurity.IPRestrictionsRepository.SaveAsync(List`1 ips, Int32 tenant)\n   at "+frame,
					hresultException)
				return
			}
			list[i] = ipguard.Restriction{IP: *e.ip, ForAdmin: e.forAdmin}
		}

		p.mu.Lock()
		p.replaceRestrictions(list, enable)
		p.addAuditEventsLocked(AuditEvent{ActionID: 6094, UserID: c.userID, IP: c.addr, Page: r.URL.Path})
		p.mu.Unlock()

		writeSuccess(w, r, restrictionsDto{IPRestrictions: list, Enable: dto.enable}, 1)
	}
}

// boundDto is IpRestrictionsDto after System.Text.Json binding.
type boundDto struct {
	list   []*boundEntry // nil elements are JSON nulls
	enable *bool         // nil when omitted or null
}

type boundEntry struct {
	ip       *string // nil for "ip": null
	forAdmin bool
}

const dtoType = "ASC.Web.Api.ApiModels.RequestsDto.IpRestrictionsDto"

// decodeRestrictionsDto binds a PUT body like ASP.NET with the web JSON
// defaults: property names match case-insensitively, unknown properties are
// ignored, required properties ("ipRestrictions", each element's "ip") must
// be present. It returns ModelState errors when binding fails.
func decodeRestrictionsDto(body io.Reader) (*boundDto, map[string][]string) {
	raw, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return nil, map[string][]string{"": {"The request body could not be read."}}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, map[string][]string{"": {"A non-empty request body is required."}, "inDto": {"The inDto field is required."}}
	}
	bindErr := func(path, msg string) map[string][]string {
		return map[string][]string{path: {msg}, "inDto": {"The inDto field is required."}}
	}
	if !json.Valid(raw) {
		return nil, bindErr("$", "The JSON value could not be converted to "+dtoType+". Path: $ | LineNumber: 0 | BytePositionInLine: 0.")
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, map[string][]string{"inDto": {"The inDto field is required."}}
	}
	props, ok := objectProps(raw)
	if !ok {
		return nil, bindErr("$", "The JSON value could not be converted to "+dtoType+". Path: $ | LineNumber: 0 | BytePositionInLine: 1.")
	}

	dto := &boundDto{}
	var haveList bool
	for _, pr := range props {
		switch {
		case strings.EqualFold(pr.name, "ipRestrictions"):
			haveList = true
			list, errPath, msg := decodeEntries(pr.value)
			if errPath != "" {
				return nil, bindErr(errPath, msg)
			}
			dto.list = list
		case strings.EqualFold(pr.name, "enable"):
			var b *bool
			if err := json.Unmarshal(pr.value, &b); err != nil {
				return nil, bindErr("$.enable", "The JSON value could not be converted to System.Nullable`1[System.Boolean]. Path: $.enable.")
			}
			dto.enable = b
		}
	}
	if !haveList {
		return nil, bindErr("$", fmt.Sprintf("JSON deserialization for type '%s' was missing required properties including: 'ipRestrictions'.", dtoType))
	}
	return dto, nil
}

// decodeEntries binds the ipRestrictions value: null → empty list, else an
// array whose elements are null or objects with a required "ip".
// On failure it returns the JSON path at fault and the binding message.
func decodeEntries(raw json.RawMessage) ([]*boundEntry, string, string) {
	const listType = "System.Collections.Generic.List`1[ASC.IPSecurity.IpRestrictionBase]"
	const elemType = "ASC.IPSecurity.IpRestrictionBase"
	notConvertible := func(path, typ string) (string, string) {
		return path, "The JSON value could not be converted to " + typ + ". Path: " + path + "."
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, "", ""
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		p, m := notConvertible("$.ipRestrictions", listType)
		return nil, p, m
	}
	list := make([]*boundEntry, len(elems))
	for i, el := range elems {
		path := fmt.Sprintf("$.ipRestrictions[%d]", i)
		if string(bytes.TrimSpace(el)) == "null" {
			continue
		}
		props, ok := objectProps(el)
		if !ok {
			p, m := notConvertible(path, elemType)
			return nil, p, m
		}
		e := &boundEntry{}
		var haveIP bool
		for _, pr := range props {
			switch {
			case strings.EqualFold(pr.name, "ip"):
				haveIP = true
				e.ip = nil
				if err := json.Unmarshal(pr.value, &e.ip); err != nil {
					p, m := notConvertible(path+".ip", "System.String")
					return nil, p, m
				}
			case strings.EqualFold(pr.name, "forAdmin"):
				if err := json.Unmarshal(pr.value, &e.forAdmin); err != nil || string(bytes.TrimSpace(pr.value)) == "null" {
					p, m := notConvertible(path+".forAdmin", "System.Boolean")
					return nil, p, m
				}
			}
		}
		if !haveIP {
			return nil, path, "JSON deserialization for type '" + elemType + "' was missing required properties including: 'ip'."
		}
		list[i] = e
	}
	return list, "", ""
}

type jsonProp struct {
	name  string
	value json.RawMessage
}

// objectProps returns the properties of a JSON object in document order, so
// that a later duplicate wins as in System.Text.Json; ok is false when raw
// is not an object.
func objectProps(raw []byte) ([]jsonProp, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var props []jsonProp
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		props = append(props, jsonProp{name: name, value: v})
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		return nil, false
	}
	return props, true
}

// lastModifiedNow is the timestamp a save stamps on the settings.
func lastModifiedNow() time.Time { return time.Now().UTC().Truncate(time.Second) }
