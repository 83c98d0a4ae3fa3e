package samtemplate

// Deploys on any account (#14 §1): what CloudFormation, IAM and EventBridge
// accept, checked on the translated template.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"ipguard/internal/config"
)

// EventBridge Scheduler takes rate(1 minute) singular and rate(N minutes)
// plural, and cron() with six fields of which exactly one day field is "?"
// with the wildcards each field allows
// (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html).
// The patterns refuse the rest before anything is deployed.
func TestScheduleParametersAcceptOnlyWhatEventBridgeAccepts(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"rate(1 minute)", true},
		{"rate(1 minutes)", false},
		{"rate(5 minutes)", true},
		{"rate(5 minute)", false},
		{"rate(0 minutes)", false},
		{"rate(2 hours)", true},
		{"rate(1 day)", true},
		{"rate(15 mins)", false},
		{"rate(1.5 hours)", false},
		{"every 15 minutes", false},
		{"cron(0/15 * * * ? *)", true},
		{"cron(0/15 8-18 ? * MON-FRI *)", true},
		{"cron(0 9 1 JAN,JUL ? *)", true},
		{"cron(0 10 ? * 6L 2026-2030)", true},
		{"cron(0 10 ? * 2#1 *)", true},
		{"cron(0 10 L * ? *)", true},
		{"cron(0 10 15W * ? *)", true},
		{"cron(0 12 * * * *)", false}, // both day fields given
		{"cron(0 12 ? * ? *)", false}, // neither
		{"cron(60 * * * ? *)", false},
		{"cron(0 24 * * ? *)", false},
		{"cron(0 0 32 * ? *)", false},
		{"cron(0 0 ? 13 * *)", false},
		{"cron(0 0 ? * 8 *)", false},
		{"cron(0 9 ? * MON/2 *)", false}, // day-of-week takes no increment
		{"cron(0 9 1/2 * ? *)", true},    // day-of-month does
		{"cron(* * * * ?)", false},       // five fields
		{"cron(0 0 * * ? 1969)", false},
	}
	ps := parameters(t)
	for _, param := range []string{"AuditSchedule", "SyncSchedule"} {
		for _, tt := range tests {
			why := checkParameter(mapOf(ps[param]), tt.value)
			want := tt.ok
			if param == "SyncSchedule" && tt.value == "rate(1 day)" {
				want = false // longer than any SyncHeartbeatPeriodSeconds: TestEveryRateSyncScheduleTheTemplateTakesFitsAHeartbeatPeriod
			}
			if (why == "") != want {
				t.Errorf("%s = %q: accepted %v, want %v (%s)", param, tt.value, why == "", want, why)
			}
			// What the template lets through, the function accepts at start.
			if why == "" && !config.ValidSchedule(tt.value) {
				t.Errorf("%s = %q passes the template but not config.ValidSchedule", param, tt.value)
			}
		}
	}
}

