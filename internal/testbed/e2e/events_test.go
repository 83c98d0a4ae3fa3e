package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"ipguard/internal/ipguard"
	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/localdeploy"
)

// sample is the expected outcome of one file in events/.
type sample struct {
	errorType string // "" means the invocation succeeds
	errorText string // the errorMessage contains this
	// check looks at the deployment afterwards; event is the file's JSON and
	// result the function's answer (nil for an error).
	check func(t *testing.T, s *localdeploy.Stack, event, result map[string]any)
	// before is a file of events/ invoked first (e.g. the user an offboarding removes).
	before string
}

// samples covers every file in events/ (but env.json). A new sample event
// fails the test until it gets an expected outcome here.
var samples = map[string]sample{
	"onboard-direct.json":      {check: storedAsSent(func(ev map[string]any) map[string]any { return ev })},
	"onboard-eventbridge.json": {check: storedAsSent(func(ev map[string]any) map[string]any { return ev["detail"].(map[string]any) })},
	"onboard-travel.json": {check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		storedAsSent(func(ev map[string]any) map[string]any { return ev })(t, s, event, result)
		u, _, _ := s.Store.GetUser(context.Background(), sampleUser)
		if d := u.Details["198.51.100.77"]; d.ExpiresAt.Year() != 2099 || !strings.Contains(d.Note, "travel mode") {
			t.Errorf("travel-mode entry stored as %+v", u.Details)
		}
		assertOnPortal(t, s, "203.0.113.10", "198.51.100.77")
	}},
	// Declared places (#21 §4): stored canonical with their entries, never sent to the portal.
	"onboard-place.json": {check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		storedAsSent(func(ev map[string]any) map[string]any { return ev })(t, s, event, result)
		u, _, _ := s.Store.GetUser(context.Background(), sampleUser)
		if u.Details["203.0.113.0/28"].Place != "Berlin, DE" || u.Details["198.51.100.20"].Place != "48.1374,11.5755" || u.Details["192.0.2.0/28"].Place != "anywhere" {
			t.Errorf("places stored as %+v", u.Details)
		}
		assertOnPortal(t, s, "203.0.113.0", "198.51.100.20", "192.0.2.0")
	}},
	"onboard-add.json": {before: "onboard-direct.json", check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		assertResult(t, result, "add", "applied")
		u, _, _ := s.Store.GetUser(context.Background(), sampleUser)
		if !slices.Contains(u.Entries, "192.0.2.40") || !slices.Contains(u.Entries, "203.0.113.10") || u.Details["198.51.100.78"].Note != "hotel" {
			t.Errorf("stored user = %+v", u)
		}
		assertOnPortal(t, s, "203.0.113.10", "192.0.2.40", "198.51.100.78")
	}},
	"onboard-changed-eventbridge.json": {before: "onboard-direct.json", check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		assertResult(t, result, "add", "applied")
		assertOnPortal(t, s, "203.0.113.10", "192.0.2.41")
	}},
	"onboard-remove.json": {before: "onboard-direct.json", check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		assertResult(t, result, "remove", "applied")
		assertOnPortal(t, s, "198.51.100.0")
		assertNotOnPortal(t, s, "203.0.113.10")
	}},
	"onboard-offboard.json": {before: "onboard-direct.json", check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		assertResult(t, result, "offboard", "applied")
		if _, ok, _ := s.Store.GetUser(context.Background(), sampleUser); ok {
			t.Error("the user is still stored")
		}
		assertNotOnPortal(t, s, "203.0.113.10", "198.51.100.0", "2001:db8::1")
	}},
	// The sample's UserOffboarded is dated 2026-11-25, before the direct
	// onboarding just made: a stale offboarding undoes no newer change
	// (issue #15 §5): the entries stay, and the result names the newer request.
	"onboard-offboard-eventbridge.json": {before: "onboard-direct.json", check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		assertResult(t, result, "offboard", "applied")
		if w := jsonText(result["warnings"]); !strings.Contains(w, "older than later changes") {
			t.Errorf("warnings = %s; want the stale offboarding named", w)
		}
		assertOnPortal(t, s, "203.0.113.10")
	}},
	"onboard-get.json": {before: "onboard-direct.json", check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		u, _ := result["user"].(map[string]any)
		entries, _ := u["entries"].([]any)
		if len(entries) != 4 {
			t.Fatalf("result = %s, want the user's 4 entries with their portal state", jsonText(result))
		}
		states := map[string]string{}
		for _, e := range entries {
			m := e.(map[string]any)
			states[fmt.Sprint(m["entry"])] = fmt.Sprint(m["state"])
		}
		if states["203.0.113.10"] != "on portal" || states["10.20.0.0/28"] != "on portal" {
			t.Errorf("states = %v", states)
		}
		assertNoPut(t, s)
	}},
	"onboard-sync.json": {before: "onboard-direct.json", check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		assertResult(t, result, "sync", "applied")
		assertNoPut(t, s) // nothing to do: the portal already holds the desired state
	}},
	"onboard-preview.json": {before: "onboard-direct.json", check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		p, _ := result["preview"].(map[string]any)
		if p == nil || p["days"] != float64(7) {
			t.Errorf("result = %s, want a preview over 7 days", jsonText(result))
		}
		assertNoPut(t, s)
	}},
	"onboard-bad.json": {errorType: "InvalidInput", errorText: `allowedIps[1] "198.51.100.255-198.51.100.0"`, check: func(t *testing.T, s *localdeploy.Stack, event, _ map[string]any) {
		if users, err := s.Store.AllUsers(context.Background()); err != nil || len(users) != 0 {
			t.Errorf("stored users = %+v, %v; want none", users, err)
		}
		assertNoPut(t, s)
	}},
	"audit-scheduled.json": {check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		from, to := window(t, result)
		if at, _ := time.Parse(time.RFC3339, event["time"].(string)); !to.Equal(at) {
			t.Errorf("window ends %v, want the event's time %v", to, at)
		}
		if !from.Before(to) || result["backfill"] == true {
			t.Errorf("result = %s, want a scheduled (not backfill) window with from before to", jsonText(result))
		}
	}},
	"audit-learn-dryrun.json": {check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		if result["action"] != "learn" || result["dryRun"] != true || result["days"] != float64(30) || result["complete"] != true || result["baselinesWritten"] != float64(0) {
			t.Errorf("result = %s, want a complete dry run over 30 days that wrote nothing", jsonText(result))
		}
	}},
	"audit-learn.json": {check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		if result["action"] != "learn" || result["dryRun"] != false || result["complete"] != true {
			t.Errorf("result = %s, want a complete learn over 30 days", jsonText(result))
		}
	}},
	"audit-test-alert.json": {check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		if result["test"] != true || result["confirmedSubscribers"] != 1.0 {
			t.Errorf("result = %s, want a test sent to 1 confirmed subscriber", jsonText(result))
		}
		mail, err := s.Mail(context.Background(), 300*time.Millisecond)
		if err != nil || len(mail) != 1 || mail[0].Attributes["test"] != "true" {
			t.Errorf("mailbox %+v (%v), want one message marked test", mail, err)
		}
	}},
	"audit-backfill.json": {check: func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		from, to := window(t, result)
		if result["backfill"] != true || from.Format(time.RFC3339) != event["from"] || to.Format(time.RFC3339) != event["to"] {
			t.Errorf("result = %s, want \"backfill\": true over exactly %v – %v", jsonText(result), event["from"], event["to"])
		}
		if _, ok, err := s.Store.Checkpoint(context.Background()); err != nil || ok {
			t.Errorf("a backfill set the checkpoint (ok %v, %v); want it left alone", ok, err)
		}
	}},
}

