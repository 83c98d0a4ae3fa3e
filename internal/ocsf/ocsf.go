// Package ocsf maps DocSpace logins and IP Guard findings to the Open
// Cybersecurity Schema Framework (OCSF), version Version: a login is an
// Authentication event (class 3002), a finding a Detection Finding (class
// 2004) whose evidence is the login as an Authentication event. The mapping
// is field by field in docs/ocsf.md; the tests hold every record it emits to
// that version's schema (testdata holds the schema facts, no network).
//
// The package is pure: no AWS, no HTTP. Every function is safe for
// concurrent use.
package ocsf

import (
	"encoding/json"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/countries"
	"ipguard/internal/ipguard"
)

// Version is the OCSF schema version every record claims (metadata.version)
// and is validated against.
const Version = "1.3.0"

// Class, category and activity numbers of OCSF 1.3.0 used here.
const (
	CategoryFindings      = 2
	CategoryIAM           = 3
	ClassDetectionFinding = 2004
	ClassAuthentication   = 3002
	activityLogon         = 1 // Authentication: Logon
	activityCreate        = 1 // Finding: Create
)

// Products named in metadata.product. A login is logged by DocSpace; a
// finding is made by IP Guard.
var (
	DocSpace = Product{Name: "DocSpace", VendorName: "ONLYOFFICE"}
	IPGuard  = Product{Name: "DocSpace IP Guard", VendorName: "DocSpace IP Guard"}
)

// Product is OCSF's product object.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

// Metadata is OCSF's metadata object.
type Metadata struct {
	Version     string  `json:"version"`
	Product     Product `json:"product"`
	UID         string  `json:"uid,omitempty"`
	TenantUID   string  `json:"tenant_uid,omitempty"`
	LogProvider string  `json:"log_provider,omitempty"`
	LogName     string  `json:"log_name,omitempty"`
}

// User is OCSF's user object.
type User struct {
	UID      string `json:"uid,omitempty"`
	Name     string `json:"name,omitempty"`
	FullName string `json:"full_name,omitempty"`
	Email    string `json:"email_addr,omitempty"`
}

// MarshalJSON writes "name": "" when the user has neither uid nor name:
// OCSF's user object needs at least one of account, name and uid, and a
// login the portal logged without any user gets an empty name rather than
// an invented one.
func (u User) MarshalJSON() ([]byte, error) {
	type plain User
	if u.UID != "" || u.Name != "" {
		return json.Marshal(plain(u))
	}
	return json.Marshal(struct {
		Name string `json:"name"`
		plain
	}{"", plain(u)})
}

// Location is OCSF's location object (the portal's GeoIP).
type Location struct {
	Country string `json:"country,omitempty"`
	City    string `json:"city,omitempty"`
}

// Endpoint is OCSF's network_endpoint object. IP is set only for a whole
// address: the portal cuts IPv6 addresses at the first colon, and such a
// fragment is never put in an address field (it goes to unmapped). An
// endpoint always has its IP: OCSF's network_endpoint needs at least one of
// ip, uid, name, hostname, ... (a location alone is not one), so the place
// of a login without a whole address goes to unmapped.location.
type Endpoint struct {
	IP       string    `json:"ip,omitempty"`
	Location *Location `json:"location,omitempty"`
}

// Service is OCSF's service object: the portal logged into.
type Service struct {
	Name string `json:"name"`
}

// Base is what every OCSF event of this package says first: its
// classification (activity, category, class and type, each with its
// name), its time, severity and status.
type Base struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name"`
	Time         int64  `json:"time"` // epoch ms
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity"`
	StatusID     int    `json:"status_id"`
	Status       string `json:"status"`
}

// classified is the Base of an event of class (in category) and activity
// at t: type_uid is class_uid*100+activity_id and type_name "<class name>:
// <activity name>", as OCSF defines them.
func classified(category int, categoryName string, class int, className string, activity int, activityName string, t time.Time) Base {
	return Base{
		ActivityID: activity, ActivityName: activityName,
		CategoryUID: category, CategoryName: categoryName,
		ClassUID: class, ClassName: className,
		TypeUID: class*100 + activity, TypeName: className + ": " + activityName,
		Time: t.UnixMilli(),
	}
}

