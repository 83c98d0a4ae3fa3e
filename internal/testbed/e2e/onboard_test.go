package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"ipguard/internal/ipguard"
	"ipguard/internal/onboard"
	"ipguard/internal/testbed/localdeploy"
)

const janeID = "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60"

func TestOnboardStoresUserAndAddsAddressesToPortal(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	manual := []ipguard.Restriction{{IP: "192.0.2.1", ForAdmin: true}, {IP: "192.0.2.2"}}
	s.Portal.SetRestrictions(manual, false)
	fn := startFunction(t, "onboard", s.FunctionEnv())

	var res onboard.Result
	fn.invoke(t, map[string]any{
		"id":         strings.ToUpper(janeID), // GUIDs are stored lower-case, as login events carry them
		"email":      "jane.roe@example.com",
		"allowedIps": []string{"203.0.113.10", "198.51.100.0-198.51.100.3", "10.20.0.0/30", "2001:db8::1"},
	}).result(t, &res)

	wantAdded := []string{"203.0.113.10",
		"198.51.100.0", "198.51.100.1", "198.51.100.2", "198.51.100.3",
		"10.20.0.0", "10.20.0.1", "10.20.0.2", "10.20.0.3",
		"2001:db8::1"}
	if res.UserID != janeID || !res.Stored || !res.PortalUpdated || !res.RestrictionsEnabled ||
		!slices.Equal(res.PortalAdded, wantAdded) || len(res.Entries) != 4 {
		t.Errorf("result = %s\nwant userId %s, stored, portalUpdated, restrictionsEnabled, 4 entries, portalAdded %q", jsonText(res), janeID, wantAdded)
	}

	u, ok, err := s.Store.GetUser(ctx, janeID)
	if err != nil || !ok {
		t.Fatalf("GetUser(%s) = found %v, %v; want the stored user", janeID, ok, err)
	}
	if u.Email != "jane.roe@example.com" || !slices.Equal(u.Entries, res.Entries) || u.CreatedAt.IsZero() {
		t.Errorf("stored user = %+v, want email jane.roe@example.com, entries %q and a creation time", u, res.Entries)
	}

	list, enable := s.Portal.Restrictions()
	want := append([]ipguard.Restriction(nil), manual...)
	for _, ip := range wantAdded {
		want = append(want, ipguard.Restriction{IP: ip})
	}
	if !slices.Equal(list, want) || !enable {
		t.Errorf("portal allowlist = %v (enable %v)\nwant the manual entries unchanged, then the additions: %v (enable true)", list, enable, want)
	}
}

func TestOnboardRejectsInvalidInputWithoutWriting(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	fn := startFunction(t, "onboard", s.FunctionEnv())

	r := fn.invoke(t, map[string]any{
		"id":         janeID,
		"email":      "jane.roe@example.com",
		"allowedIps": []string{"203.0.113.10", "300.1.2.3"},
	})
	if r.ErrorType != "InvalidInput" || !strings.Contains(r.ErrorMessage, "allowedIps[1]") || !strings.Contains(r.ErrorMessage, "300.1.2.3") {
		t.Errorf("response = %s\nwant errorType InvalidInput and a message naming allowedIps[1] and 300.1.2.3", r.Raw)
	}
	if users, err := s.Store.AllUsers(ctx); err != nil || len(users) != 0 {
		t.Errorf("stored users = %+v, %v; want none", users, err)
	}
	assertNoPut(t, s)
}

func TestOnboardWithoutTableVariableIsConfigurationError(t *testing.T) {
	s := deploy(t)
	fn := startFunction(t, "onboard", without(s.FunctionEnv(), "ALLOWLIST_TABLE"))

	r := fn.invoke(t, map[string]any{"id": janeID, "email": "jane.roe@example.com", "allowedIps": []string{"203.0.113.10"}})
	if r.ErrorType != "ConfigurationError" || !strings.Contains(r.ErrorMessage, "ALLOWLIST_TABLE") {
		t.Errorf("response = %s\nwant errorType ConfigurationError naming ALLOWLIST_TABLE", r.Raw)
	}
	assertNoPut(t, s)
}

func TestOnboardWithWrongAPIKeyFailsWithoutRevealingAnyKey(t *testing.T) {
	ctx := context.Background()
	s := deploy(t)
	wrong := "sk-wrong-" + strings.Repeat("7f3a", 12)
	val, _ := json.Marshal(map[string]string{"apiKey": wrong})
	if _, err := s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(localdeploy.SecretName), SecretString: aws.String(string(val)),
	}); err != nil {
		t.Fatal(err)
	}
	fn := startFunction(t, "onboard", s.FunctionEnv("LOG_LEVEL=debug"))

	r := fn.invoke(t, map[string]any{"id": janeID, "email": "jane.roe@example.com", "allowedIps": []string{"203.0.113.10"}})
	if r.ErrorType != "ConfigurationError" || r.ErrorMessage == "" {
		t.Errorf("response = %s\nwant errorType ConfigurationError (the portal refused the key)", r.Raw)
	}
	if err := fn.stop(); err != nil {
		t.Fatal(err)
	}
	log := fn.log.String()
	for name, key := range map[string]string{"the wrong key": wrong, "the portal's key": s.APIKey} {
		if strings.Contains(string(r.Raw), key) {
			t.Errorf("the error response contains %s", name)
		}
		if strings.Contains(log, key) {
			t.Errorf("the function log contains %s", name)
		}
	}
	if list, _ := s.Portal.Restrictions(); len(list) != 0 {
		t.Errorf("portal allowlist = %v, want it untouched (empty)", list)
	}
	assertNoPut(t, s)
}

// assertNoPut fails if the portal received any PUT.
func assertNoPut(t *testing.T, s *localdeploy.Stack) {
	t.Helper()
	for _, r := range s.Portal.Requests() {
		if r.Method == http.MethodPut {
			t.Errorf("portal received %s %s (status %d), want no PUT", r.Method, r.Path, r.Status)
		}
	}
}

// jsonText renders a value for a failure message.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A pipeline that adds its own "source" (or "id") field to a direct request
// is not taken for an EventBridge envelope: only the whole envelope is.
func TestDirectRequestWithASourceFieldIsOnboardedAsIs(t *testing.T) {
	s := deploy(t)
	fn := startFunction(t, "onboard", s.FunctionEnv())
	var res map[string]any
	fn.invoke(t, map[string]any{"source": "hr-system", "id": janeID, "email": "jane.roe@example.com",
		"allowedIps": []string{"203.0.113.10"}}).result(t, &res)
	if _, ok, err := s.Store.GetUser(context.Background(), janeID); err != nil || !ok {
		t.Fatalf("user not stored (%v): %v", err, res)
	}
}
