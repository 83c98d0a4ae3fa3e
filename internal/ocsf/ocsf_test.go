package ocsf_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/ipguard"
	"ipguard/internal/ocsf"
)

var when = time.Date(2026, 12, 4, 9, 30, 15, 0, time.UTC)

func TestLoginRecordsAreValidOCSFAuthentication(t *testing.T) {
	f := loadFacts(t, ocsf.Version)
	tests := []struct {
		name       string
		event      ipguard.LoginEvent
		wantStatus int
		wantIP     string // "" = no src_endpoint.ip
		wantEmail  string
	}{
		{"successful login, every field", ipguard.LoginEvent{ID: 41, Date: when, User: "Ann Lee", UserID: "6f1c0b5e-1111-4c3b-9a1e-2b0c4d5e6f70", Login: "ann@example.com",
			Action: "Login success", ActionID: 1000, IP: "203.0.113.7", Country: "Germany", City: "Berlin", Browser: "Chrome 120", Platform: "Windows 10",
			Raw: json.RawMessage(`{"id":41}`)}, 1, "203.0.113.7", "ann@example.com"},
		{"failed login", ipguard.LoginEvent{ID: 42, Date: when, Login: "guess@example.com", Action: "Login failed", ActionID: 1005, IP: "198.51.100.9"}, 2, "198.51.100.9", "guess@example.com"},
		{"a code that is not a login", ipguard.LoginEvent{ID: 43, Date: when, Login: "a", ActionID: 1006, IP: "198.51.100.9"}, 99, "198.51.100.9", ""},
		{"a cut IPv6 address is not an address", ipguard.LoginEvent{ID: 44, Date: when, Login: "bob", ActionID: 1000, IP: "2001"}, 1, "", ""},
		{"a whole IPv6 address is one", ipguard.LoginEvent{ID: 45, Date: when, Login: "bob", ActionID: 1000, IP: "2001:db8::1"}, 1, "2001:db8::1", ""},
		{"a login that is not an address is no email", ipguard.LoginEvent{ID: 46, Date: when, Login: "Ann <ann@example.com>", ActionID: 1000}, 1, "", ""},
		{"nothing but an id", ipguard.LoginEvent{ID: 47, Date: when}, 99, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := ocsf.Login("portal.example.com", tt.event)
			for _, p := range validate(f, "authentication", rec) {
				t.Error(p)
			}
			if rec.StatusID != tt.wantStatus {
				t.Errorf("status_id = %d, want %d", rec.StatusID, tt.wantStatus)
			}
			gotIP := ""
			if rec.SrcEndpoint != nil {
				gotIP = rec.SrcEndpoint.IP
			}
			if gotIP != tt.wantIP {
				t.Errorf("src_endpoint.ip = %q, want %q", gotIP, tt.wantIP)
			}
			if rec.User.Email != tt.wantEmail {
				t.Errorf("user.email_addr = %q, want %q", rec.User.Email, tt.wantEmail)
			}
			if tt.wantIP == "" && tt.event.IP != "" && rec.Unmapped["portal_ip"] != tt.event.IP {
				t.Errorf("unmapped.portal_ip = %v, want the portal's text %q", rec.Unmapped["portal_ip"], tt.event.IP)
			}
			if rec.Time != when.UnixMilli() || rec.Metadata.UID == "" {
				t.Errorf("time = %d, metadata.uid = %q", rec.Time, rec.Metadata.UID)
			}
		})
	}
}