// A partial secret ARN (the name without the six characters Secrets Manager
// appends) passes a loose pattern but IAM then denies GetSecretValue on the
// real secret: only the complete ARN is accepted. KMS keys are key ARNs
// (an IAM Resource cannot be an alias).
func TestSecretAndKeyParametersAcceptOnlyCompleteArns(t *testing.T) {
	const complete = "arn:aws:secretsmanager:eu-central-1:210987654321:secret:docspace/api-key-x7Yq2Z"
	checkParameterCases(t, []parameterCase{
		{"DocSpaceApiKeySecretArn", complete, true},
		{"DocSpaceApiKeySecretArn", "arn:aws:secretsmanager:eu-central-1:210987654321:secret:docspace/apikey", false},
		{"DocSpaceApiKeySecretArn", "arn:aws:secretsmanager:eu-central-1:210987654321:secret:docspace/api-key-x7Yq2Z*", false},
		{"DocSpaceApiKeySecretArn", "docspace/api-key", false},
		{"DocSpaceApiKeySecretArn", "", false},
		{"AuditApiKeySecretArn", "", true},
		{"AuditApiKeySecretArn", complete, true},
		{"AuditApiKeySecretArn", "arn:aws:secretsmanager:eu-central-1:210987654321:secret:docspace/read", false},
		{"SecretKmsKeyArn", "", true},
		{"SecretKmsKeyArn", "arn:aws:kms:eu-central-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{"SecretKmsKeyArn", "alias/my-key", false},
		{"SecretKmsKeyArn", "arn:aws:kms:eu-central-1:210987654321:alias/my-key", false},
		{"AlertTopicKmsKeyArn", "", true},
		{"AlertTopicKmsKeyArn", "arn:aws:kms:eu-central-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{"AlertTopicKmsKeyArn", "alias/aws/sns", false},
		{"OpsEmail", "ops@corp.test", true},
		{"OpsEmail", "", false},
		{"AuditReservedConcurrency", "0", true},
		{"AuditReservedConcurrency", "1", true},
		{"AuditReservedConcurrency", "2", false},
	})
	if def := fmt.Sprint(mapOf(parameters(t)["AuditReservedConcurrency"])["Default"]); def != "0" {
		t.Errorf("AuditReservedConcurrency defaults to %s, want 0 (nothing reserved: a new account's quota may be 10)", def)
	}
	want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref("AuditReservedConcurrency"), 0.0}}}}
	if got := mapOf(cfn(t)["Conditions"])["HasAuditReservation"]; !sameJSON(got, want) {
		t.Errorf("HasAuditReservation = %s, want %s", jsonText(got), jsonText(want))
	}
}

// The table survives what an operator or a compromised principal may do
// by mistake: retained with the stack, point-in-time recovery, deletion
// protection. The log groups (personal data, kept for their retention) stay
// too; the queues are deleted explicitly (cfn-lint I3011).
func TestStatefulResourcesSayWhatHappensOnDelete(t *testing.T) {
	table := resource(t, "AllowlistTable")
	p := props(table)
	if mapOf(p["PointInTimeRecoverySpecification"])["PointInTimeRecoveryEnabled"] != true || p["DeletionProtectionEnabled"] != true {
		t.Errorf("AllowlistTable: PITR %s, DeletionProtectionEnabled %v; want both on", jsonText(p["PointInTimeRecoverySpecification"]), p["DeletionProtectionEnabled"])
	}
	for id, want := range map[string]string{
		"AllowlistTable": "Retain", "OnboardLogGroup": "RetainExceptOnCreate", "AuditLogGroup": "RetainExceptOnCreate",
		"OnboardFailureQueue": "Delete", "OnboardRuleDeadLetterQueue": "Delete", "ScheduleDeadLetterQueue": "Delete",
	} {
		r := resource(t, id)
		replace := strings.TrimSuffix(want, "ExceptOnCreate") // UpdateReplacePolicy has no RetainExceptOnCreate
		if r["DeletionPolicy"] != want || r["UpdateReplacePolicy"] != replace {
			t.Errorf("%s: DeletionPolicy %v, UpdateReplacePolicy %v; want %s, %s", id, r["DeletionPolicy"], r["UpdateReplacePolicy"], want, replace)
		}
	}
}

// The heartbeats tell a cron() schedule from a rate() one by the text before
// "(": the same evaluation CloudFormation does with Fn::Split and Fn::Select.
func TestHeartbeatsKnowACronSchedule(t *testing.T) {
	conds := mapOf(cfn(t)["Conditions"])
	for cond, param := range map[string]string{"AuditOnCron": "AuditSchedule"} {
		want := map[string]any{"Fn::Equals": []any{
			map[string]any{"Fn::Select": []any{0.0, map[string]any{"Fn::Split": []any{"(", ref(param)}}}}, "cron"}}
		if !sameJSON(conds[cond], want) {
			t.Errorf("%s = %s, want %s", cond, jsonText(conds[cond]), jsonText(want))
		}
	}
	for value, cron := range map[string]bool{"rate(5 minutes)": false, "cron(0/15 8-18 ? * MON-FRI *)": true} {
		if got := strings.Split(value, "(")[0] == "cron"; got != cron {
			t.Errorf("%s: on cron %v, want %v", value, got, cron)
		}
	}
}

