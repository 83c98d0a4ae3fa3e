package evaluate

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"ipguard/internal/audit"
)

// The goal of issue #21 at default settings.
const (
	GoalMaxFalsePer100Week = 1.0
	GoalMinRecall          = 0.95
	// RatchetMaxFalsePer100Week is the level make test holds the small
	// population's false alerts to. The goal is met at both sizes since
	// BASELINE_MIN_LOGINS is 5 (0.0 at seed 21, 40 and 300 people), so it is
	// the goal itself: at 40 people one false message (1.25) fails.
	RatchetMaxFalsePer100Week = GoalMaxFalsePer100Week
)

// Report is the evaluation's figures.
type Report struct {
	People int
	Weeks  float64 // audited weeks
	Runs   int
	// Scheduled is the schedule's runs over the audited days (Runs of
	// them ran; the others' five minutes hold no login).
	Scheduled int
	// Attacks and Alerted per attack type (a takeover is alerted when a
	// message people received carries a finding of one of its logins or
	// its addresses).
	Attacks, Alerted map[string]int
	Missed           []string // the attacks no message carried
	// Messages people received; FalseMessages those that carry no
	// takeover at all.
	Messages, FalseMessages int
	Digests                 int
	// Findings carried in messages, per kind, and of them the false ones
	// per kind and per benign behaviour of their login.
	Findings, FalseByKind, FalseByBenign map[string]int
	FalseFindings                        int
	// FalseDetail names the first false findings carried in messages
	// (kind, severity, reasons, the login's benign behaviour), for tuning.
	FalseDetail []string
	// Items is the table's items at the end per kind (Outcome.Table).
	Items []TablePart
	Took  time.Duration
}

// Score judges the outcome against the population's labels.
func Score(pop *Population, out Outcome) Report {
	r := Report{People: len(pop.People), Weeks: pop.End.Sub(pop.LearnUntil).Hours() / (24 * 7), Runs: out.Runs, Scheduled: out.Scheduled, Digests: out.Digests, Took: out.Took, Items: out.Table,
		Attacks: map[string]int{}, Alerted: map[string]int{}, Findings: map[string]int{}, FalseByKind: map[string]int{}, FalseByBenign: map[string]int{}}
	byID := map[int64]int{}
	for i, e := range pop.Events {
		byID[e.ID] = i
	}
	attackOfIP := map[string]int{}
	benignOfIP := map[string]string{}
	for i, a := range pop.Attacks {
		for _, ip := range a.IPs {
			attackOfIP[ip] = i
		}
	}
	for _, e := range pop.Events {
		if e.Attack < 0 && benignOfIP[e.IP] == "" {
			benignOfIP[e.IP] = e.Benign
		}
	}
	alerted := make([]bool, len(pop.Attacks))
	for _, m := range out.Messages {
		takeover := false
		for _, f := range m.Findings {
			r.Findings[f.Kind]++
			hit, benign := -1, ""
			// A finding names its login, a burst's logins, and the other
			// login of an impossible pair (either may be the takeover's).
			ids := append([]int64{f.EventID}, f.EventIDs...)
			for _, x := range f.Reasons {
				ids = append(ids, x.EventID)
			}
			for _, id := range ids {
				if i, ok := byID[id]; ok && id != 0 {
					if a := pop.Events[i].Attack; a >= 0 {
						hit = a
						break
					}
					if benign == "" {
						benign = pop.Events[i].Benign
					}
				}
			}
			if hit < 0 {
				for _, ip := range append([]string{f.IP}, f.IPs...) {
					if a, ok := attackOfIP[ip]; ok {
						hit = a
						break
					}
					if benign == "" {
						benign = benignOfIP[ip]
					}
				}
			}
			if hit >= 0 {
				alerted[hit], takeover = true, true
				continue
			}
			if benign == "" {
				benign = "other"
			}
			r.FalseFindings++
			if len(r.FalseDetail) < 40 {
				var rs, texts []string
				for _, x := range f.Reasons {
					rs = append(rs, x.Kind)
					if x.Kind == audit.KindImpossibleTravel {
						texts = append(texts, fmt.Sprintf("%s (event %d, other event %d)", x.Text, f.EventID, x.EventID))
					}
				}
				line := fmt.Sprintf("%s %s reasons=%v benign=%s user=%s ip=%s %s %s at %s",
					f.Kind, f.Severity, rs, benign, f.UserID, f.IP, f.Country, f.City, f.Date)
				for _, t := range texts {
					line += "\n    " + t
				}
				r.FalseDetail = append(r.FalseDetail, line)
			}
			r.FalseByKind[f.Kind]++
			r.FalseByBenign[benign]++
		}
		r.Messages++
		if !takeover {
			r.FalseMessages++
		}
	}
	for i, a := range pop.Attacks {
		r.Attacks[a.Type]++
		if alerted[i] {
			r.Alerted[a.Type]++
		} else {
			r.Missed = append(r.Missed, fmt.Sprintf("%s (victim %s, events %d..)", a.Type, a.Victim, pop.Events[a.Events[0]].ID))
		}
	}
	return r
}

