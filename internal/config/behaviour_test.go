package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadBehaviour(t *testing.T) {
	with := func(kv ...string) map[string]string {
		m := base()
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c, err := Load(env(base()), Audit)
	if err != nil {
		t.Fatal(err)
	}
	want := Behaviour{Rules: BehaviourRules, MinSeverity: "medium", MinLogins: 5, MinDays: 14, SprayMinAccounts: 10, SprayWindow: 30 * time.Minute,
		GuessWindow: 15 * time.Minute, AlertMode: AlertGrouped, EpisodeHours: 24}
	if !reflect.DeepEqual(c.Audit.Behaviour, want) {
		t.Errorf("defaults %+v, want %+v", c.Audit.Behaviour, want)
	}
	c, err = Load(env(with("BEHAVIOUR_RULES", "new_country, impossible_travel", "BEHAVIOUR_MIN_SEVERITY", "LOW", "ENFORCE_BEHAVIOUR", "impossible_travel",
		"BASELINE_MIN_LOGINS", "20", "BASELINE_MIN_DAYS", "7", "SPRAY_MIN_ACCOUNTS", "5", "SPRAY_WINDOW", "60")), Audit)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Audit.Behaviour
	if !reflect.DeepEqual(b.Rules, []string{"new_country", "impossible_travel"}) || b.MinSeverity != "low" || !reflect.DeepEqual(b.Enforce, []string{"impossible_travel"}) ||
		b.MinLogins != 20 || b.MinDays != 7 || b.SprayMinAccounts != 5 || b.SprayWindow != time.Hour {
		t.Errorf("set: %+v", b)
	}
	if c, _ := Load(env(with("ALERT_MODE", "Every", "GUESS_WINDOW", "60", "EPISODE_HOURS", "2")), Audit); c.Audit.Behaviour.Grouped() ||
		c.Audit.Behaviour.GuessWindow != time.Hour || c.Audit.Behaviour.EpisodeHours != 2 {
		t.Errorf("ALERT_MODE=every, GUESS_WINDOW=60, EPISODE_HOURS=2: %+v", c.Audit.Behaviour)
	}
	if c, _ := Load(env(with("BEHAVIOUR_RULES", "none")), Audit); c.Audit.Behaviour.On() {
		t.Error("none should switch behaviour off")
	}
	for _, c := range []struct{ k, v, want string }{
		{"BEHAVIOUR_RULES", "new_country,teleport", `BEHAVIOUR_RULES must list rules among impossible_travel, new_country, new_device, password_spray (comma-separated), or none (got "teleport")`},
		{"BEHAVIOUR_MIN_SEVERITY", "loud", `BEHAVIOUR_MIN_SEVERITY must be low, medium, high or critical (got "loud")`},
		{"ENFORCE_BEHAVIOUR", "password_spray", `ENFORCE_BEHAVIOUR cannot name password_spray`},
		{"BASELINE_MIN_LOGINS", "0", `BASELINE_MIN_LOGINS must be a whole number from 1 to 100000 (got "0")`},
		{"BASELINE_MIN_DAYS", "365", `BASELINE_MIN_DAYS must be a whole number from 1 to 180`},
		{"SPRAY_MIN_ACCOUNTS", "1", `SPRAY_MIN_ACCOUNTS must be a whole number from 2`},
		{"SPRAY_WINDOW", "30m", `SPRAY_WINDOW must be a whole number from 1 to 1440 (got "30m")`},
		{"GUESS_WINDOW", "0", `GUESS_WINDOW must be a whole number from 1 to 1440 (got "0")`},
		{"ALERT_MODE", "loud", `ALERT_MODE must be grouped or every (got "loud")`},
		{"EPISODE_HOURS", "0", `EPISODE_HOURS must be a whole number from 1 to 720 (got "0")`},
	} {
		_, err := Load(env(with(c.k, c.v)), Audit)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: %v, want %q", c.k, c.v, err, c.want)
		}
	}
	_, err = Load(env(with("BEHAVIOUR_RULES", "new_device", "ENFORCE_BEHAVIOUR", "new_country")), Audit)
	if err == nil || !strings.Contains(err.Error(), "ENFORCE_BEHAVIOUR names a rule that BEHAVIOUR_RULES does not switch on") {
		t.Errorf("enforce a rule that is off: %v", err)
	}
}
