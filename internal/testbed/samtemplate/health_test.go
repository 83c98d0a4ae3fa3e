package samtemplate

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
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
	"AWS/Lambda": {[]string{"Errors"}, "FunctionName"},
	"AWS/SQS":    {[]string{"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}, "QueueName"},
	"AWS/SNS":    {[]string{"NumberOfNotificationsFailed"}, "TopicName"},
}

// opsActions are where every alarm goes, when it fires and when it clears:
// the stack's own operations topic, and OpsTopicArn when set; never the
// alert topic (#14 §3).
var opsActions = []any{ref("OpsTopic"), map[string]any{"Fn::If": []any{"HasOpsTopic", ref("OpsTopicArn"), ref("AWS::NoValue")}}}

// emitted reports whether the function's line declares name as a
// CloudWatch metric (wiring.Declared).
func emitted(function, name string) bool {
	d, ok := wiring.Declared[name]
	return ok && slices.Contains(d.Functions, function)
}

// watched is one metric an alarm reads.
type watched struct {
	namespace any
	name      string
	dims      []any
}

// metricsOf returns the metrics an alarm reads: its own, or those of its
// metric-math query.
func metricsOf(a map[string]any) []watched {
	if _, ok := a["Metrics"]; !ok {
		return []watched{{a["Namespace"], textOf(a["MetricName"]), asList(a["Dimensions"])}}
	}
	var ws []watched
	for _, q := range asList(a["Metrics"]) {
		if m := mapOf(mapOf(mapOf(q)["MetricStat"])["Metric"]); m != nil {
			ws = append(ws, watched{m["Namespace"], textOf(m["MetricName"]), asList(m["Dimensions"])})
		}
	}
	return ws
}

func TestEveryAlarmWatchesAMetricTheCodeEmits(t *testing.T) {
	alarms := resourcesOfType(t, "AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("no alarms in the template")
	}
	for id, a := range alarms {
		for _, w := range metricsOf(a) {
			if len(w.dims) != 1 {
				t.Errorf("%s: dimensions %s, want exactly one (the metric's whole dimension set)", id, jsonText(w.dims))
				continue
			}
			dim := mapOf(w.dims[0])
			switch ns := w.namespace; {
			case sameJSON(ns, ref("MetricsNamespace")):
				fn, _ := mapOf(dim["Value"])["Ref"].(string)
				if dim["Name"] != "FunctionName" || fn == "" {
					t.Errorf("%s: dimension %s, want FunctionName = Ref of a function (the EMF line's only dimension)", id, jsonText(dim))
					continue
				}
				if !emitted(fn, w.name) {
					t.Errorf("%s watches %s of %s, which the code does not declare as a metric (wiring.Declared)", id, w.name, fn)
				}
			case serviceMetrics[textOf(ns)].dimension != "":
				sm := serviceMetrics[textOf(ns)]
				if !slices.Contains(sm.names, w.name) || dim["Name"] != sm.dimension {
					t.Errorf("%s: %s %s by %v is not a metric %s emits for a resource", id, textOf(ns), w.name, dim["Name"], textOf(ns))
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
		}
		if !sameJSON(a["AlarmActions"], opsActions) || !sameJSON(a["OKActions"], opsActions) {
			t.Errorf("%s: AlarmActions %s, OKActions %s; want both %s", id, jsonText(a["AlarmActions"]), jsonText(a["OKActions"]), jsonText(opsActions))
		}
	}
}

// onCron is the TreatMissingData of a heartbeat: breaching on a rate()
// schedule, not breaching on a cron() one, whose quiet hours send nothing.
func onCron(condition string) any {
	return map[string]any{"Fn::If": []any{condition, "notBreaching", "breaching"}}
}

func TestTheRequiredAlarmsExist(t *testing.T) {
	type want struct {
		id                string
		namespace, metric string // "" namespace: MetricsNamespace
		dimension         any
		stat, comparison  string
		threshold         any
		missing           any
		periods           int
	}
	wants := []want{
		{"AuditHeartbeatAlarm", "", wiring.MetricLagSeconds, ref("AuditFunction"), "Maximum", "GreaterThanThreshold", ref("HeartbeatMaxLagSeconds"), onCron("AuditOnCron"), 2},
		{"AuditRunsMissingAlarm", "", wiring.MetricLagSeconds, ref("AuditFunction"), "SampleCount", "LessThanThreshold", 1, "breaching", 2},
		{"SyncHeartbeatAlarm", "", wiring.MetricSyncs, ref("OnboardFunction"), "Sum", "LessThanThreshold", 1, "breaching", 2},
		{"AuditCoverageLostAlarm", "", wiring.MetricCoverageLost, ref("AuditFunction"), "Sum", "GreaterThanOrEqualToThreshold", 1, "notBreaching", 1},
		{"NoAlertDestinationAlarm", "", wiring.MetricConfirmedSubscribers, ref("AuditFunction"), "Minimum", "LessThanThreshold", 1, "notBreaching", 1},
		{"AuditAlertsUndeliveredAlarm", "", wiring.MetricAlertsUndelivered, ref("AuditFunction"), "Sum", "GreaterThanOrEqualToThreshold", 1, "notBreaching", 2},
		{"AlertDeliveryFailedAlarm", "AWS/SNS", "NumberOfNotificationsFailed", getAtt("AlertTopic", "TopicName"), "Sum", "GreaterThanOrEqualToThreshold", 1, "notBreaching", 1},
		{"OnboardFailureQueueAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible", getAtt("OnboardFailureQueue", "QueueName"), "Maximum", "GreaterThanOrEqualToThreshold", 1, "notBreaching", 1},
		{"OnboardRuleDeadLetterQueueAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible", getAtt("OnboardRuleDeadLetterQueue", "QueueName"), "Maximum", "GreaterThanOrEqualToThreshold", 1, "notBreaching", 1},
	}
	for _, w := range wants {
		a := props(resource(t, w.id))
		ns := any(w.namespace)
		if w.namespace == "" {
			ns = ref("MetricsNamespace")
		}
		dims := asList(a["Dimensions"])
		if !sameJSON(a["Namespace"], ns) || a["MetricName"] != w.metric || len(dims) != 1 || !sameJSON(mapOf(dims[0])["Value"], w.dimension) {
			t.Errorf("%s watches %s %v %s, want %s %s of %s", w.id, jsonText(a["Namespace"]), a["MetricName"], jsonText(dims), jsonText(ns), w.metric, jsonText(w.dimension))
		}
		threshold := w.threshold
		if n, ok := threshold.(int); ok {
			threshold = float64(n)
		}
		if a["Statistic"] != w.stat || a["ComparisonOperator"] != w.comparison || !sameJSON(a["Threshold"], threshold) ||
			!sameJSON(a["TreatMissingData"], w.missing) || !isNumber(a["EvaluationPeriods"], w.periods) {
			t.Errorf("%s: %v %v %s, missing data %s, %v periods; want %s %s %s, %s, %d",
				w.id, a["Statistic"], a["ComparisonOperator"], jsonText(a["Threshold"]), jsonText(a["TreatMissingData"]), a["EvaluationPeriods"],
				w.stat, w.comparison, jsonText(threshold), jsonText(w.missing), w.periods)
		}
	}
}

// A crash is never a success (#14 §2) and invalid input never pages (§3):
// each function's errors alarm reads AWS/Lambda Errors, which counts returned
// errors, recovered panics, timeouts and out-of-memory kills alike (the last
// two write no metrics line), minus our Rejected of the same invocations.
func TestErrorsAlarmsCountEveryFailureButInvalidInput(t *testing.T) {
	for _, tt := range []struct {
		id, function string
		period       any
		periods      any
	}{
		{"AuditErrorsAlarm", "AuditFunction", ref("AlarmPeriodSeconds"), 2.0}, // the next run covers one failed run
		// Fires within 5 minutes; looks back a sync interval (TestFailureAlarmsStayInAlarmWhileEveryRunFails).
		{"OnboardErrorsAlarm", "OnboardFunction", 300.0, map[string]any{"Fn::FindInMap": []any{"SyncAlarmWindow", ref("SyncHeartbeatPeriodSeconds"), "Periods"}}},
	} {
		a := props(resource(t, tt.id))
		queries := map[string]map[string]any{}
		var expression, returned string
		for _, q := range asList(a["Metrics"]) {
			q := mapOf(q)
			if e, ok := q["Expression"]; ok {
				expression = textOf(e)
			}
			if q["ReturnData"] == true {
				returned = textOf(q["Id"])
			}
			if st := mapOf(q["MetricStat"]); st != nil {
				queries[textOf(q["Id"])] = st
			}
		}
		errs, rejected := queries["errors"], queries["rejected"]
		dim := []any{map[string]any{"Name": "FunctionName", "Value": ref(tt.function)}}
		if m := mapOf(errs["Metric"]); m["Namespace"] != "AWS/Lambda" || m["MetricName"] != "Errors" || !sameJSON(m["Dimensions"], dim) || errs["Stat"] != "Sum" || !sameJSON(errs["Period"], tt.period) {
			t.Errorf("%s: errors = %s, want the Sum of AWS/Lambda Errors of %s per %s", tt.id, jsonText(errs), tt.function, jsonText(tt.period))
		}
		if m := mapOf(rejected["Metric"]); !sameJSON(m["Namespace"], ref("MetricsNamespace")) || m["MetricName"] != wiring.MetricRejected || !sameJSON(m["Dimensions"], dim) || rejected["Stat"] != "Sum" || !sameJSON(rejected["Period"], tt.period) {
			t.Errorf("%s: rejected = %s, want the Sum of our Rejected of %s per %s", tt.id, jsonText(rejected), tt.function, jsonText(tt.period))
		}
		if expression != "errors - FILL(rejected, 0)" || returned != "failed" {
			t.Errorf("%s: expression %q returned by %q, want errors - FILL(rejected, 0)", tt.id, expression, returned)
		}
		if !sameJSON(a["Threshold"], 1.0) || a["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || a["TreatMissingData"] != "notBreaching" || !sameJSON(a["EvaluationPeriods"], tt.periods) {
			t.Errorf("%s: %s", tt.id, jsonText(a))
		}
	}
}

// Throttles say nothing a person must act on: a status call during a run, a
// run longer than its schedule, a duplicate tick. What matters, runs missed,
// is measured by the heartbeats; lost onboarding events by the queues.
func TestNoAlarmWatchesThrottles(t *testing.T) {
	for id, a := range resourcesOfType(t, "AWS::CloudWatch::Alarm") {
		for _, w := range metricsOf(a) {
			if w.name == "Throttles" {
				t.Errorf("%s watches Throttles", id)
			}
		}
	}
}

// Alarms reach a person, and not through the thing they watch (#14 §3): the
// operations topic has an e-mail subscription of its own, lets CloudWatch
// alarms of this account publish, and is not under the AWS managed key,
// which CloudWatch cannot use.
func TestOperationsTopicIsSeparateAndReachable(t *testing.T) {
	topic := props(resource(t, "OpsTopic"))
	if _, ok := topic["KmsMasterKeyId"]; ok {
		t.Errorf("OpsTopic KmsMasterKeyId = %s; CloudWatch alarms cannot publish to a topic under alias/aws/sns", jsonText(topic["KmsMasterKeyId"]))
	}
	sub := props(resource(t, "OpsEmailSubscription"))
	if sub["Protocol"] != "email" || !sameJSON(sub["Endpoint"], ref("OpsEmail")) || !sameJSON(sub["TopicArn"], ref("OpsTopic")) {
		t.Errorf("OpsEmailSubscription = %s", jsonText(sub))
	}
	if _, hasDefault := mapOf(parameters(t)["OpsEmail"])["Default"]; hasDefault {
		t.Error("OpsEmail has a default: alarms would reach nobody")
	}
	var cloudwatch, tls bool
	for _, p := range resourcesOfType(t, "AWS::SNS::TopicPolicy") {
		if !sameJSON(asList(p["Topics"]), []any{ref("OpsTopic")}) {
			continue
		}
		for _, st := range asList(mapOf(p["PolicyDocument"])["Statement"]) {
			st := mapOf(st)
			cond := mapOf(st["Condition"])
			cloudwatch = cloudwatch || st["Effect"] == "Allow" && mapOf(st["Principal"])["Service"] == "cloudwatch.amazonaws.com" &&
				st["Action"] == "sns:Publish" && sameJSON(mapOf(cond["StringEquals"])["aws:SourceAccount"], ref("AWS::AccountId"))
			tls = tls || deniesPlainPublish(st, "OpsTopic")
		}
	}
	if !cloudwatch || !tls {
		t.Errorf("OpsTopic policy: lets this account's CloudWatch alarms publish %v, denies publishing without TLS %v; want both", cloudwatch, tls)
	}
}

func deniesPlainPublish(st map[string]any, topic string) bool {
	return st["Effect"] == "Deny" && st["Principal"] == "*" && st["Action"] == "sns:Publish" && sameJSON(st["Resource"], ref(topic)) &&
		sameJSON(st["Condition"], map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}})
}

// The alert topic carries e-mail addresses, IP addresses and places: it is
// encrypted (the AWS managed key unless a customer key is given) and refuses
// publishing without TLS (#14 §4).
func TestAlertTopicIsEncryptedAndRefusesPlainPublishing(t *testing.T) {
	topic := props(resource(t, "AlertTopic"))
	want := map[string]any{"Fn::If": []any{"HasAlertTopicKmsKey", ref("AlertTopicKmsKeyArn"), "alias/aws/sns"}}
	if !sameJSON(topic["KmsMasterKeyId"], want) {
		t.Errorf("AlertTopic KmsMasterKeyId = %s, want %s", jsonText(topic["KmsMasterKeyId"]), jsonText(want))
	}
	var tls bool
	for _, p := range resourcesOfType(t, "AWS::SNS::TopicPolicy") {
		if sameJSON(asList(p["Topics"]), []any{ref("AlertTopic")}) {
			for _, st := range asList(mapOf(p["PolicyDocument"])["Statement"]) {
				tls = tls || deniesPlainPublish(mapOf(st), "AlertTopic")
			}
		}
	}
	if !tls {
		t.Error("no AlertTopic policy denies publishing without TLS")
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

// parameterCase is a value for a template parameter and whether
// CloudFormation must accept it.
type parameterCase struct {
	param, value string
	ok           bool
}

// checkParameterCases holds each parameter's constraints to its cases.
func checkParameterCases(t *testing.T, cases []parameterCase) {
	t.Helper()
	ps := parameters(t)
	for _, tt := range cases {
		why := checkParameter(mapOf(ps[tt.param]), tt.value)
		if (why == "") != tt.ok {
			t.Errorf("%s = %q: accepted %v, want %v (%s)", tt.param, tt.value, why == "", tt.ok, why)
		}
	}
}

// CloudFormation refuses these values before anything is deployed; the
// functions check the rest at start (internal/config).
func TestParameterPatternsRefuseBadValues(t *testing.T) {
	checkParameterCases(t, []parameterCase{
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
		{"OpsTopicArn", "arn:aws:sns:us-east-1:123456789012:ops.fifo", false},
		{"AuditApiKeySecretArn", "", true},
		{"AuditApiKeySecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:docspace-read-AbCdEf", true},
		{"AuditApiKeySecretArn", "docspace-read", false},
		{"LogRetentionDays", "90", true},
		{"LogRetentionDays", "91", false},
	})
}

// WHERE-ISSUES-MEET §7: "no confirmed subscriber" pages only when the alert
// topic is the only destination: not with chat, nor with a findings bus of
// the operator's own (the account's default bus alone proves nothing).
func TestNoDestinationAlarmOnlyWhereTheTopicIsTheOnlyDestination(t *testing.T) {
	alarm := resource(t, "NoAlertDestinationAlarm")
	if alarm["Condition"] != "TopicIsTheOnlyDestination" {
		t.Fatalf("NoAlertDestinationAlarm Condition = %v, want TopicIsTheOnlyDestination", alarm["Condition"])
	}
	want := map[string]any{"Fn::And": []any{
		map[string]any{"Fn::Not": []any{map[string]any{"Condition": "HasChat"}}},
		map[string]any{"Fn::Or": []any{
			map[string]any{"Fn::Equals": []any{ref("FindingsBusName"), ""}},
			map[string]any{"Condition": "FindingsBusIsDefault"}, // by name or ARN: TestTheDefaultBusByItsArnIsNoDestinationEither
		}},
	}}
	if got := mapOf(cfn(t)["Conditions"])["TopicIsTheOnlyDestination"]; !sameJSON(got, want) {
		t.Errorf("TopicIsTheOnlyDestination = %s, want %s", jsonText(got), jsonText(want))
	}
}

// A cron() audit schedule gets a heartbeat that fits it (#14 §1): the lag
// heartbeat takes missing data for quiet hours, so a second alarm, only on
// cron, counts runs over AuditHeartbeatPeriodSeconds (the cron's longest gap)
// with missing data breaching: a schedule that stops invoking is noticed.
func TestACronAuditScheduleHasARunsMissingAlarm(t *testing.T) {
	a := resource(t, "AuditRunsMissingAlarm")
	if a["Condition"] != "AuditOnCron" {
		t.Errorf("AuditRunsMissingAlarm Condition = %v, want AuditOnCron", a["Condition"])
	}
	if p := props(a); !sameJSON(p["Period"], ref("AuditHeartbeatPeriodSeconds")) || p["TreatMissingData"] != "breaching" {
		t.Errorf("AuditRunsMissingAlarm period %s, missing data %v; want AuditHeartbeatPeriodSeconds, breaching", jsonText(p["Period"]), p["TreatMissingData"])
	}
}

// resolveNumber is v (a number, a Ref to a parameter, or a Fn::FindInMap
// keyed by one) as CloudFormation resolves it with the parameter values in
// params (the template's defaults for the rest).
func resolveNumber(t *testing.T, v any, params map[string]string) float64 {
	t.Helper()
	value := func(name string) string {
		if s, ok := params[name]; ok {
			return s
		}
		return fmt.Sprint(mapOf(parameters(t)[name])["Default"])
	}
	switch v := v.(type) {
	case float64:
		return v
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%q is not a number", v)
		}
		return f
	case map[string]any:
		if name, ok := v["Ref"].(string); ok {
			return resolveNumber(t, value(name), params)
		}
		if f, ok := v["Fn::FindInMap"].([]any); ok && len(f) == 3 {
			key := textOf(f[1])
			if name, ok := mapOf(f[1])["Ref"].(string); ok {
				key = value(name)
			}
			return resolveNumber(t, mapOf(mapOf(mapOf(cfn(t)["Mappings"])[textOf(f[0])])[key])[textOf(f[2])], params)
		}
	}
	t.Fatalf("cannot resolve %s to a number", jsonText(v))
	return 0
}

// A health signal never says the opposite of what happened (#14 §3): while
// every scheduled run of a function fails (a refused key, a broken table),
// its failure alarms stay in ALARM. An alarm whose periods are shorter than
// the time between two runs sees clean periods in between (a function that
// is not invoked sends no Errors; missing data is not breaching) and sends
// "OK" after every failed run, then "ALARM" again at the next: an operator
// reads that it cleared while nothing was fixed. CloudWatch's model: an
// alarm in ALARM when DatapointsToAlarm of the last EvaluationPeriods
// periods breach ("Evaluating an alarm" in the CloudWatch user guide).
func TestFailureAlarmsStayInAlarmWhileEveryRunFails(t *testing.T) {
	rate := func(expr string) float64 {
		var n float64
		var unit string
		if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(expr, "rate("), ")"), "%g %s", &n, &unit); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return n * map[string]float64{"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}[unit]
	}
	for _, tt := range []struct {
		alarm, schedule string
		params          map[string]string
	}{
		{"OnboardErrorsAlarm", "SyncSchedule", nil}, // the defaults: a sync every 15 minutes
		{"OnboardErrorsAlarm", "SyncSchedule", map[string]string{"SyncSchedule": "rate(1 hour)"}},
		{"OnboardErrorsAlarm", "SyncSchedule", map[string]string{"SyncSchedule": "rate(12 hours)", "SyncHeartbeatPeriodSeconds": "43200"}},
		{"OnboardAlertsUndeliveredAlarm", "SyncSchedule", nil},
		{"OnboardAlertsUndeliveredAlarm", "SyncSchedule", map[string]string{"SyncSchedule": "rate(1 hour)"}},
		{"OnboardAlertsUndeliveredAlarm", "SyncSchedule", map[string]string{"SyncSchedule": "rate(6 hours)", "SyncHeartbeatPeriodSeconds": "21600"}},
		// Findings still waiting in the onboarding's outbox are counted again at each invocation.
		{"OnboardFindingsBusUndeliveredAlarm", "SyncSchedule", map[string]string{"SyncSchedule": "rate(1 hour)"}},
		{"AuditErrorsAlarm", "AuditSchedule", nil},
		{"AuditErrorsAlarm", "AuditSchedule", map[string]string{"AuditSchedule": "rate(1 hour)", "AlarmPeriodSeconds": "3600", "HeartbeatMaxLagSeconds": "7200"}},
		{"AuditAlertsUndeliveredAlarm", "AuditSchedule", nil},
	} {
		a := props(resource(t, tt.alarm))
		period := 0.0
		if _, ok := a["Metrics"]; ok {
			for _, q := range asList(a["Metrics"]) {
				if st := mapOf(mapOf(q)["MetricStat"]); st != nil {
					period = resolveNumber(t, st["Period"], tt.params)
				}
			}
		} else {
			period = resolveNumber(t, a["Period"], tt.params)
		}
		n := int(resolveNumber(t, a["EvaluationPeriods"], tt.params))
		m := n
		if v, ok := a["DatapointsToAlarm"]; ok {
			m = int(resolveNumber(t, v, tt.params))
		}
		if a["TreatMissingData"] != "notBreaching" {
			t.Fatalf("%s: TreatMissingData %v; this test models notBreaching", tt.alarm, a["TreatMissingData"])
		}
		expr := fmt.Sprint(mapOf(parameters(t)[tt.schedule])["Default"])
		if s, ok := tt.params[tt.schedule]; ok {
			expr = s
		}
		interval := rate(expr)
		// Every run fails, from t0 on for three days: once in ALARM, at
		// every minute after, the alarm must still be in ALARM.
		t0, end := 137.0, 137.0+3*86400
		failed := map[int]bool{}
		for at := t0; at < end; at += interval {
			failed[int(at/period)] = true
		}
		inAlarm := false
		for now := (float64(int(t0/period)) + 1) * period; now < end; now += 60 {
			last := int(now/period) - 1 // the last complete period
			breaching := 0
			for p := last - n + 1; p <= last; p++ {
				if failed[p] {
					breaching++
				}
			}
			if breaching >= m {
				inAlarm = true
			} else if inAlarm {
				t.Errorf("%s with %s %s (%v): at %.0f s no run has failed for %d of its last %d periods of %.0f s, so it clears (OK) while every run fails",
					tt.alarm, tt.schedule, expr, tt.params, now-t0, n-breaching, n, period)
				break
			}
		}
		if !inAlarm {
			t.Errorf("%s with %s %s (%v): never in ALARM while every run fails", tt.alarm, tt.schedule, expr, tt.params)
		}
	}
	// Every allowed SyncHeartbeatPeriodSeconds (the longest gap between two
	// syncs) has a window of 5-minute periods that covers it with a period
	// to spare (a datapoint of the newest failure still arriving when the
	// oldest leaves the window: attack review of the deploy fixes).
	for _, v := range asList(mapOf(parameters(t)["SyncHeartbeatPeriodSeconds"])["AllowedValues"]) {
		gap := resolveNumber(t, v, nil)
		key := strconv.Itoa(int(gap))
		if n := resolveNumber(t, map[string]any{"Fn::FindInMap": []any{"SyncAlarmWindow", key, "Periods"}}, nil); n*300 < gap+600 || n*300 > 86400 {
			t.Errorf("SyncAlarmWindow[%s] = %v periods of 300 s: want at least %v s (the gap and two periods) and at most a day (CloudWatch's limit)", key, n, gap+600)
		}
	}
}

// Every topic of the stack refuses publishing without TLS (#14 §4): the
// chat topic carries the same alert text as the e-mails (names, e-mail
// addresses, IP addresses, places), so it gets the alert topic's deny too,
// under the same condition as the topic.
func TestEveryTopicRefusesPlainPublishing(t *testing.T) {
	topics := resourcesOfType(t, "AWS::SNS::Topic")
	if len(topics) == 0 {
		t.Fatal("no topics in the template")
	}
	for id := range topics {
		when := mapOf(resource(t, id))["Condition"]
		var tls bool
		for _, p := range resourcesOfType(t, "AWS::SNS::TopicPolicy") {
			if !sameJSON(asList(p["Topics"]), []any{ref(id)}) {
				continue
			}
			for pid, r := range cfn(t)["Resources"].(map[string]any) {
				if sameJSON(props(mapOf(r)), p) && mapOf(r)["Condition"] != when {
					t.Errorf("%s: the policy %s exists under condition %v, its topic under %v", id, pid, mapOf(r)["Condition"], when)
				}
			}
			for _, st := range asList(mapOf(p["PolicyDocument"])["Statement"]) {
				tls = tls || deniesPlainPublish(mapOf(st), id)
			}
		}
		if !tls {
			t.Errorf("no policy of %s denies publishing without TLS", id)
		}
	}
}

// evalCondition evaluates the template's condition name as CloudFormation
// does, with the parameter values in params (the defaults for the rest):
// Fn::And, Fn::Or, Fn::Not, Fn::Equals, Fn::Select, Fn::Split, Fn::Join,
// Fn::Sub (of parameters), Ref and Condition.
func evalCondition(t *testing.T, name string, params map[string]string) bool {
	t.Helper()
	conds := mapOf(cfn(t)["Conditions"])
	var eval func(v any) any
	eval = func(v any) any {
		m, ok := v.(map[string]any)
		if !ok {
			if f, isNum := v.(float64); isNum {
				return strconv.Itoa(int(f))
			}
			return v
		}
		for fn, arg := range m {
			args := asList(arg)
			switch fn {
			case "Ref":
				if s, ok := params[textOf(arg)]; ok {
					return s
				}
				return fmt.Sprint(mapOf(parameters(t)[textOf(arg)])["Default"])
			case "Condition":
				return eval(conds[textOf(arg)])
			case "Fn::Not":
				return !eval(args[0]).(bool)
			case "Fn::And", "Fn::Or":
				all, anyTrue := true, false
				for _, a := range args {
					b := eval(a).(bool)
					all, anyTrue = all && b, anyTrue || b
				}
				return map[bool]bool{true: all, false: anyTrue}[fn == "Fn::And"]
			case "Fn::Equals":
				return eval(args[0]) == eval(args[1])
			case "Fn::Split":
				return strings.Split(eval(args[1]).(string), textOf(args[0]))
			case "Fn::Sub": // "${Parameter}" only
				return regexp.MustCompile(`\$\{([A-Za-z0-9]+)\}`).ReplaceAllStringFunc(textOf(arg), func(p string) string {
					return eval(ref(p[2 : len(p)-1])).(string)
				})
			case "Fn::Join":
				var parts []string
				for _, p := range asList(args[1]) {
					parts = append(parts, eval(p).(string))
				}
				return strings.Join(parts, textOf(args[0]))
			case "Fn::Select":
				i, _ := strconv.Atoi(eval(args[0]).(string))
				l := eval(args[1]).([]string)
				if i >= len(l) {
					t.Fatalf("Fn::Select %d of %v: CloudFormation refuses the deploy", i, l)
				}
				return l[i]
			}
		}
		t.Fatalf("cannot evaluate %s", jsonText(v))
		return nil
	}
	c, ok := conds[name]
	if !ok {
		t.Fatalf("no condition %s", name)
	}
	return eval(c).(bool)
}

// WHERE-ISSUES-MEET §7 by value, not by form: this account's default bus
// proves no destination whether it is named "default" or by its ARN (the
// parameter takes both), so NoAlertDestinationAlarm exists for both; a bus
// of the operator's own, by name or ARN, another account's bus, or chat,
// leaves it out.
func TestTheDefaultBusByItsArnIsNoDestinationEither(t *testing.T) {
	const acct = "arn:aws:events:eu-central-1:123456789012:event-bus/"
	for bus, only := range map[string]bool{
		"": true, "default": true, acct + "default": true,
		"security": false, acct + "security": false, acct + "default-findings": false, "default-findings": false,
		"arn:aws:events:eu-central-1:210987654321:event-bus/default": false, // a security account's bus: routed there
	} {
		params := map[string]string{"FindingsBusName": bus, "AWS::AccountId": "123456789012"}
		if got := evalCondition(t, "TopicIsTheOnlyDestination", params); got != only {
			t.Errorf("FindingsBusName %q: TopicIsTheOnlyDestination = %v, want %v", bus, got, only)
		}
		params["ChatNotifications"] = "true"
		if evalCondition(t, "TopicIsTheOnlyDestination", params) {
			t.Errorf("FindingsBusName %q with chat: TopicIsTheOnlyDestination, want not (chat is a destination)", bus)
		}
	}
}

// A failed onboarding that nobody replays is lost when SQS deletes it at the
// end of the queue's retention (14 days), and OnboardFailureQueueAlarm then
// goes to OK as if it had been replayed (attack review of the deploy). A
// second alarm pages while there is time to act: the age of the oldest
// message (ApproximateAgeOfOldestMessage, "Available CloudWatch metrics for
// Amazon SQS" in the SQS developer guide) reaches the threshold at least two
// days before the retention ends, after at least a day (the first alarm has
// paged by then). Its description and runbook say what its OK means.
func TestFailedOnboardingsPageAgainBeforeTheyExpire(t *testing.T) {
	retention := resolveNumber(t, props(resource(t, "OnboardFailureQueue"))["MessageRetentionPeriod"], nil)
	var found []string
	for id, a := range resourcesOfType(t, "AWS::CloudWatch::Alarm") {
		if a["Namespace"] != "AWS/SQS" || a["MetricName"] != "ApproximateAgeOfOldestMessage" ||
			!sameJSON(mapOf(asList(a["Dimensions"])[0])["Value"], getAtt("OnboardFailureQueue", "QueueName")) {
			continue
		}
		found = append(found, id)
		if resource(t, id)["Condition"] != nil {
			t.Errorf("%s exists only under condition %v, want always", id, resource(t, id)["Condition"])
		}
		threshold := resolveNumber(t, a["Threshold"], nil)
		within := resolveNumber(t, a["Period"], nil) * resolveNumber(t, a["EvaluationPeriods"], nil)
		if a["Statistic"] != "Maximum" || a["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || a["TreatMissingData"] != "notBreaching" {
			t.Errorf("%s: %v %v, missing data %v; want Maximum GreaterThanOrEqualToThreshold, notBreaching", id, a["Statistic"], a["ComparisonOperator"], a["TreatMissingData"])
		}
		if threshold < 86400 || threshold+within > retention-2*86400 {
			t.Errorf("%s: fires when the oldest message is %.0f s old (within %.0f s), want from a day on and at least two days before the %.0f s retention ends", id, threshold, within, retention)
		}
		if d := textOf(a["AlarmDescription"]); !strings.Contains(d, "lost") || !strings.Contains(d, id) {
			t.Errorf("%s: AlarmDescription %q, want it to say the requests are lost unless replayed and name the runbook heading", id, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("alarms on the age of OnboardFailureQueue's oldest message: %v, want one", found)
	}
	text := readme(t)
	i := strings.Index(text, "### "+found[0])
	if i < 0 {
		i = strings.Index(text, found[0]+"\n")
	}
	if i < 0 || !strings.Contains(text[i:min(len(text), i+3000)], "three times") {
		t.Errorf("the runbook for %s does not say that a message received three times leaves the age metric (poison pill)", found[0])
	}
}
