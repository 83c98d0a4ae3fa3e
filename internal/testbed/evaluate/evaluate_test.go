package evaluate

import (
	"context"
	"os"
	"testing"
	"time"

	"ipguard/internal/testbed/localaws"
)

// The small population (40 people, 3 weeks, seed fixed) at default
// settings, through the real functions against moto and the dev portal,
// meets issue #21's goal: at most 1 false alert per 100 users a week and at
// least 95 % of takeovers alerted. The table is logged whatever the
// outcome, so a failure shows today's figures.
func TestDetectionQualityMeetsTheGoal(t *testing.T) {
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
	if ok, why := r.GoalMet(); !ok {
		t.Errorf("issue #21's goal is not met at default settings: %s", why)
	}
}
