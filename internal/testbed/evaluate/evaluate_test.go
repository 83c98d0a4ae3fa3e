package evaluate

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"ipguard/internal/testbed/localaws"
)

// The small population (40 people, 3 weeks, seed fixed) at default
// settings, through the real functions against moto and the dev portal.
// It holds recall to issue #21's goal (at least 95 % of takeovers alerted)
// and false alerts to RatchetMaxFalsePer100Week, which is now the goal of
// at most 1 false alert per 100 users a week (README "Detection quality").
// The table and the first false findings are logged whatever the outcome.
func TestDetectionQualityAtDefaults(t *testing.T) {
	localaws.SkipShort(t, "moto_server")
	m := localaws.MotoT(t)
	pop := Generate(Options{Seed: Seed, People: SmallPeople, Start: DefaultStart(time.Now(), 21), Place: os.Getenv("EVALUATE_PLACE") != "false"})
	if bad := pop.CheckHonesty(); len(bad) > 0 {
		t.Fatalf("the population is not honest: %v", bad)
	}
	out, err := Run(context.Background(), pop, RunOptions{Moto: m, Setenv: t.Setenv})
	if err != nil {
		t.Fatal(err)
	}
	r := Score(pop, out)
	t.Logf("detection quality at default settings:\n%s", r.Table())
	detail := strings.Join(r.FalseDetail, "\n")
	if ok, why := r.GoalMet(); !ok {
		t.Logf("issue #21's goal is not met at default settings: %s\nthe first false findings in messages:\n%s", why, detail)
	}
	if rc := r.Recall(); rc < GoalMinRecall {
		t.Errorf("recall %.0f %% is below issue #21's goal of %.0f %%; missed: %v", 100*rc, 100*GoalMinRecall, r.Missed)
	}
	if f := r.FalsePer100Week(); f > RatchetMaxFalsePer100Week {
		t.Errorf("%.1f false alerts per 100 users a week: above %.1f\n%s", f, RatchetMaxFalsePer100Week, detail)
	}
}
