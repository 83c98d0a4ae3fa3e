package samtemplate

// These tests read the plain CloudFormation that the SAM translator makes of template.yaml,
// because that is what CloudFormation deploys: the IAM statements, rules and invoke configs
// SAM generates are only visible there.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"ipguard/internal/config"
	"ipguard/internal/dynamo"
	"ipguard/internal/enforce"
	"ipguard/internal/findingsbus"
)

// translated runs testdata/translate.py once for the whole test binary.
var translated = sync.OnceValues(func() (map[string]any, error) {
	path, err := FindTemplate()
	if err != nil {
		return nil, err
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, errors.New("python3 is not on PATH: install Python 3 and `pip install aws-sam-translator==1.110.0`")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "translate.py"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(python, script, path)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("SAM translation of %s failed (%v):\n%s", path, err, stderr.String())
	}
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("SAM translation of %s: output is not JSON: %v", path, err)
	}
	return out, nil
})

func cfn(t *testing.T) map[string]any {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs python3 with the SAM translator (make test runs it)")
	}
	out, err := translated()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func resource(t *testing.T, logicalID string) map[string]any {
	t.Helper()
	r, ok := cfn(t)["Resources"].(map[string]any)[logicalID].(map[string]any)
	if !ok {
		t.Fatalf("translated template has no resource %s", logicalID)
	}
	return r
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// resourcesOfType returns the properties of every resource of type typ, by logical id.
func resourcesOfType(t *testing.T, typ string) map[string]map[string]any {
	t.Helper()
	found := map[string]map[string]any{}
	for id, r := range cfn(t)["Resources"].(map[string]any) {
		if r := r.(map[string]any); r["Type"] == typ {
			found[id] = props(r)
		}
	}
	return found
}

// asList returns v as a list: IAM and CloudFormation accept a single value where a list is meant.
func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func ref(name string) any          { return map[string]any{"Ref": name} }
func getAtt(name, attr string) any { return map[string]any{"Fn::GetAtt": []any{name, attr}} }

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func sameJSON(got, want any) bool { return reflect.DeepEqual(got, want) }

func isNumber(v any, want int) bool {
	f, ok := v.(float64)
	return ok && f == float64(want)
}

func textOf(v any) string {
	s, _ := v.(string)
	return s
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

var (
	tableArn = getAtt("AllowlistTable", "Arn")
	topicArn = ref("AlertTopic")
	secret   = ref("DocSpaceApiKeySecretArn")
	// The audit reads only its own read-only key when one is configured.
	auditSecret = map[string]any{"Fn::If": []any{"HasAuditApiKey", ref("AuditApiKeySecretArn"), ref("DocSpaceApiKeySecretArn")}}
	// Where findings go (#18): the bus, the chat topic, the login archive (each granted only when on).
	busArn = map[string]any{"Fn::If": []any{"FindingsBusIsArn", ref("FindingsBusName"),
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${FindingsBusName}"}}}
	archiveObjects = map[string]any{"Fn::If": []any{"CreateArchiveBucket", map[string]any{"Fn::Sub": "${ArchiveBucket.Arn}/*"},
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArchiveBucketName}/*"}}}
)

var chatTopicEnv = map[string]any{"Fn::If": []any{"HasChat", ref("ChatTopic"), ""}}

// grant is what a role may do with one action on one resource: under which
// statement condition (nil: none), and under which template condition the
// policy or the statement exists ("": always).
type grant struct {
	resource  any
	condition any
	when      string
}

// leadingKeys is the statement condition that limits table writes to items
// whose partition key matches the patterns.
func leadingKeys(patterns []string) any {
	l := []any{}
	for _, p := range patterns {
		l = append(l, p)
	}
	return map[string]any{"ForAllValues:StringLike": map[string]any{"dynamodb:LeadingKeys": l}}
}

func viaService(service string) any {
	return map[string]any{"StringEquals": map[string]any{"kms:ViaService": map[string]any{"Fn::Sub": service + ".${AWS::Region}.amazonaws.com"}}}
}

var (
	secretKey     = grant{ref("SecretKmsKeyArn"), viaService("secretsmanager"), "HasSecretKmsKey"}
	alertTopicKey = grant{ref("AlertTopicKmsKeyArn"), viaService("sns"), "HasAlertTopicKmsKey"}
	chatTopic     = grant{ref("ChatTopic"), nil, "HasChat"}
	// A function may put only its own findings on the bus, never an event the
	// onboarding rule matches (source hr.onboarding, or any other).
	ownFindingsOnly = map[string]any{"StringEquals": map[string]any{
		"events:source": findingsbus.Source, "events:detail-type": findingsbus.DetailType}}
)

// unwrapIf unwraps {"Fn::If": [cond, v, AWS::NoValue]}: v and cond; other
// values come back as they are, with "".
func unwrapIf(v any) (any, string, bool) {
	f, ok := mapOf(v)["Fn::If"].([]any)
	if !ok {
		return v, "", true
	}
	if len(f) != 3 || !sameJSON(f[2], ref("AWS::NoValue")) {
		return v, "", false
	}
	return f[1], textOf(f[0]), true
}

// Least privilege (#14 §4, #18): each role may do exactly the listed actions,
// on the listed resources, under the listed conditions; table writes only to
// the items its function writes (dynamo.AuditWrites, dynamo.OnboardWrites).
func TestRolesGrantOnlyTheListedActionsOnTheirResources(t *testing.T) {
	tests := []struct {
		function string
		grants   map[string][]grant // action -> every resource it may name
	}{
		{"OnboardFunction", map[string][]grant{
			"dynamodb:GetItem":              {{tableArn, nil, ""}},
			"dynamodb:BatchGetItem":         {{tableArn, nil, ""}}, // a waiting change's poll: the portal state and its lease in one read
			"dynamodb:Scan":                 {{tableArn, nil, ""}}, // a reconcile reads every user
			"dynamodb:PutItem":              {{tableArn, leadingKeys(dynamo.OnboardWrites), ""}},
			"dynamodb:DeleteItem":           {{tableArn, leadingKeys(dynamo.OnboardWrites), ""}},
			"dynamodb:UpdateItem":           {{tableArn, leadingKeys(dynamo.OnboardWrites), ""}}, // the desired-state version counter and portal state
			"sns:Publish":                   {{topicArn, nil, ""}, chatTopic},                    // drift and lock-out alerts, and their chat copy
			"events:PutEvents":              {{busArn, ownFindingsOnly, "HasFindingsBus"}},
			"secretsmanager:GetSecretValue": {{secret, nil, ""}},
			"sqs:SendMessage":               {{getAtt("OnboardFailureQueue", "Arn"), nil, ""}}, // the on-failure destination
			"kms:Decrypt":                   {secretKey},
			"kms:GenerateDataKey*":          {alertTopicKey},
		}},
		{"AuditFunction", map[string][]grant{
			"dynamodb:GetItem":              {{tableArn, nil, ""}},
			"dynamodb:BatchGetItem":         {{tableArn, nil, ""}},
			"dynamodb:Scan":                 {{tableArn, nil, ""}},
			"dynamodb:PutItem":              {{tableArn, leadingKeys(dynamo.AuditWrites), ""}},
			"dynamodb:DeleteItem":           {{tableArn, leadingKeys(dynamo.AuditWrites), ""}},
			"dynamodb:BatchWriteItem":       {{tableArn, leadingKeys(dynamo.AuditWrites), ""}},
			"dynamodb:UpdateItem":           {{tableArn, leadingKeys(dynamo.AuditWrites), ""}},
			"sns:Publish":                   {{topicArn, nil, ""}, chatTopic},
			"sns:ListSubscriptionsByTopic":  {{topicArn, nil, ""}}, // the scheduled run's delivery check
			"events:PutEvents":              {{busArn, ownFindingsOnly, "HasFindingsBus"}},
			"s3:PutObject":                  {{archiveObjects, nil, "HasArchive"}},
			"secretsmanager:GetSecretValue": {{auditSecret, nil, ""}},
			"kms:Decrypt":                   {secretKey},
			"kms:GenerateDataKey*":          {alertTopicKey},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.function, func(t *testing.T) {
			roleArn, _ := props(resource(t, tt.function))["Role"].(map[string]any)["Fn::GetAtt"].([]any)
			if len(roleArn) != 2 {
				t.Fatalf("%s Role is not a GetAtt of a role in the template", tt.function)
			}
			role := props(resource(t, textOf(roleArn[0])))

			managed := asList(role["ManagedPolicyArns"])
			if len(managed) != 1 || !strings.HasSuffix(textOf(managed[0]), ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole") {
				t.Errorf("ManagedPolicyArns = %s, want only AWSLambdaBasicExecutionRole (logs)", jsonText(role["ManagedPolicyArns"]))
			}

			seen := map[string]int{}
			for _, p := range asList(role["Policies"]) {
				p, policyWhen, ok := unwrapIf(p)
				if !ok {
					t.Errorf("policy %s: want Fn::If [condition, policy, AWS::NoValue]", jsonText(p))
					continue
				}
				for _, st := range asList(mapOf(mapOf(p)["PolicyDocument"])["Statement"]) {
					raw, stWhen, ok := unwrapIf(st)
					if !ok {
						t.Errorf("statement %s: want Fn::If [condition, statement, AWS::NoValue]", jsonText(st))
						continue
					}
					when := policyWhen
					if stWhen != "" {
						when = stWhen
					}
					st := mapOf(raw)
					if isOwnLogsOnly(st) {
						continue // the Deny on logs: TestEachFunctionWritesLogsOnlyIntoItsOwnLogGroup
					}
					if st["Effect"] != "Allow" || hasKey(st, "NotAction") || hasKey(st, "NotResource") {
						t.Errorf("statement %s: want a plain Allow with Action and Resource", jsonText(st))
						continue
					}
					for _, a := range asList(st["Action"]) {
						action := textOf(a)
						wants, listed := tt.grants[action]
						if action == "kms:Decrypt" && when == alertTopicKey.when {
							wants, listed = []grant{alertTopicKey}, true // publishing to a topic under a customer key needs both
						}
						if !listed {
							t.Errorf("statement %s grants %q, which is not in the list", jsonText(st), a)
							continue
						}
						seen[action]++
						for _, r := range asList(st["Resource"]) {
							var want *grant
							for i := range wants {
								if sameJSON(r, wants[i].resource) {
									want = &wants[i]
								}
							}
							if want == nil {
								t.Errorf("%s is granted on %s, want only %s", action, jsonText(r), jsonText(wants))
								continue
							}
							if cond, ok := st["Condition"]; want.condition == nil && ok || want.condition != nil && !sameJSON(cond, want.condition) {
								t.Errorf("%s is granted under the condition %s, want %s", action, jsonText(st["Condition"]), jsonText(want.condition))
							}
							if when != want.when {
								t.Errorf("%s on %s is granted when %q, want when %q (\"\": always)", action, jsonText(r), when, want.when)
							}
						}
					}
				}
			}
			for action := range tt.grants {
				if seen[action] == 0 {
					t.Errorf("%s is not granted", action)
				}
			}
		})
	}
}

func TestFunctionsAreBuiltAndConfiguredAsDeployed(t *testing.T) {
	tests := []struct {
		function string
		timeout  int
		reserved int // 0: no reserved concurrency
		env      map[string]any
	}{
		{"OnboardFunction", 30, 0, map[string]any{
			"DOCSPACE_API_HOST":             ref("DocSpaceApiHost"),
			"DOCSPACE_API_KEY_SECRET_ID":    ref("DocSpaceApiKeySecretArn"),
			"DOCSPACE_ALLOW_HTTP":           "false",
			"ALLOWLIST_TABLE":               ref("AllowlistTable"),
			"PORTAL_MAX_RANGE_ADDRESSES":    ref("PortalMaxRangeAddresses"),
			"PORTAL_BREAKGLASS_IPS":         ref("PortalBreakglassIps"),
			"PORTAL_ENFORCE":                ref("PortalEnforce"),
			"PORTAL_MAX_ENTRIES":            ref("PortalMaxEntries"),
			"PORTAL_DRIFT_REPAIR":           ref("PortalDriftRepair"),
			"OFFBOARD_REMOVED_USERS":        ref("OffboardRemovedUsers"),
			"OFFBOARD_MAX_PERCENT":          ref("OffboardMaxPercent"),
			"SYNC_SCHEDULE":                 ref("SyncSchedule"),               // sizes the users-left rotation
			"SYNC_HEARTBEAT_PERIOD_SECONDS": ref("SyncHeartbeatPeriodSeconds"), // a rate() SyncSchedule must fit it (checked at start)
			"ALERT_TOPIC_ARN":               ref("AlertTopic"),
			"ALLOWLIST_MIN_PREFIX_V4":       ref("AllowlistMinPrefixV4"),
			"ALLOWLIST_MIN_PREFIX_V6":       ref("AllowlistMinPrefixV6"),
			"LEASE_WAIT":                    "20s",
			"SECRET_CACHE_TTL":              "5m",
			"PORTAL_REQUESTS_PER_MINUTE":    ref("PortalRequestsPerMinute"),
			"LOG_LEVEL":                     ref("LogLevel"),
			"METRICS_NAMESPACE":             ref("MetricsNamespace"),
			"FINDINGS_BUS_NAME":             ref("FindingsBusName"),
			"CHAT_TOPIC_ARN":                chatTopicEnv,
		}},
		{"AuditFunction", 300, 0, map[string]any{
			"DOCSPACE_API_HOST":          ref("DocSpaceApiHost"),
			"DOCSPACE_API_KEY_SECRET_ID": auditSecret,
			"DOCSPACE_ALLOW_HTTP":        "false",
			"ALLOWLIST_TABLE":            ref("AllowlistTable"),
			"ALERT_TOPIC_ARN":            ref("AlertTopic"),
			"AUDIT_OVERLAP":              ref("AuditOverlap"),
			"AUDIT_LOOKBACK":             ref("AuditLookback"),
			"AUDIT_CONCURRENCY":          ref("AuditConcurrency"),
			"PORTAL_REQUESTS_PER_MINUTE": ref("PortalRequestsPerMinute"),
			"AUDIT_DEADLINE_MARGIN":      "20s",
			"FAILED_LOGIN_THRESHOLD":     ref("FailedLoginThreshold"),
			"UNKNOWN_USER_POLICY":        ref("UnknownUserPolicy"),
			"ALERT_MODE":                 ref("AlertMode"),
			"ALERT_RETENTION":            ref("AlertRetention"),
			"ENFORCEMENT_MODE":           ref("EnforcementMode"),
			"ENFORCE_UNKNOWN_USERS":      ref("EnforceUnknownUsers"),
			"ENFORCEMENT_MAX_PER_RUN":    ref("EnforcementMaxPerRun"),
			"ENFORCEMENT_DISABLE_AFTER":  ref("EnforcementDisableAfter"),
			"BEHAVIOUR_RULES":            ref("BehaviourRules"),
			"BEHAVIOUR_MIN_SEVERITY":     ref("BehaviourMinSeverity"),
			"ENFORCE_BEHAVIOUR":          ref("EnforceBehaviour"),
			"BASELINE_MIN_LOGINS":        ref("BaselineMinLogins"),
			"BASELINE_MIN_DAYS":          ref("BaselineMinDays"),
			"SPRAY_MIN_ACCOUNTS":         ref("SprayMinAccounts"),
			"SPRAY_WINDOW":               ref("SprayWindow"),
			"GUESS_WINDOW":               ref("GuessWindow"),
			"EPISODE_HOURS":              ref("EpisodeHours"), // #21 §2
			"SECRET_CACHE_TTL":           "5m",
			"LOG_LEVEL":                  ref("LogLevel"),
			"METRICS_NAMESPACE":          ref("MetricsNamespace"),
			"AUDIT_SCHEDULE":             ref("AuditSchedule"),
			"HEARTBEAT_MAX_LAG_SECONDS":  ref("HeartbeatMaxLagSeconds"),
			"ALARM_PERIOD_SECONDS":       ref("AlarmPeriodSeconds"),
			"FINDINGS_BUS_NAME":          ref("FindingsBusName"),
			"CHAT_TOPIC_ARN":             chatTopicEnv,
			"ARCHIVE_BUCKET": map[string]any{"Fn::If": []any{"HasArchive",
				map[string]any{"Fn::If": []any{"CreateArchiveBucket", ref("ArchiveBucket"), ref("ArchiveBucketName")}}, ""}},
			"DIGEST_SEVERITIES": ref("DigestSeverities"),
			"DIGEST_HOUR":       ref("DigestHour"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.function, func(t *testing.T) {
			r := resource(t, tt.function)
			p := props(r)
			if r["Type"] != "AWS::Lambda::Function" || mapOf(r["Metadata"])["BuildMethod"] != "makefile" {
				t.Errorf("want an AWS::Lambda::Function built by the Makefile, got Type %v, Metadata %s", r["Type"], jsonText(r["Metadata"]))
			}
			if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" || !sameJSON(p["Architectures"], []any{"arm64"}) {
				t.Errorf("Runtime %v, Handler %v, Architectures %s; want provided.al2023, bootstrap, [arm64]", p["Runtime"], p["Handler"], jsonText(p["Architectures"]))
			}
			if !isNumber(p["Timeout"], tt.timeout) || !isNumber(p["MemorySize"], 256) {
				t.Errorf("Timeout %v, MemorySize %v; want %d, 256", p["Timeout"], p["MemorySize"], tt.timeout)
			}
			if got, ok := p["ReservedConcurrentExecutions"]; tt.function == "AuditFunction" {
				// Opt-in only (#14 §1): a new account's quota may be 10, and Lambda
				// refuses a reservation that leaves less than 10 unreserved.
				want := map[string]any{"Fn::If": []any{"HasAuditReservation", ref("AuditReservedConcurrency"), ref("AWS::NoValue")}}
				if !sameJSON(got, want) {
					t.Errorf("ReservedConcurrentExecutions = %s, want %s", jsonText(got), jsonText(want))
				}
			} else if ok {
				t.Errorf("ReservedConcurrentExecutions = %v, want unset", got)
			}
			env := mapOf(mapOf(p["Environment"])["Variables"])
			for name, want := range tt.env {
				if got, ok := env[name]; !ok || !sameJSON(got, want) {
					t.Errorf("environment %s = %s, want %s", name, jsonText(got), jsonText(want))
				}
			}
			for name := range env {
				if !hasKey(tt.env, name) {
					t.Errorf("environment has unexpected variable %s", name)
				}
			}
		})
	}
}

func TestEventInvokeConfigsSetRetries(t *testing.T) {
	tests := []struct {
		function         string
		retries, maxAgeS int
	}{
		{"OnboardFunction", 2, 3600}, // onboarding is idempotent
		{"AuditFunction", 0, 600},    // the next scheduled run covers a failed one
	}
	configs := resourcesOfType(t, "AWS::Lambda::EventInvokeConfig")
	for _, tt := range tests {
		var found []map[string]any
		for _, c := range configs {
			if sameJSON(c["FunctionName"], ref(tt.function)) {
				found = append(found, c)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: %d EventInvokeConfigs, want 1", tt.function, len(found))
			continue
		}
		c := found[0]
		if !isNumber(c["MaximumRetryAttempts"], tt.retries) || !isNumber(c["MaximumEventAgeInSeconds"], tt.maxAgeS) {
			t.Errorf("%s: MaximumRetryAttempts %v, MaximumEventAgeInSeconds %v; want %d, %d",
				tt.function, c["MaximumRetryAttempts"], c["MaximumEventAgeInSeconds"], tt.retries, tt.maxAgeS)
		}
	}
}

// rulesTargeting returns the properties of the EventBridge rules with the function as a target,
// and that target.
func rulesTargeting(t *testing.T, function string) (rules, targets []map[string]any) {
	t.Helper()
	for _, r := range resourcesOfType(t, "AWS::Events::Rule") {
		for _, target := range asList(r["Targets"]) {
			if sameJSON(mapOf(target)["Arn"], getAtt(function, "Arn")) {
				rules, targets = append(rules, r), append(targets, mapOf(target))
			}
		}
	}
	return rules, targets
}

// schedulesTargeting returns the EventBridge Scheduler schedules that invoke the function.
func schedulesTargeting(t *testing.T, function string) []map[string]any {
	t.Helper()
	var found []map[string]any
	for _, s := range resourcesOfType(t, "AWS::Scheduler::Schedule") {
		if sameJSON(mapOf(s["Target"])["Arn"], getAtt(function, "Arn")) {
			found = append(found, s)
		}
	}
	return found
}

// Both schedules are EventBridge Scheduler schedules (#14 §1): a retry
// policy for an invoke Lambda refused, a dead-letter queue for one that still
// failed, no flexible window (a run at its time), and a name CloudFormation
// generates (two stacks in one account must not collide).
func TestFunctionsRunOnEventBridgeSchedulerSchedules(t *testing.T) {
	tests := []struct {
		function, parameter string
		input               any // nil: no Input, so the envelope's time ends the audit's window
		maxAge              int
	}{
		{"AuditFunction", "AuditSchedule", nil, 600},
		{"OnboardFunction", "SyncSchedule", `{"action": "sync"}`, 900},
	}
	for _, tt := range tests {
		ss := schedulesTargeting(t, tt.function)
		if len(ss) != 1 {
			t.Errorf("%s: %d schedules, want 1", tt.function, len(ss))
			continue
		}
		s := ss[0]
		target := mapOf(s["Target"])
		if !sameJSON(s["ScheduleExpression"], ref(tt.parameter)) {
			t.Errorf("%s: ScheduleExpression %s, want the %s parameter", tt.function, jsonText(s["ScheduleExpression"]), tt.parameter)
		}
		if !sameJSON(target["Input"], tt.input) {
			t.Errorf("%s: Input %s, want %s", tt.function, jsonText(target["Input"]), jsonText(tt.input))
		}
		if rp := mapOf(target["RetryPolicy"]); !isNumber(rp["MaximumRetryAttempts"], 2) || !isNumber(rp["MaximumEventAgeInSeconds"], tt.maxAge) {
			t.Errorf("%s: RetryPolicy %s, want 2 retries within %d s", tt.function, jsonText(rp), tt.maxAge)
		}
		if !sameJSON(mapOf(target["DeadLetterConfig"])["Arn"], getAtt("ScheduleDeadLetterQueue", "Arn")) {
			t.Errorf("%s: DeadLetterConfig %s, want ScheduleDeadLetterQueue", tt.function, jsonText(target["DeadLetterConfig"]))
		}
		if mapOf(s["FlexibleTimeWindow"])["Mode"] != "OFF" {
			t.Errorf("%s: FlexibleTimeWindow %s, want OFF", tt.function, jsonText(s["FlexibleTimeWindow"]))
		}
		if name, ok := s["Name"]; ok {
			t.Errorf("%s: schedule Name %s, want none (a second stack in the account would collide)", tt.function, jsonText(name))
		}
		if st, ok := s["State"]; ok && st != "ENABLED" {
			t.Errorf("%s: State %v, want ENABLED", tt.function, st)
		}
		// The schedule's role may invoke the function and write to the dead-letter queue.
		role := props(resource(t, textOf(asList(mapOf(target["RoleArn"])["Fn::GetAtt"])[0])))
		grants := map[string]any{}
		for _, p := range asList(role["Policies"]) {
			for _, st := range asList(mapOf(mapOf(p)["PolicyDocument"])["Statement"]) {
				for _, a := range asList(mapOf(st)["Action"]) {
					grants[textOf(a)] = mapOf(st)["Resource"]
				}
			}
		}
		if !sameJSON(grants["lambda:InvokeFunction"], getAtt(tt.function, "Arn")) || !sameJSON(grants["sqs:SendMessage"], getAtt("ScheduleDeadLetterQueue", "Arn")) || len(grants) != 2 {
			t.Errorf("%s: schedule role grants %s", tt.function, jsonText(grants))
		}
	}
	if rules, _ := rulesTargeting(t, "AuditFunction"); len(rules) != 0 {
		t.Errorf("%d EventBridge rules invoke AuditFunction, want none (the schedule is EventBridge Scheduler's)", len(rules))
	}
	queue := props(resource(t, "ScheduleDeadLetterQueue"))
	if !isNumber(queue["MessageRetentionPeriod"], fourteenDays) {
		t.Errorf("ScheduleDeadLetterQueue keeps messages %v s, want 14 days", queue["MessageRetentionPeriod"])
	}
}

func TestOnboardRunsOnItsEventsFromTheSourceParameterOfThisAccountOnly(t *testing.T) {
	rules, targets := rulesTargeting(t, "OnboardFunction")
	if len(rules) != 1 {
		t.Fatalf("%d rules invoke OnboardFunction, want 1 (the events; the sync is a Scheduler schedule)", len(rules))
	}
	r, target := rules[0], targets[0]
	pattern := mapOf(r["EventPattern"])
	if !sameJSON(pattern["source"], []any{ref("OnboardingEventSource")}) {
		t.Errorf("EventPattern source = %s, want only the OnboardingEventSource parameter (not any sender on the bus)", jsonText(pattern["source"]))
	}
	// #14 §4: a principal of another account allowed to put events on this bus
	// must not add addresses.
	if !sameJSON(pattern["account"], []any{ref("AWS::AccountId")}) {
		t.Errorf("EventPattern account = %s, want only this account", jsonText(pattern["account"]))
	}
	if want := []any{"UserOnboarded", "UserOffboarded", "UserAllowlistChanged"}; !sameJSON(pattern["detail-type"], want) {
		t.Errorf("EventPattern detail-type = %s, want %s", jsonText(pattern["detail-type"]), jsonText(want))
	}
	if bus, ok := r["EventBusName"]; ok && bus != "default" {
		t.Errorf("EventBusName = %s, want the default bus", jsonText(bus))
	}
	if rp := mapOf(target["RetryPolicy"]); !hasKey(rp, "MaximumRetryAttempts") || !hasKey(rp, "MaximumEventAgeInSeconds") {
		t.Errorf("target RetryPolicy = %s, want MaximumRetryAttempts and MaximumEventAgeInSeconds", jsonText(target["RetryPolicy"]))
	}
}

func TestAlertSubscriptionsExistOnlyWhenTheirParameterIsSet(t *testing.T) {
	tests := []struct{ id, condition, protocol, parameter string }{
		{"AlertEmailSubscription", "HasAlertEmail", "email", "AlertEmail"},
		{"AlertSmsSubscription", "HasAlertPhoneNumber", "sms", "AlertPhoneNumber"},
	}
	conditions := mapOf(cfn(t)["Conditions"])
	for _, tt := range tests {
		r := resource(t, tt.id)
		p := props(r)
		if r["Condition"] != tt.condition {
			t.Errorf("%s Condition = %v, want %s", tt.id, r["Condition"], tt.condition)
		}
		if p["Protocol"] != tt.protocol || !sameJSON(p["Endpoint"], ref(tt.parameter)) || !sameJSON(p["TopicArn"], topicArn) {
			t.Errorf("%s = %s, want protocol %s to the %s parameter on AlertTopic", tt.id, jsonText(p), tt.protocol, tt.parameter)
		}
		want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref(tt.parameter), ""}}}}
		if !sameJSON(conditions[tt.condition], want) {
			t.Errorf("condition %s = %s, want %s", tt.condition, jsonText(conditions[tt.condition]), jsonText(want))
		}
	}
}

// The SMS subscription receives only the severities of AlertSmsSeverities
// (default high and critical): evaluated here against the message attribute
// "severity" each kind of run sends.
func TestSmsSubscriptionFiltersBySeverity(t *testing.T) {
	p := props(resource(t, "AlertSmsSubscription"))
	if p["FilterPolicyScope"] != "MessageAttributes" {
		t.Errorf("FilterPolicyScope = %v, want MessageAttributes", p["FilterPolicyScope"])
	}
	want := map[string]any{"severity": ref("AlertSmsSeverities")}
	if !sameJSON(p["FilterPolicy"], want) {
		t.Fatalf("FilterPolicy = %s, want %s", jsonText(p["FilterPolicy"]), jsonText(want))
	}
	param := mapOf(mapOf(cfn(t)["Parameters"])["AlertSmsSeverities"])
	if param["Type"] != "CommaDelimitedList" || param["Default"] != "high,critical" {
		t.Fatalf("AlertSmsSeverities = %s, want a CommaDelimitedList defaulting to high,critical", jsonText(param))
	}
	allowed := strings.Split(param["Default"].(string), ",")
	delivered := func(severity string) bool { // SNS: an exact-string list matches any of its values
		for _, a := range allowed {
			if a == severity {
				return true
			}
		}
		return false
	}
	for sev, want := range map[string]bool{"medium": false, "high": true, "critical": true} {
		if got := delivered(sev); got != want {
			t.Errorf("a message with severity %q reaches SMS: %v, want %v", sev, got, want)
		}
	}
}

// cfn-lint accepts any string here; DynamoDB does not.
func TestTableBillingModeIsExactlyPayPerRequest(t *testing.T) {
	if got := props(resource(t, "AllowlistTable"))["BillingMode"]; got != "PAY_PER_REQUEST" {
		t.Fatalf("AllowlistTable BillingMode = %s, want PAY_PER_REQUEST", jsonText(got))
	}
}

// cfn-lint does not look inside a parameter's default schedule expression.
func TestDefaultAuditScheduleIsAValidExpression(t *testing.T) {
	def := mapOf(mapOf(cfn(t)["Parameters"])["AuditSchedule"])["Default"]
	if s, ok := def.(string); !ok || !config.ValidSchedule(s) {
		t.Fatalf("AuditSchedule default %s is not a valid rate() or cron() expression", jsonText(def))
	}
}

// The schedule bounds the time from a login to its session ending; the
// README states the monthly cost of this rate.
func TestDefaultAuditScheduleIsEveryFiveMinutes(t *testing.T) {
	if def := mapOf(mapOf(cfn(t)["Parameters"])["AuditSchedule"])["Default"]; def != "rate(5 minutes)" {
		t.Errorf("AuditSchedule default %s; want rate(5 minutes), the rate the README prices", jsonText(def))
	}
}

// The enforcement parameters offer exactly what the configuration accepts,
// and default to report mode with the breaker at 10 and no escalation.
func TestEnforcementParametersMatchTheConfiguration(t *testing.T) {
	ps := parameters(t)
	mode := mapOf(ps["EnforcementMode"])
	var allowed []string
	for _, v := range asList(mode["AllowedValues"]) {
		allowed = append(allowed, textOf(v))
	}
	var modes []string
	for _, m := range enforce.Modes {
		modes = append(modes, string(m))
	}
	if !slices.Equal(allowed, modes) || mode["Default"] != "report" {
		t.Errorf("EnforcementMode AllowedValues %v, Default %v; want %v, report", allowed, mode["Default"], modes)
	}
	env := map[string]string{"ENFORCEMENT_MODE": "report",
		"DOCSPACE_API_HOST": "https://p.example.com", "DOCSPACE_API_KEY_SECRET_ID": "s", "ALLOWLIST_TABLE": "t", "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"}
	for _, p := range []struct{ param, variable, want string }{
		{"EnforceUnknownUsers", "ENFORCE_UNKNOWN_USERS", "false"},
		{"UnknownUserPolicy", "UNKNOWN_USER_POLICY", "digest"},
		{"AlertMode", "ALERT_MODE", "grouped"},
		{"EnforcementMaxPerRun", "ENFORCEMENT_MAX_PER_RUN", "10"},
		{"EnforcementDisableAfter", "ENFORCEMENT_DISABLE_AFTER", "0"},
	} {
		got := fmt.Sprint(mapOf(ps[p.param])["Default"])
		if got != p.want {
			t.Errorf("%s default %s; want %s", p.param, got, p.want)
		}
		env[p.variable] = got
	}
	c, err := config.Load(func(k string) string { return env[k] }, config.Audit)
	if err != nil {
		t.Fatalf("the template's defaults do not load: %v", err)
	}
	if c.Audit.Enforcement != (config.Enforcement{Mode: "report", MaxPerRun: 10}) {
		t.Errorf("defaults load as %+v", c.Audit.Enforcement)
	}
	// #21 §1, §6: the digest is the unknown-user default, grouped the mode,
	// and every value the template allows loads.
	if c.Audit.UnknownUserPolicy != config.UnknownDigest || !c.Audit.Behaviour.Grouped() {
		t.Errorf("defaults load as policy %q, mode %q", c.Audit.UnknownUserPolicy, c.Audit.Behaviour.AlertMode)
	}
	for _, p := range []struct {
		param, variable string
		want            []string
	}{
		{"UnknownUserPolicy", "UNKNOWN_USER_POLICY", []string{config.UnknownDigest, config.UnknownAlert, config.UnknownIgnore}},
		{"AlertMode", "ALERT_MODE", []string{config.AlertGrouped, config.AlertEvery}},
	} {
		var allowed []string
		for _, v := range asList(mapOf(ps[p.param])["AllowedValues"]) {
			allowed = append(allowed, textOf(v))
		}
		if !slices.Equal(allowed, p.want) {
			t.Errorf("%s AllowedValues %v, want %v", p.param, allowed, p.want)
		}
		for _, v := range allowed {
			e := maps.Clone(env)
			e[p.variable] = v
			if _, err := config.Load(func(k string) string { return e[k] }, config.Audit); err != nil {
				t.Errorf("%s=%s does not load: %v", p.param, v, err)
			}
		}
	}
}

// ownLogsOnly is the one Deny a function's role carries: SAM attaches
// AWSLambdaBasicExecutionRole (logs:CreateLogGroup, CreateLogStream and
// PutLogEvents on "*") to the roles it makes, so without it a compromised
// function could write lines into any log group of the account: the other
// function's (forging its EMF metrics, e.g. Syncs to silence
// SyncHeartbeatAlarm, or Rejected to cancel its Errors) or another
// application's. An explicit Deny overrides the managed Allow (IAM policy
// evaluation logic); NotResource names the function's own log group, as
// the group (CreateLogStream) and with its streams (GetAtt Arn ends in ":*").
func ownLogsOnly(logGroup string) map[string]any {
	return map[string]any{
		"Sid": "LogsOnlyToItsOwnLogGroup", "Effect": "Deny",
		"Action": []any{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
		"NotResource": []any{
			map[string]any{"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${" + logGroup + "}"},
			getAtt(logGroup, "Arn"),
		},
	}
}

// isOwnLogsOnly reports whether st is ownLogsOnly of some log group (the
// least-privilege test lists the Allows; this Deny is checked on its own).
func isOwnLogsOnly(st map[string]any) bool {
	return st["Sid"] == "LogsOnlyToItsOwnLogGroup"
}

// Least privilege against a compromised function (#14 §4) covers the logs:
// each role may write only into its own function's log group.
func TestEachFunctionWritesLogsOnlyIntoItsOwnLogGroup(t *testing.T) {
	for fn, group := range map[string]string{"OnboardFunction": "OnboardLogGroup", "AuditFunction": "AuditLogGroup"} {
		p := props(resource(t, fn))
		if !sameJSON(mapOf(p["LoggingConfig"])["LogGroup"], ref(group)) {
			t.Errorf("%s logs into %s, want %s", fn, jsonText(mapOf(p["LoggingConfig"])["LogGroup"]), group)
		}
		roleArn, _ := mapOf(p["Role"])["Fn::GetAtt"].([]any)
		if len(roleArn) != 2 {
			t.Fatalf("%s Role is not a GetAtt of a role in the template", fn)
		}
		found := 0
		for _, pol := range asList(props(resource(t, textOf(roleArn[0])))["Policies"]) {
			for _, st := range asList(mapOf(mapOf(pol)["PolicyDocument"])["Statement"]) {
				if st := mapOf(st); st["Effect"] == "Deny" {
					found++
					if !sameJSON(st, ownLogsOnly(group)) {
						t.Errorf("%s: Deny %s, want %s", fn, jsonText(st), jsonText(ownLogsOnly(group)))
					}
				}
			}
		}
		if found != 1 {
			t.Errorf("%s: %d Deny statements, want the one that keeps its logs in %s", fn, found, group)
		}
	}
}

// Confused deputy (attack review of the deploy): EventBridge Scheduler may
// assume each schedule's role only for a schedule of this account, in the
// group the schedules are in (the default group). "Confused deputy
// prevention" in the EventBridge Scheduler user guide
// (https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html)
// recommends aws:SourceAccount and aws:SourceArn on the schedule group in
// the execution role's trust policy; SAM's generated role has neither, so
// the template declares the roles. Their permissions stay as narrow as
// SAM's: TestFunctionsRunOnEventBridgeSchedulerSchedules.
func TestScheduleRolesTrustOnlySchedulesOfThisAccount(t *testing.T) {
	wantCondition := map[string]any{
		"StringEquals": map[string]any{"aws:SourceAccount": ref("AWS::AccountId")},
		"ArnEquals": map[string]any{"aws:SourceArn": map[string]any{
			"Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule-group/default"}},
	}
	for _, function := range []string{"AuditFunction", "OnboardFunction"} {
		ss := schedulesTargeting(t, function)
		if len(ss) != 1 {
			t.Fatalf("%s: %d schedules, want 1", function, len(ss))
		}
		if g, ok := ss[0]["GroupName"]; ok && g != "default" {
			t.Errorf("%s: schedule group %s, want the default group the trust policy names", function, jsonText(g))
		}
		roleArn := asList(mapOf(mapOf(ss[0]["Target"])["RoleArn"])["Fn::GetAtt"])
		if len(roleArn) != 2 {
			t.Fatalf("%s: schedule RoleArn %s is not a GetAtt of a role in the template", function, jsonText(mapOf(ss[0]["Target"])["RoleArn"]))
		}
		doc := mapOf(props(resource(t, textOf(roleArn[0])))["AssumeRolePolicyDocument"])
		sts := asList(doc["Statement"])
		if len(sts) != 1 {
			t.Fatalf("%s: trust policy %s, want one statement", function, jsonText(doc))
		}
		st := mapOf(sts[0])
		if st["Effect"] != "Allow" || !sameJSON(asList(mapOf(st["Principal"])["Service"]), []any{"scheduler.amazonaws.com"}) ||
			!sameJSON(asList(st["Action"]), []any{"sts:AssumeRole"}) {
			t.Errorf("%s: trust statement %s, want scheduler.amazonaws.com may sts:AssumeRole", function, jsonText(st))
		}
		if !sameJSON(st["Condition"], wantCondition) {
			t.Errorf("%s: trust condition %s, want %s (confused deputy)", function, jsonText(st["Condition"]), jsonText(wantCondition))
		}
	}
}
