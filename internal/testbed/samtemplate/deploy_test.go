package samtemplate

// Deploys on any account (#14 §1): what CloudFormation, IAM and EventBridge
// accept, checked on the translated template.

import (
	"fmt"
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
			if (why == "") != tt.ok {
				t.Errorf("%s = %q: accepted %v, want %v (%s)", param, tt.value, why == "", tt.ok, why)
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