// A first deploy that fails (a quota, an SMS subscription refused, a typo in
// a parameter CloudFormation only checks at create) rolls back, and a retry
// under the same stack name must then work. A resource retained on that
// rollback stays behind: with a name of its own (the log groups'
// /aws/lambda/STACK-audit) the retry fails with "already exists" until it is
// deleted by hand. So what has a fixed name is RetainExceptOnCreate: kept
// when the stack is deleted later, deleted when its own creation rolls back
// (CloudFormation DeletionPolicy attribute; RetainExceptOnCreate, 2023).
func TestAFailedFirstDeployLeavesNoNameBehindThatBlocksTheRetry(t *testing.T) {
	nameKeys := []string{"LogGroupName", "TableName", "BucketName", "TopicName", "QueueName", "AlarmName", "FunctionName", "RoleName", "Name"}
	checked := 0
	for id, r := range cfn(t)["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["DeletionPolicy"] != "Retain" && r["DeletionPolicy"] != "RetainExceptOnCreate" {
			continue
		}
		p := props(r)
		for _, k := range nameKeys {
			if !hasKey(p, k) || textOf(r["Type"]) == "AWS::Lambda::Permission" {
				continue
			}
			checked++
			if r["DeletionPolicy"] != "RetainExceptOnCreate" {
				t.Errorf("%s has the fixed %s %s and DeletionPolicy %v: a failed first deploy keeps it, and every retry under the same stack name fails with \"already exists\"; want RetainExceptOnCreate",
					id, k, jsonText(p[k]), r["DeletionPolicy"])
			}
		}
	}
	if checked == 0 {
		t.Error("no retained resource with a fixed name found; the log groups have one (/aws/lambda/STACK-audit)")
	}
}

// The onboarding refuses at start a rate() SyncSchedule longer than
// SyncHeartbeatPeriodSeconds, and no allowed period is longer than 12
// hours: a SyncSchedule the template let through but no period can hold
// (rate(1 day)) deployed, and then every onboarding failed with
// ConfigurationError (attack review of the deploy changes). What the
// template lets through, the function accepts at start with the longest
// period; the rest is refused before anything is deployed, by the
// parameter's own constraint.
func TestEveryRateSyncScheduleTheTemplateTakesFitsAHeartbeatPeriod(t *testing.T) {
	ps := parameters(t)
	longest := 0
	for _, v := range asList(mapOf(ps["SyncHeartbeatPeriodSeconds"])["AllowedValues"]) {
		longest = max(longest, int(resolveNumber(t, v, nil)))
	}
	env := map[string]string{"DOCSPACE_API_HOST": "https://p.example.com", "DOCSPACE_API_KEY_SECRET_ID": "s", "ALLOWLIST_TABLE": "t",
		"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t", "SYNC_HEARTBEAT_PERIOD_SECONDS": strconv.Itoa(longest)}
	var values []string
	for n := 1; n <= 800; n++ {
		values = append(values, fmt.Sprintf("rate(%d minutes)", n), fmt.Sprintf("rate(%d hours)", n), fmt.Sprintf("rate(%d days)", n))
	}
	values = append(values, "rate(1 minute)", "rate(1 hour)", "rate(1 day)")
	taken := 0
	for _, v := range values {
		if checkParameter(mapOf(ps["SyncSchedule"]), v) != "" {
			continue
		}
		taken++
		env["SYNC_SCHEDULE"] = v
		if _, err := config.Load(func(k string) string { return env[k] }, config.Onboard); err != nil {
			t.Errorf("SyncSchedule=%s passes the template but the onboarding refuses it with every SyncHeartbeatPeriodSeconds: %v", v, err)
		}
	}
	if taken < 700 {
		t.Errorf("the template takes only %d rate() SyncSchedules; want every one up to 12 hours", taken)
	}
}