func TestFindingRecordsAreValidOCSFDetectionFindings(t *testing.T) {
	f := loadFacts(t, ocsf.Version)
	single := audit.Finding{EventID: 41, Kind: audit.KindIPNotAllowed, Severity: audit.SeverityHigh, Reason: "login from an address not on the user's allowlist",
		UserID: "u-1", Email: "ann@example.com", User: "Ann Lee", Login: "ann@example.com", IP: "203.0.113.7", Country: "Germany", City: "Berlin",
		Date: when.Format(time.RFC3339), Action: "Login success", ActionID: 1000, Raw: json.RawMessage(`{"id":41}`),
		Response: &audit.Response{Outcome: audit.OutcomeEnded}}
	burst := audit.Finding{EventIDs: []int64{1, 2, 3}, Count: 3, Kind: audit.KindFailedLoginBurst, Severity: audit.SeverityMedium, Reason: "3 failed logins",
		Logins: []string{"a", "b"}, IP: "198.51.100.9", Date: when.Format(time.RFC3339), FirstAt: when.Add(-time.Minute).Format(time.RFC3339)}
	cut := single
	cut.IP = "2001"
	tests := []struct {
		name          string
		alert         ocsf.Alert
		wantEvidence  bool
		wantSeverity  int
		wantNoAddress bool
	}{
		{"one login, with its evidence", ocsf.Alert{UID: "x1", Portal: "p", Kind: single.Kind, Severity: "high", Title: single.Reason, Time: when, Finding: &single}, true, 4, false},
		{"a burst", ocsf.Alert{UID: "x2", Portal: "p", Kind: burst.Kind, Severity: "medium", Title: "burst", Time: when, Finding: &burst}, true, 3, false},
		{"a cut IPv6 address", ocsf.Alert{UID: "x3", Portal: "p", Kind: cut.Kind, Severity: "critical", Title: "t", Time: when, Finding: &cut}, true, 5, true},
		{"not about a login (key expiry)", ocsf.Alert{UID: "x4", Portal: "p", Kind: "api_key_expiring", Severity: "low", Title: "key expires", Time: when}, false, 2, true},
		{"an unknown severity", ocsf.Alert{UID: "x5", Portal: "p", Kind: "allowlist_drift", Severity: "weird", Time: when}, false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := ocsf.Finding(tt.alert)
			for _, p := range validate(f, "detection_finding", rec) {
				t.Error(p)
			}
			if rec.SeverityID != tt.wantSeverity {
				t.Errorf("severity_id = %d, want %d", rec.SeverityID, tt.wantSeverity)
			}
			if (len(rec.Evidences) > 0) != tt.wantEvidence {
				t.Fatalf("evidences = %+v", rec.Evidences)
			}
			if tt.wantEvidence && rec.Evidences[0].Data != nil {
				// The evidence is an Authentication event, valid on its own.
				for _, p := range validate(f, "authentication", rec.Evidences[0].Data) {
					t.Error("evidence: " + p)
				}
			}
			b, _ := json.Marshal(rec)
			if tt.wantNoAddress && strings.Contains(string(b), `"ip":`) {
				t.Errorf("an address field was set: %s", b)
			}
		})
	}
}

// The validator is not vacuous: records that break the schema are caught.
func TestValidatorCatchesWhatTheSchemaForbids(t *testing.T) {
	f := loadFacts(t, ocsf.Version)
	good := func() map[string]any {
		var m map[string]any
		b, _ := json.Marshal(ocsf.Login("p", ipguard.LoginEvent{ID: 1, Date: when, Login: "a", ActionID: 1000, IP: "203.0.113.7"}))
		_ = json.Unmarshal(b, &m)
		return m
	}
	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   string
	}{
		{"a cut address in an address field", func(m map[string]any) { m["src_endpoint"].(map[string]any)["ip"] = "2001" }, "does not match ip_t"},
		{"a required attribute missing", func(m map[string]any) { delete(m, "time") }, "time: required"},
		{"an attribute the class lacks", func(m map[string]any) { m["browser"] = "x" }, "not an attribute"},
		{"a value outside the enum", func(m map[string]any) { m["status_id"] = 7 }, "not in the enum"},
		{"a wrong type", func(m map[string]any) { m["time"] = "yesterday" }, "not an integer"},
		{"a wrong schema version", func(m map[string]any) { m["metadata"].(map[string]any)["version"] = "1.0.0" }, "metadata.version"},
		{"a type_uid that does not follow", func(m map[string]any) { m["type_uid"] = 300299 }, "type_uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			if p := validate(f, "authentication", m); len(p) > 0 {
				t.Fatalf("the good record is not valid: %v", p)
			}
			tt.mutate(m)
			probs := validate(f, "authentication", m)
			if !strings.Contains(strings.Join(probs, "\n"), tt.want) {
				t.Errorf("problems = %v, want one containing %q", probs, tt.want)
			}
		})
	}
}

