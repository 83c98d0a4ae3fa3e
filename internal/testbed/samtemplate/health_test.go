package samtemplate

import (
	"slices"
	"strings"
	"testing"

	"ipguard/internal/wiring"
)

// serviceMetrics are the metrics AWS services emit that alarms may watch,
// with the dimension that must name a resource of this template.
var serviceMetrics = map[string]struct {
	names     []string
	dimension string
}{
	"AWS/Lambda": {[]string{"Throttles", "Errors", "Invocations"}, "FunctionName"},
	"AWS/SQS":    {[]string{"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}, "QueueName"},
}

var opsTopic = map[string]any{"Fn::If": []any{"HasOpsTopic", ref("OpsTopicArn"), ref("AlertTopic")}}

// emitted reports whether the function's EMF line carries metric name.
func emitted(function, name string) bool {
	list := map[string][]string{"AuditFunction": wiring.AuditMetrics, "OnboardFunction": wiring.OnboardMetrics}[function]
	if slices.Contains(list, name) {
		return true
	}
	return strings.HasPrefix(name, wiring.PrefixFailures) && slices.Contains(wiring.ErrorTypes, strings.TrimPrefix(name, wiring.PrefixFailures))
}

func TestEveryAlarmWatchesAMetricTheCodeEmits(t *testing.T) {
	alarms := resourcesOfType(t, "AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("no alarms in the template")
	}
	for id, a := range alarms {
		name := textOf(a["MetricName"])
		dims := asList(a["Dimensions"])
		if len(dims) != 1 {
			t.Errorf("%s: dimensions %s, want exactly one (the metric's whole dimension set)", id, jsonText(a["Dimensions"]))
			continue
		}
		dim := mapOf(dims[0])
		switch ns := a["Namespace"]; {
		case sameJSON(ns, ref("MetricsNamespace")):
			fn, _ := mapOf(dim["Value"])["Ref"].(string)
			if dim["Name"] != "FunctionName" || fn == "" {
				t.Errorf("%s: dimension %s, want FunctionName = Ref of a function (the EMF line's only dimension)", id, jsonText(dim))
				continue
			}
			if !emitted(fn, name) {
				t.Errorf("%s watches %s of %s, which the code does not emit (see internal/wiring/metrics.go)", id, name, fn)
			}
		case serviceMetrics[textOf(ns)].dimension != "":
			sm := serviceMetrics[textOf(ns)]
			if !slices.Contains(sm.names, name) || dim["Name"] != sm.dimension {
				t.Errorf("%s: %s %s by %v is not a metric %s emits for a resource", id, textOf(ns), name, dim["Name"], textOf(ns))
			}
			target := textOf(mapOf(dim["Value"])["Ref"])
			if att, ok := mapOf(dim["Value"])["Fn::GetAtt"].([]any); ok {
				target = textOf(att[0])
			}
			if _, ok := cfn(t)["Resources"].(map[string]any)[target]; !ok {
				t.Errorf("%s: dimension %s names no resource of this template", id, jsonText(dim))
			}
		default:
			t.Errorf("%s: namespace %s is neither MetricsNamespace nor a known AWS service namespace", id, jsonText(ns))
		}
		if acts := asList(a["AlarmActions"]); len(acts) != 1 || !sameJSON(acts[0], opsTopic) {
			t.Errorf("%s: AlarmActions %s, want the ops topic (OpsTopicArn or the alert topic)", id, jsonText(a["AlarmActions"]))
		}
	}
}

func TestTheRequiredAlarmsExist(t *testing.T) {
	type want struct {
		namespace, metric string
		dimension         any
		missing           string
		periods           int
	}
	wants := map[string]want{
		"audit errors in two consecutive periods": {"", wiring.MetricFailures, ref("AuditFunction"), "notBreaching", 2},
		"heartbeat: lag, missing data breaching":  {"", wiring.MetricLagSeconds, ref("AuditFunction"), "breaching", 2},
		"onboarding failures":                     {"", wiring.MetricFailures, ref("OnboardFunction"), "notBreaching", 1},
		"on-failure queue not empty":              {"AWS/SQS", "ApproximateNumberOfMessagesVisible", getAtt("OnboardFailureQueue", "QueueName"), "notBreaching", 1},
		"rule dead-letter queue not empty":        {"AWS/SQS", "ApproximateNumberOfMessagesVisible", getAtt("OnboardRuleDeadLetterQueue", "QueueName"), "notBreaching", 1},
		"onboarding throttled":                    {"AWS/Lambda", "Throttles", ref("OnboardFunction"), "notBreaching", 1},
		"audit throttled":                         {"AWS/Lambda", "Throttles", ref("AuditFunction"), "notBreaching", 1},
	}
	alarms := resourcesOfType(t, "AWS::CloudWatch::Alarm")
	for what, w := range wants {
		found := false
		for _, a := range alarms {
			ns := any(w.namespace)
			if w.namespace == "" {
				ns = ref("MetricsNamespace")
			}
			dims := asList(a["Dimensions"])
			if sameJSON(a["Namespace"], ns) && a["MetricName"] == w.metric && len(dims) == 1 && sameJSON(mapOf(dims[0])["Value"], w.dimension) {
				found = true
				if a["TreatMissingData"] != w.missing || !isNumber(a["EvaluationPeriods"], w.periods) {
					t.Errorf("%s: TreatMissingData %v, EvaluationPeriods %v; want %s, %d", what, a["TreatMissingData"], a["EvaluationPeriods"], w.missing, w.periods)
				}
			}
		}
		if !found {
			t.Errorf("no alarm for %s", what)
		}
	}
}

// fourteenDays is the retention of both queues that keep failed onboardings.
const fourteenDays = 14 * 24 * 3600

func TestNothingLostOnFailure(t *testing.T) {
	queue := func(id string) {
		t.Helper()
		r := resource(t, id)
		if r["Type"] != "AWS::SQS::Queue" || !isNumber(props(r)["MessageRetentionPeriod"], fourteenDays) {
			t.Errorf("%s: %s, want an SQS queue keeping messages 14 days", id, jsonText(r))
		}
	}
	var configs []map[string]any
	for _, c := range resourcesOfType(t, "AWS::Lambda::EventInvokeConfig") {
		if sameJSON(c["FunctionName"], ref("OnboardFunction")) {
			configs = append(configs, c)
		}
	}
	if len(configs) != 1 {
		t.Fatalf("%d EventInvokeConfigs for OnboardFunction, want 1", len(configs))
	}
	dest := mapOf(mapOf(mapOf(configs[0]["DestinationConfig"])["OnFailure"])["Destination"])
	if !sameJSON(dest, getAtt("OnboardFailureQueue", "Arn")) {
		t.Errorf("on-failure destination = %s, want OnboardFailureQueue", jsonText(dest))
	}
	queue("OnboardFailureQueue")

	_, all := rulesTargeting(t, "OnboardFunction")
	var targets []map[string]any
	for _, tg := range all {
		// The sync schedule carries no data ({"action": "sync"}): a lost
		// tick is made up by the next one, so only the event rule needs a DLQ.
		if _, schedule := tg["Input"]; !schedule {
			targets = append(targets, tg)
		}
	}
	if len(targets) != 1 || !sameJSON(mapOf(targets[0]["DeadLetterConfig"])["Arn"], getAtt("OnboardRuleDeadLetterQueue", "Arn")) {
		t.Fatalf("rule target DeadLetterConfig = %s, want OnboardRuleDeadLetterQueue", jsonText(targets))
	}
	queue("OnboardRuleDeadLetterQueue")
	var allowed bool
	for _, p := range resourcesOfType(t, "AWS::SQS::QueuePolicy") {
		if sameJSON(asList(p["Queues"]), []any{ref("OnboardRuleDeadLetterQueue")}) {
			for _, st := range asList(mapOf(p["PolicyDocument"])["Statement"]) {
				st := mapOf(st)
				cond := mapOf(mapOf(st["Condition"])["ArnEquals"])
				allowed = allowed || mapOf(st["Principal"])["Service"] == "events.amazonaws.com" && st["Action"] == "sqs:SendMessage" &&
					sameJSON(cond["aws:SourceArn"], getAtt("OnboardFunctionUserOnboarded", "Arn"))
			}
		}
	}
	if !allowed {
		t.Error("no queue policy lets the onboarding rule (and only it) send to OnboardRuleDeadLetterQueue")
	}
}

func TestLogsAreJSONWithARetention(t *testing.T) {
	for fn, group := range map[string]string{"OnboardFunction": "OnboardLogGroup", "AuditFunction": "AuditLogGroup"} {
		lc := mapOf(props(resource(t, fn))["LoggingConfig"])
		if lc["LogFormat"] != "JSON" || !sameJSON(lc["LogGroup"], ref(group)) ||
			!sameJSON(lc["ApplicationLogLevel"], map[string]any{"Fn::FindInMap": []any{"LogLevels", ref("LogLevel"), "Application"}}) {
			t.Errorf("%s LoggingConfig = %s", fn, jsonText(lc))
		}
		g := resource(t, group)
		if g["Type"] != "AWS::Logs::LogGroup" || !sameJSON(props(g)["RetentionInDays"], ref("LogRetentionDays")) {
			t.Errorf("%s = %s, want a log group kept LogRetentionDays", group, jsonText(g))
		}
	}
	if def := mapOf(parameters(t)["LogRetentionDays"])["Default"]; !isNumber(def, 90) && def != "90" {
		t.Errorf("LogRetentionDays default = %v, want 90", def)
	}
	levels := mapOf(mapOf(cfn(t)["Mappings"])["LogLevels"])
	for _, l := range asList(mapOf(parameters(t)["LogLevel"])["AllowedValues"]) {
		if app := mapOf(levels[textOf(l)])["Application"]; app != strings.ToUpper(textOf(l)) {
			t.Errorf("LogLevels mapping for %v = %v", l, app)
		}
	}
}

// CloudFormation refuses these values before anything is deployed; the
// functions check the rest at start (internal/config).
func TestParameterPatternsRefuseBadValues(t *testing.T) {
	tests := []struct {
		param, value string
		ok           bool
	}{
		{"AuditSchedule", "rate(15 minutes)", true},
		{"AuditSchedule", "cron(0/15 * * * ? *)", true},
		{"AuditSchedule", "every 15 minutes", false},
		{"AuditSchedule", "rate(15 mins)", false},
		{"SyncSchedule", "rate(15 minutes)", true},
		{"SyncSchedule", "cron(0/15 * * * ? *)", true},
		{"SyncSchedule", "every 15 minutes", false},
		{"SyncSchedule", "rate(15 mins)", false},
		{"AuditOverlap", "5m", true},
		{"AuditOverlap", "1h30m", true},
		{"AuditOverlap", "5 minutes", false},
		{"AuditLookback", "15", false},
		{"AlertRetention", "168h", true},
		{"AlertRetention", "7d", false},
		{"PortalBreakglassIps", "", true},
		{"PortalBreakglassIps", "203.0.113.7, 2001:db8::1", true},
		{"PortalBreakglassIps", "10.0.0.0/8", false},
		{"PortalBreakglassIps", "office", false},
		{"MetricsNamespace", "DocSpaceIPGuard", true},
		{"MetricsNamespace", "ip guard", false},
		{"OnboardingEventSource", "hr.onboarding", true},
		{"OnboardingEventSource", "", false},
		{"OpsTopicArn", "", true},
		{"OpsTopicArn", "arn:aws:sns:us-east-1:123456789012:ops", true},
		{"OpsTopicArn", "ops", false},
		{"AuditApiKeySecretArn", "", true},
		{"AuditApiKeySecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:docspace-read-AbCdEf", true},
		{"AuditApiKeySecretArn", "docspace-read", false},
		{"LogRetentionDays", "90", true},
		{"LogRetentionDays", "91", false},
	}
	ps := parameters(t)
	for _, tt := range tests {
		why := checkParameter(mapOf(ps[tt.param]), tt.value)
		if (why == "") != tt.ok {
			t.Errorf("%s = %q: accepted %v, want %v (%s)", tt.param, tt.value, why == "", tt.ok, why)
		}
	}
}