// Authentication is an OCSF Authentication event (class 3002): one login
// or failed login on the portal.
type Authentication struct {
	Base
	StatusCode   string         `json:"status_code,omitempty"`
	StatusDetail string         `json:"status_detail,omitempty"`
	Message      string         `json:"message,omitempty"`
	Metadata     Metadata       `json:"metadata"`
	User         User           `json:"user"`
	SrcEndpoint  *Endpoint      `json:"src_endpoint,omitempty"`
	Service      *Service       `json:"service,omitempty"`
	RawData      string         `json:"raw_data,omitempty"`
	Unmapped     map[string]any `json:"unmapped,omitempty"`
}

// Login is the portal's login event as an Authentication event. portal is
// the portal's URL or host (Host of it is metadata.tenant_uid and
// service.name); metadata.uid is "<host>:<event id>", stable for the same
// event.
//
// status_id is 1 (Success) for the portal's successful-login codes, 2
// (Failure) for its failed-login codes and 99 (Other) for any other code.
func Login(portal string, e ipguard.LoginEvent) Authentication {
	portal = Host(portal)
	a := Authentication{
		Base:         classified(CategoryIAM, "Identity & Access Management", ClassAuthentication, "Authentication", activityLogon, "Logon", e.Date),
		StatusCode:   codeText(e.ActionID),
		StatusDetail: e.Action,
		Metadata: Metadata{Version: Version, Product: DocSpace, UID: eventUID(portal, e.ID), TenantUID: portal,
			LogProvider: "docspace-ip-guard", LogName: "security/audit/login"},
		User: user(e.UserID, e.Login, e.User, ""),
	}
	a.SeverityID, a.Severity = 1, "Informational"
	switch {
	case e.IsSuccessfulLogin():
		a.StatusID, a.Status = 1, "Success"
	case e.IsFailedLogin():
		a.StatusID, a.Status = 2, "Failure"
	default:
		a.StatusID, a.Status = 99, "Other"
	}
	if portal != "" {
		a.Service = &Service{Name: portal}
	}
	var cut, country string
	var place *Location
	a.SrcEndpoint, cut, country, place = endpoint(e.IP, e.Country, e.City)
	un := map[string]any{}
	if cut != "" {
		un["portal_ip"] = cut
	}
	if country != "" {
		un["country"] = country
	}
	if place != nil {
		un["location"] = place
	}
	if e.Browser != "" {
		un["browser"] = e.Browser
	}
	if e.Platform != "" {
		un["platform"] = e.Platform
	}
	if e.Page != "" {
		un["page"] = e.Page
	}
	un["event_id"] = e.ID
	a.Unmapped = un
	if len(e.Raw) > 0 {
		a.RawData = string(e.Raw)
	}
	return a
}

// Host is the portal as OCSF records name it (metadata.tenant_uid,
// service.name, the prefix of metadata.uid): the host (and port) of its URL,
// so that a login has the same uid in the archive and on the findings bus.
func Host(portal string) string {
	if u, err := url.Parse(portal); err == nil && u.Host != "" {
		return u.Host
	}
	return portal
}

// codeText is the portal's action code as text ("" for none).
func codeText(id int) string {
	if id == 0 {
		return ""
	}
	b, _ := json.Marshal(id)
	return string(b)
}

func eventUID(portal string, id int64) string {
	b, _ := json.Marshal(id)
	return portal + ":" + string(b)
}

// user is the OCSF user: uid the portal's user id, name the login name,
// full_name the display name, email_addr the login when it is an address.
func user(id, login, display, email string) User {
	u := User{UID: id, Name: login, FullName: display}
	if u.Name == "" {
		u.Name = display
	}
	for _, c := range []string{email, login} {
		if isEmail(c) {
			u.Email = c
			break
		}
	}
	return u
}

// isEmail: a bare address (no display name) that OCSF's email_t pattern
// accepts as well: a dot in the domain.
func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".") && !strings.ContainsAny(s, " \"()<>[]\\,;:")
}