// A login has one uid wherever it appears: the archive names the portal by
// host, the bus by URL.
func TestALoginHasTheSameUIDInTheArchiveAndOnTheBus(t *testing.T) {
	e := ipguard.LoginEvent{ID: 41, Date: when, ActionID: 1000, IP: "203.0.113.7"}
	archived := ocsf.Login("portal.example.com", e)
	f := audit.Finding{EventID: 41, Kind: audit.KindIPNotAllowed, Severity: "high", IP: "203.0.113.7", Date: when.Format(time.RFC3339), ActionID: 1000}
	onBus := ocsf.Finding(ocsf.Alert{UID: "x", Portal: "https://portal.example.com/", Kind: f.Kind, Severity: "high", Time: when, Finding: &f})
	evidence := onBus.Evidences[0].Data.(ocsf.Authentication)
	if evidence.Metadata.UID != archived.Metadata.UID || archived.Metadata.UID != "portal.example.com:41" || onBus.Metadata.TenantUID != "portal.example.com" {
		t.Errorf("archive uid %q, bus evidence uid %q, bus tenant %q", archived.Metadata.UID, evidence.Metadata.UID, onBus.Metadata.TenantUID)
	}
}

// OCSF 1.3.0's location.country is an ISO 3166-1 alpha-2 code: the
// portal's English name is mapped; a name with no known code stays out of
// location and goes to unmapped.country, in the login record and in the
// finding.
func TestLocationCountryIsTheISOCode(t *testing.T) {
	tests := []struct {
		country      string
		wantCode     string
		wantUnmapped string
	}{
		{"Germany", "DE", ""},
		{"united states", "US", ""},
		{"Russia", "RU", ""},
		{"South Korea", "KR", ""},
		{"Czechia", "CZ", ""},
		{"UK", "GB", ""},
		{"Britain", "GB", ""},
		{"US", "US", ""},
		{"Atlantis", "", "Atlantis"},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.country, func(t *testing.T) {
			rec := ocsf.Login("p", ipguard.LoginEvent{ID: 1, Date: when, Login: "a", ActionID: 1000, IP: "203.0.113.7", Country: tt.country, City: "X"})
			got := ""
			if rec.SrcEndpoint != nil && rec.SrcEndpoint.Location != nil {
				got = rec.SrcEndpoint.Location.Country
			}
			un, _ := rec.Unmapped["country"].(string)
			if got != tt.wantCode || un != tt.wantUnmapped {
				t.Errorf("login: location.country = %q, unmapped.country = %q; want %q, %q", got, un, tt.wantCode, tt.wantUnmapped)
			}
			fin := ocsf.Finding(ocsf.Alert{UID: "u", Portal: "p", Kind: audit.KindIPNotAllowed, Severity: "high", Time: when,
				Finding: &audit.Finding{EventID: 1, Kind: audit.KindIPNotAllowed, Severity: "high", IP: "203.0.113.7", Country: tt.country, Date: when.Format(time.RFC3339)}})
			fun, _ := fin.Unmapped["country"].(string)
			if fun != tt.wantUnmapped {
				t.Errorf("finding: unmapped.country = %q, want %q", fun, tt.wantUnmapped)
			}
		})
	}
}

