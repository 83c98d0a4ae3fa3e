// Command evaluate is make evaluate: detection quality on a seeded,
// labelled population (issue #21 §5; package internal/testbed/evaluate).
// It starts moto server (stopped by its PID at the end), deploys the product
// locally with the dev portal, onboards, learns and audits three weeks of
// simulated time, and prints recall per takeover type and false alerts per
// 100 users a week as Markdown tables.
//
//	go run ./cmd/evaluate [-people 300] [-seed 21] [-days 21] [-place] [-set NAME=value ...] [-every-run] [-check]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"ipguard/internal/testbed/evaluate"
	"ipguard/internal/testbed/localaws"
)

type settings []string

func (s *settings) String() string { return strings.Join(*s, " ") }
func (s *settings) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not NAME=value", v)
	}
	*s = append(*s, v)
	return nil
}

func main() {
	people := flag.Int("people", evaluate.FullPeople, "people in the population")
	seed := flag.Uint64("seed", evaluate.Seed, "the generator's seed")
	days := flag.Int("days", 21, "simulated days (the first third learned, the rest audited)")
	place := flag.Bool("place", true, `onboarding entries carry "place" (issue #21 §4); -place=false onboards addresses only`)
	check := flag.Bool("check", false, "exit 1 when issue #21's goal is not met")
	everyRun := flag.Bool("every-run", false, "also run the schedule's runs whose 5 minutes hold no login (slower; see evaluate.Run)")
	var set settings
	flag.Var(&set, "set", "a setting over the defaults, NAME=value (repeatable), e.g. -set ALERT_MODE=every")
	flag.Parse()
	if err := run(*people, *seed, *days, *place, *check, *everyRun, set); err != nil {
		fmt.Fprintln(os.Stderr, "evaluate:", err)
		os.Exit(1)
	}
}

func run(people int, seed uint64, days int, place, check, everyRun bool, set settings) error {
	ctx := context.Background()
	pop := evaluate.Generate(evaluate.Options{Seed: seed, People: people, Days: days, Start: evaluate.DefaultStart(time.Now(), days), Place: place})
	if bad := pop.CheckHonesty(); len(bad) > 0 {
		return fmt.Errorf("the population is not honest: %s", strings.Join(bad, "; "))
	}
	fmt.Printf("population: %d people, seed %d, %d events, %d takeovers, days %s..%s (learned until %s); settings: defaults %s\n",
		people, seed, len(pop.Events), len(pop.Attacks), pop.Start.Format("2006-01-02"), pop.End.Format("2006-01-02"), pop.LearnUntil.Format("2006-01-02"), set.String())
	m, err := localaws.StartMoto(ctx)
	if err != nil {
		return err
	}
	defer m.Stop()
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	out, err := evaluate.Run(ctx, pop, evaluate.RunOptions{Moto: m, Env: set, EveryRun: everyRun, Setenv: func(k, v string) { os.Setenv(k, v) },
		Progress: func(line string) { fmt.Fprintf(os.Stderr, "  %s  %s\n", time.Now().Format("15:04:05"), line) }})
	if err != nil {
		return err
	}
	r := evaluate.Score(pop, out)
	fmt.Println()
	fmt.Print(r.Table())
	if len(r.FalseDetail) > 0 {
		fmt.Printf("\nthe first false findings in messages:\n%s\n", strings.Join(r.FalseDetail, "\n"))
	}
	if ok, why := r.GoalMet(); check && !ok {
		return fmt.Errorf("issue #21's goal is not met: %s", why)
	}
	return nil
}