// sampleUser is the user id of the onboarding samples, canonical.
const sampleUser = "6b2f7a1e-3c44-4a5b-9e0f-1d2c3b4a5f60"

func assertResult(t *testing.T, result map[string]any, action, portal string) {
	t.Helper()
	if result["action"] != action || result["portal"] != portal {
		t.Errorf("result = %s, want action %q and portal %q", jsonText(result), action, portal)
	}
}

func assertOnPortal(t *testing.T, s *localdeploy.Stack, ips ...string) {
	t.Helper()
	list, _ := s.Portal.Restrictions()
	for _, ip := range ips {
		if !slices.ContainsFunc(list, func(r ipguard.Restriction) bool { return r.IP == ip && !r.ForAdmin }) {
			t.Errorf("%s is not on the portal: %v", ip, list)
		}
	}
}

func assertNotOnPortal(t *testing.T, s *localdeploy.Stack, ips ...string) {
	t.Helper()
	list, _ := s.Portal.Restrictions()
	for _, ip := range ips {
		if slices.ContainsFunc(list, func(r ipguard.Restriction) bool { return r.IP == ip }) {
			t.Errorf("%s is still on the portal: %v", ip, list)
		}
	}
}

// storedAsSent checks that the user the request names is stored with the
// entries the function reported.
func storedAsSent(request func(event map[string]any) map[string]any) func(*testing.T, *localdeploy.Stack, map[string]any, map[string]any) {
	return func(t *testing.T, s *localdeploy.Stack, event, result map[string]any) {
		req := request(event)
		id, _ := req["id"].(string)
		if id == "" {
			id, _ = req["userId"].(string)
		}
		u, ok, err := s.Store.GetUser(context.Background(), strings.ToLower(id))
		if err != nil || !ok {
			t.Fatalf("GetUser(%s) = found %v, %v; want the onboarded user", id, ok, err)
		}
		var want []string
		for _, e := range result["entries"].([]any) {
			want = append(want, e.(string))
		}
		sent := req["allowedIps"].([]any)
		if u.Email != req["email"] || len(u.Entries) != len(sent) || !slices.Equal(u.Entries, want) {
			t.Errorf("stored user = %+v, want email %v and the %d entries the result reports: %q", u, req["email"], len(sent), want)
		}
	}
}