// endpoint is the source endpoint of a login; cut is the portal's address
// text when it is not a whole address (a cut IPv6 address), which never
// goes into an address field.
//
// The location's country is the ISO 3166-1 alpha-2 code of the portal's
// English country name (countries.Code); a name with no known code stays out
// of location and comes back as unknownCountry (the caller puts it under
// unmapped "country").
//
// Without a whole address there is no endpoint (OCSF's network_endpoint
// needs an ip or another identifier; a location is none): the location then
// comes back as place, for the caller's unmapped "location".
func endpoint(ip, country, city string) (ep *Endpoint, cut, unknownCountry string, place *Location) {
	ep = &Endpoint{}
	if a, err := netip.ParseAddr(strings.TrimSpace(ip)); err == nil && a.Zone() == "" {
		ep.IP = a.String()
	} else if ip != "" {
		cut = ip
	}
	code, ok := countries.Code(country)
	if !ok && strings.TrimSpace(country) != "" {
		unknownCountry = country
	}
	if code != "" || city != "" {
		ep.Location = &Location{Country: code, City: city}
	}
	if ep.IP == "" {
		return nil, cut, unknownCountry, ep.Location
	}
	return ep, cut, unknownCountry, nil
}

// FindingInfo is OCSF's finding_info object.
type FindingInfo struct {
	UID           string    `json:"uid"`
	Title         string    `json:"title"`
	Desc          string    `json:"desc,omitempty"`
	Types         []string  `json:"types,omitempty"`
	Analytic      *Analytic `json:"analytic,omitempty"`
	FirstSeenTime int64     `json:"first_seen_time,omitempty"`
	LastSeenTime  int64     `json:"last_seen_time,omitempty"`
	ProductUID    string    `json:"product_uid,omitempty"`
	RelatedEvents []Related `json:"related_events,omitempty"`
	DataSources   []string  `json:"data_sources,omitempty"`
}

// Related is OCSF's related_event object.
type Related struct {
	UID string `json:"uid"`
}

// Analytic is OCSF's analytic object: the rule that made the finding.
type Analytic struct {
	Name   string `json:"name"`
	UID    string `json:"uid"`
	TypeID int    `json:"type_id"` // 1: Rule
	Type   string `json:"type"`
}

// Evidence is OCSF's evidences object. Data holds the login as an
// Authentication event.
type Evidence struct {
	User        *User     `json:"user,omitempty"`
	SrcEndpoint *Endpoint `json:"src_endpoint,omitempty"`
	Data        any       `json:"data,omitempty"`
}

// DetectionFinding is an OCSF Detection Finding (class 2004).
type DetectionFinding struct {
	Base
	Message     string         `json:"message,omitempty"`
	Metadata    Metadata       `json:"metadata"`
	FindingInfo FindingInfo    `json:"finding_info"`
	Evidences   []Evidence     `json:"evidences,omitempty"`
	Unmapped    map[string]any `json:"unmapped,omitempty"`
}

// SeverityID is OCSF's severity_id of an IP Guard severity (0 Unknown
// for anything else).
func SeverityID(sev string) (int, string) {
	switch strings.ToLower(sev) {
	case "informational", "info":
		return 1, "Informational"
	case "low":
		return 2, "Low"
	case "medium":
		return 3, "Medium"
	case "high":
		return 4, "High"
	case "critical":
		return 5, "Critical"
	}
	return 0, "Unknown"
}

// Alert is what a finding says, whatever made it: Kind and Severity always,
// Login set for a finding about one login, Finding the audit's finding when
// it is one.
type Alert struct {
	UID      string // the finding's stable id (finding_info.uid, the bus event's id)
	Portal   string
	Kind     string
	Severity string
	Title    string    // one line for a person
	Time     time.Time // when the finding's latest event happened (or the alert was made)
	Finding  *audit.Finding
	// Test marks the test alert: its record is Informational, whatever
	// Severity says, and carries unmapped.test = true, so that a consumer
	// reading only the OCSF record can tell it from a real finding.
	Test bool
}