// The schema's constraints hold too, not only its attributes: a
// network_endpoint needs an ip (or another identifier; a location is
// none), a user needs a name or uid. A login whose address the portal cut
// (every IPv6 login) still has its GeoIP place: it was a src_endpoint with
// only a location, which OCSF 1.3.0 rejects. Now the place is kept as
// unmapped.location and the record is valid.
func TestRecordsKeepTheSchemasAtLeastOneRules(t *testing.T) {
	f := loadFacts(t, ocsf.Version)
	cutLogin := ipguard.LoginEvent{ID: 50, Date: when, Login: "bob", UserID: "u-2", ActionID: 1000, IP: "2001", Country: "Germany", City: "Berlin"}
	cutFinding := audit.Finding{EventID: 50, Kind: audit.KindUnverifiableIP, Severity: audit.SeverityHigh, Reason: "cut", UserID: "u-2", Login: "bob",
		IP: "2001", Country: "Germany", City: "Berlin", Date: when.Format(time.RFC3339), ActionID: 1000}
	cutBurst := audit.Finding{EventIDs: []int64{1, 2}, Count: 2, Kind: audit.KindFailedLoginBurst, Severity: audit.SeverityMedium, Reason: "2 failed logins",
		IP: "2a02", Country: "France", Date: when.Format(time.RFC3339)}
	tests := []struct {
		name   string
		class  string
		record any
		// wantPlace: the GeoIP place kept under unmapped.location.
		wantPlace string
	}{
		{"a login from a cut address with its place", "authentication", ocsf.Login("p", cutLogin), "DE"},
		{"a login with no user at all", "authentication", ocsf.Login("p", ipguard.LoginEvent{ID: 51, Date: when, ActionID: 1005, IP: "203.0.113.7"}), ""},
		{"a finding about a login from a cut address", "detection_finding",
			ocsf.Finding(ocsf.Alert{UID: "c1", Portal: "p", Kind: cutFinding.Kind, Severity: "high", Title: "t", Time: when, Finding: &cutFinding}), "DE"},
		{"a burst from a cut address", "detection_finding",
			ocsf.Finding(ocsf.Alert{UID: "c2", Portal: "p", Kind: cutBurst.Kind, Severity: "medium", Title: "t", Time: when, Finding: &cutBurst}), "FR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range validate(f, tt.class, tt.record) {
				t.Error(p)
			}
			b, _ := json.Marshal(tt.record)
			var m struct {
				Evidences []struct {
					Data json.RawMessage `json:"data"`
				} `json:"evidences"`
				Unmapped struct {
					Location struct {
						Country string `json:"country"`
					} `json:"location"`
				} `json:"unmapped"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, e := range m.Evidences {
				if len(e.Data) > 0 {
					for _, p := range validate(f, "authentication", e.Data) {
						t.Error("evidence: " + p)
					}
				}
			}
			if m.Unmapped.Location.Country != tt.wantPlace {
				t.Errorf("unmapped.location.country = %q, want %q: %s", m.Unmapped.Location.Country, tt.wantPlace, b)
			}
		})
	}
}

// Lost coverage is about logins not evaluated, not about one login: its
// Detection Finding has no evidence (docs/ocsf.md). When how many logins
// were lost is unknown (count 0) it was mapped as a login finding, with an
// invented login "event 0" as its evidence and related event.
func TestLostCoverageHasNoLoginAsEvidence(t *testing.T) {
	f := loadFacts(t, ocsf.Version)
	for _, count := range []int{0, 12} {
		lost := audit.Finding{Kind: audit.KindCoverageLost, Severity: audit.SeverityHigh, Cause: "second_unread", Reason: "not evaluated",
			Count: count, FirstAt: when.Add(-time.Hour).Format(time.RFC3339), Date: when.Format(time.RFC3339)}
		rec := ocsf.Finding(ocsf.Alert{UID: "l1", Portal: "p", Kind: lost.Kind, Severity: "high", Title: lost.Reason, Time: when, Finding: &lost})
		for _, p := range validate(f, "detection_finding", rec) {
			t.Error(p)
		}
		if len(rec.Evidences) != 0 || len(rec.FindingInfo.RelatedEvents) != 0 {
			t.Errorf("count %d: evidences %+v, related events %+v; want none", count, rec.Evidences, rec.FindingInfo.RelatedEvents)
		}
		if rec.FindingInfo.FirstSeenTime != when.Add(-time.Hour).UnixMilli() || rec.FindingInfo.LastSeenTime != when.UnixMilli() || rec.Unmapped["cause"] != "second_unread" {
			t.Errorf("count %d: first/last seen %d/%d, unmapped %v; want the span and the cause", count, rec.FindingInfo.FirstSeenTime, rec.FindingInfo.LastSeenTime, rec.Unmapped)
		}
	}
}