func window(t *testing.T, result map[string]any) (from, to time.Time) {
	t.Helper()
	f, err1 := time.Parse(time.RFC3339, fmt.Sprint(result["from"]))
	tt, err2 := time.Parse(time.RFC3339, fmt.Sprint(result["to"]))
	if err1 != nil || err2 != nil {
		t.Fatalf("result = %s, want RFC3339 from and to", jsonText(result))
	}
	return f, tt
}

// functionOf maps a sample file to the template's function and its bootstrap.
func functionOf(file string) (logicalID, bootstrap string, ok bool) {
	switch {
	case strings.HasPrefix(file, "onboard-"):
		return "OnboardFunction", "onboard", true
	case strings.HasPrefix(file, "audit-"):
		return "AuditFunction", "audit", true
	}
	return "", "", false
}

func TestSampleEventsUnderTheEmulatorWithEnvJSON(t *testing.T) {
	root, err := localaws.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var envJSON map[string]map[string]string
	readJSON(t, filepath.Join(root, "events", "env.json"), &envJSON)
	declared := templateVariables(t, filepath.Join(root, "template.yaml"))
	for fn, vars := range envJSON {
		decl, ok := declared[fn]
		if !ok {
			t.Errorf("events/env.json configures %s, which template.yaml does not declare as a function", fn)
			continue
		}
		for k := range vars {
			if !decl[k] {
				t.Errorf("events/env.json sets %s for %s, which template.yaml does not declare for it (sam local invoke would ignore it)", k, fn)
			}
		}
	}

	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		name := filepath.Base(path)
		if name == "env.json" {
			continue
		}
		seen[name] = true
		want, ok := samples[name]
		if !ok {
			t.Errorf("events/%s has no expected outcome: add it to samples in %s", name, "internal/e2e/events_test.go")
			continue
		}
		logicalID, bootstrap, ok := functionOf(name)
		if !ok {
			t.Errorf("events/%s: name it onboard-*.json or audit-*.json so the test knows which function takes it", name)
			continue
		}
		vars, ok := envJSON[logicalID]
		if !ok {
			t.Errorf("events/env.json has no variables for %s (needed by events/%s)", logicalID, name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			s := deploy(t)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var event map[string]any
			if err := json.Unmarshal(raw, &event); err != nil {
				t.Fatalf("events/%s: %v", name, err)
			}
			fn := startFunction(t, bootstrap, samEnv(s, vars))
			if want.before != "" {
				first, err := os.ReadFile(filepath.Join(root, "events", want.before))
				if err != nil {
					t.Fatal(err)
				}
				if r := fn.invoke(t, first); r.ErrorType != "" {
					t.Fatalf("events/%s (run first) = %s", want.before, r.Raw)
				}
				s.Portal.ResetRequests()
			}
			r := fn.invoke(t, raw)
			if r.ErrorType != want.errorType {
				t.Fatalf("response = %s\nwant errorType %q", r.Raw, want.errorType)
			}
			var result map[string]any
			if want.errorType == "" {
				r.result(t, &result)
			} else if r.ErrorMessage == "" || !strings.Contains(r.ErrorMessage, want.errorText) {
				t.Errorf("response = %s, want an errorMessage containing %s", r.Raw, want.errorText)
			}
			want.check(t, s, event, result)
		})
	}
	for name := range samples {
		if !seen[name] {
			t.Errorf("samples expects events/%s, which does not exist", name)
		}
	}
}

