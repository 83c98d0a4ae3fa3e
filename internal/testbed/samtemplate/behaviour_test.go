package samtemplate

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"ipguard/internal/config"
)

// The behaviour parameters' defaults load as the configuration's defaults.
func TestBehaviourParametersMatchTheConfiguration(t *testing.T) {
	ps := parameters(t)
	env := map[string]string{"DOCSPACE_API_HOST": "https://p.example.com", "DOCSPACE_API_KEY_SECRET_ID": "s", "ALLOWLIST_TABLE": "t", "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"}
	for param, variable := range map[string]string{"BehaviourRules": "BEHAVIOUR_RULES", "BehaviourMinSeverity": "BEHAVIOUR_MIN_SEVERITY", "EnforceBehaviour": "ENFORCE_BEHAVIOUR",
		"BaselineMinLogins": "BASELINE_MIN_LOGINS", "BaselineMinDays": "BASELINE_MIN_DAYS", "SprayMinAccounts": "SPRAY_MIN_ACCOUNTS", "SprayWindow": "SPRAY_WINDOW", "AlertMode": "ALERT_MODE",
		"GuessWindow": "GUESS_WINDOW", "EpisodeHours": "EPISODE_HOURS"} {
		env[variable] = fmt.Sprint(mapOf(ps[param])["Default"])
	}
	c, err := config.Load(func(k string) string { return env[k] }, config.Audit)
	if err != nil {
		t.Fatalf("the template's defaults do not load: %v", err)
	}
	want := config.Behaviour{Rules: config.BehaviourRules, MinSeverity: "medium", Enforce: []string{}, MinLogins: 5, MinDays: 14, SprayMinAccounts: 10, SprayWindow: 30 * time.Minute,
		GuessWindow: 15 * time.Minute, AlertMode: config.AlertGrouped, EpisodeHours: 24}
	if !reflect.DeepEqual(c.Audit.Behaviour, want) {
		t.Errorf("defaults load as %+v, want %+v", c.Audit.Behaviour, want)
	}
}