// Finding is the Detection Finding of a. For an audit finding about one
// login the evidence is that login as an Authentication event (from the
// finding's fields and raw event); for a burst it is the source address and
// the event ids; lost coverage (unmapped cause and count) and other alerts
// (drift, key expiry) carry no evidence.
func Finding(a Alert) DetectionFinding {
	a.Portal = Host(a.Portal)
	sid, sname := SeverityID(a.Severity)
	if a.Test {
		sid, sname = SeverityID("informational")
	}
	d := DetectionFinding{
		Base:     classified(CategoryFindings, "Findings", ClassDetectionFinding, "Detection Finding", activityCreate, "Create", a.Time),
		Message:  a.Title,
		Metadata: Metadata{Version: Version, Product: IPGuard, UID: a.UID, TenantUID: a.Portal, LogProvider: "docspace-ip-guard"},
		FindingInfo: FindingInfo{UID: a.UID, Title: a.Title, Types: []string{a.Kind},
			Analytic: &Analytic{Name: a.Kind, UID: a.Kind, TypeID: 1, Type: "Rule"}},
		Unmapped: map[string]any{"kind": a.Kind},
	}
	d.SeverityID, d.Severity, d.StatusID, d.Status = sid, sname, 1, "New"
	if d.FindingInfo.Title == "" {
		d.FindingInfo.Title = a.Kind
	}
	if a.Test {
		d.Unmapped["test"] = true
	}
	f := a.Finding
	if f == nil {
		return d
	}
	d.FindingInfo.Desc = f.Reason
	d.FindingInfo.DataSources = []string{"DocSpace login history (security/audit/login)"}
	last := parseTime(f.Date)
	if !last.IsZero() {
		d.FindingInfo.LastSeenTime = last.UnixMilli()
		d.FindingInfo.FirstSeenTime = last.UnixMilli()
	}
	if first := parseTime(f.FirstAt); !first.IsZero() {
		d.FindingInfo.FirstSeenTime = first.UnixMilli()
	}
	if f.Response != nil {
		d.Unmapped["response"] = f.Response.Outcome
	}
	if f.Cause != "" {
		d.Unmapped["cause"] = f.Cause
	}
	if f.Kind == audit.KindCoverageLost || (f.EventID == 0 && len(f.EventIDs) == 0 && f.Count == 0) {
		// Not about a login (lost coverage: logins not evaluated): no
		// evidence, no related event; how many, when known.
		if f.Count > 0 {
			d.Unmapped["count"] = f.Count
		}
		return d
	}
	if len(f.EventIDs) > 0 || f.Count > 0 { // a burst: many failed logins from one address
		ep, cut, country, place := endpoint(f.IP, f.Country, f.City)
		if cut != "" {
			d.Unmapped["portal_ip"] = cut
		}
		if country != "" {
			d.Unmapped["country"] = country
		}
		if place != nil {
			d.Unmapped["location"] = place
		}
		for _, id := range f.EventIDs {
			d.FindingInfo.RelatedEvents = append(d.FindingInfo.RelatedEvents, Related{UID: eventUID(a.Portal, id)})
		}
		d.Unmapped["count"] = f.Count
		if len(f.Logins) > 0 {
			d.Unmapped["logins"] = f.Logins
		}
		if ep != nil {
			d.Evidences = []Evidence{{SrcEndpoint: ep}}
		}
		return d
	}
	login := Login(a.Portal, ipguard.LoginEvent{ID: f.EventID, Date: last, User: f.User, UserID: f.UserID, Login: f.Login,
		Action: f.Action, ActionID: f.ActionID, IP: f.IP, Country: f.Country, City: f.City, Browser: f.Browser, Platform: f.Platform, Raw: f.Raw})
	if f.Email != "" && login.User.Email == "" && isEmail(f.Email) {
		login.User.Email = f.Email
	}
	u := login.User
	d.FindingInfo.RelatedEvents = []Related{{UID: login.Metadata.UID}}
	if cut, ok := login.Unmapped["portal_ip"]; ok {
		d.Unmapped["portal_ip"] = cut
	}
	for _, k := range []string{"country", "location"} {
		if v, ok := login.Unmapped[k]; ok {
			d.Unmapped[k] = v
		}
	}
	d.Evidences = []Evidence{{User: &u, SrcEndpoint: login.SrcEndpoint, Data: login}}
	return d
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