// samEnv is what `sam local invoke --env-vars events/env.json` gives the
// function: the standard AWS variables (here pointing at the local stack) and
// the function's variables from env.json, with the ones that name resources
// replaced by this deployment's.
func samEnv(s *localdeploy.Stack, vars map[string]string) []string {
	local := map[string]string{
		"DOCSPACE_API_HOST":          s.PortalURL,
		"ALLOWLIST_TABLE":            localdeploy.TableName,
		"DOCSPACE_API_KEY_SECRET_ID": localdeploy.SecretName,
		"ALERT_TOPIC_ARN":            s.TopicARN,
	}
	var env []string
	for _, kv := range s.FunctionEnv() {
		if strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := vars[k]
		if lv, ok := local[k]; ok {
			v = lv
		}
		env = append(env, k+"="+v)
	}
	return env
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// templateVariables returns, per AWS::Serverless::Function in the template,
// the names of the environment variables it declares (its own and those of
// Globals.Function).
func templateVariables(t *testing.T, path string) map[string]map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Content) != 1 {
		t.Fatalf("%s: not one YAML document", path)
	}
	top := doc.Content[0]
	global := variableNames(child(child(child(child(top, "Globals"), "Function"), "Environment"), "Variables"))
	out := map[string]map[string]bool{}
	res := child(top, "Resources")
	if res == nil || res.Kind != yaml.MappingNode {
		t.Fatalf("%s: no Resources mapping", path)
	}
	for i := 0; i+1 < len(res.Content); i += 2 {
		name, r := res.Content[i].Value, res.Content[i+1]
		if typ := child(r, "Type"); typ == nil || typ.Value != "AWS::Serverless::Function" {
			continue
		}
		vars := variableNames(child(child(child(r, "Properties"), "Environment"), "Variables"))
		for k := range global {
			vars[k] = true
		}
		out[name] = vars
	}
	return out
}

// child returns the value of key in mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			for v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			return v
		}
	}
	return nil
}

// variableNames returns the keys of the mapping n.
func variableNames(n *yaml.Node) map[string]bool {
	out := map[string]bool{}
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = true
	}
	return out
}

// A direct change's first arrival at the function is not when it was sent
// (a caller throttled for hours, a replay), so the samples that show a
// direct change carry requestedAt, as the README asks of every caller; and
// a sample run after another (before) is dated after it, or it would be a
// stale request. A static check: it runs in the -short lane too.
func TestDirectChangeSamplesCarryRequestedAt(t *testing.T) {
	root, err := localaws.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	at := func(name string) (time.Time, bool) {
		var ev map[string]any
		readJSON(t, filepath.Join(root, "events", name), &ev)
		if _, envelope := ev["detail-type"]; envelope {
			return time.Time{}, false // dated by the event's time
		}
		switch action, _ := ev["action"].(string); action {
		case "", "replace", "add", "remove", "offboard":
		default:
			return time.Time{}, false // not a change
		}
		s, _ := ev["requestedAt"].(string)
		when, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Errorf("events/%s: a direct change without a valid requestedAt (%q): callers should send the time of the change", name, s)
		}
		return when, true
	}
	for name, want := range samples {
		if !strings.HasPrefix(name, "onboard-") {
			continue
		}
		when, change := at(name)
		if !change || want.before == "" {
			continue
		}
		if first, ok := at(want.before); ok && !when.After(first) {
			t.Errorf("events/%s (requestedAt %s) runs after events/%s (%s) but is not newer: it would be a stale request", name, when, want.before, first)
		}
	}
}