// per100Week is n per 100 users a week.
func (r Report) per100Week(n int) float64 {
	if r.People == 0 || r.Weeks == 0 {
		return 0
	}
	return float64(n) / (float64(r.People) / 100) / r.Weeks
}

// FalsePer100Week is the false messages per 100 users a week.
func (r Report) FalsePer100Week() float64 { return r.per100Week(r.FalseMessages) }

// Recall is the share of takeovers alerted.
func (r Report) Recall() float64 {
	n, a := 0, 0
	for _, t := range AttackTypes {
		n += r.Attacks[t]
		a += r.Alerted[t]
	}
	if n == 0 {
		return 0
	}
	return float64(a) / float64(n)
}

// GoalMet reports whether the figures meet issue #21's goal, and if not why.
func (r Report) GoalMet() (bool, string) {
	var why []string
	if f := r.FalsePer100Week(); f > GoalMaxFalsePer100Week {
		why = append(why, fmt.Sprintf("%.1f false alerts per 100 users a week (goal ≤ %.0f)", f, GoalMaxFalsePer100Week))
	}
	if rc := r.Recall(); rc < GoalMinRecall {
		why = append(why, fmt.Sprintf("%.0f %% of takeovers alerted (goal ≥ %.0f %%)", 100*rc, 100*GoalMinRecall))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// Table is the report as Markdown tables (the README's "Detection quality").
func (r Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d people, %.0f audited weeks, %d scheduled runs (every 5 minutes of simulated time; the %d whose 5 minutes hold a login were run); took %s\n\n",
		r.People, r.Weeks, r.Scheduled, r.Runs, r.Took.Round(time.Second))
	b.WriteString("| takeover | planted | alerted | recall |\n|---|---:|---:|---:|\n")
	n, a := 0, 0
	for _, t := range AttackTypes {
		n += r.Attacks[t]
		a += r.Alerted[t]
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", t, r.Attacks[t], r.Alerted[t], pct(r.Alerted[t], r.Attacks[t]))
	}
	fmt.Fprintf(&b, "| **all** | %d | %d | **%s** |\n\n", n, a, pct(a, n))
	b.WriteString("| messages people received (per 100 users a week) | count | per 100 users a week |\n|---|---:|---:|\n")
	fmt.Fprintf(&b, "| all messages | %d | %.1f |\n", r.Messages, r.per100Week(r.Messages))
	fmt.Fprintf(&b, "| **false alerts** (messages carrying no takeover) | %d | **%.1f** |\n", r.FalseMessages, r.FalsePer100Week())
	fmt.Fprintf(&b, "| digests (reports, not alerts; sent by the real clock's DIGEST_HOUR, so a simulation sees at most one) | %d | – |\n\n", r.Digests)
	b.WriteString("| false findings carried in messages, by finding kind | count | per 100 users a week |\n|---|---:|---:|\n")
	for _, k := range sortedKeys(r.FalseByKind) {
		fmt.Fprintf(&b, "| %s | %d | %.1f |\n", k, r.FalseByKind[k], r.per100Week(r.FalseByKind[k]))
	}
	fmt.Fprintf(&b, "| **all** | %d | %.1f |\n\n", r.FalseFindings, r.per100Week(r.FalseFindings))
	b.WriteString("| false findings carried in messages, by benign behaviour | count | per 100 users a week |\n|---|---:|---:|\n")
	for _, k := range sortedKeys(r.FalseByBenign) {
		fmt.Fprintf(&b, "| %s | %d | %.1f |\n", k, r.FalseByBenign[k], r.per100Week(r.FalseByBenign[k]))
	}
	if ok, why := r.GoalMet(); ok {
		b.WriteString("\ngoal met: ≤ 1 false alert per 100 users a week and ≥ 95 % of takeovers alerted\n")
	} else {
		b.WriteString("\ngoal NOT met: " + why + "\n")
	}
	if len(r.Missed) > 0 {
		b.WriteString("missed: " + strings.Join(r.Missed, "; ") + "\n")
	}
	if len(r.Items) > 0 {
		// What a reconcile's (and the sync's) consistent scan of users
		// reads: every item of the one table, not only the users.
		b.WriteString("\n| the table at the end, by key prefix | items | KB |\n|---|---:|---:|\n")
		items, bytes := 0, 0
		for _, p := range r.Items {
			items, bytes = items+p.Items, bytes+p.Bytes
			fmt.Fprintf(&b, "| %s | %d | %.1f |\n", p.Prefix, p.Items, float64(p.Bytes)/1024)
		}
		fmt.Fprintf(&b, "| **all** (a consistent scan of users reads them all: about %d read units) | %d | %.1f |\n", (bytes+4095)/4096, items, float64(bytes)/1024)
	}
	return b.String()
}

func pct(a, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f %%", 100*float64(a)/float64(n))
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
