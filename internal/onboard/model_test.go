package onboard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ipguard/internal/ipguard"
)

// TestReconcilerModel drives seeded random interleavings of onboarding,
// offboarding, time-bound entries expiring, an admin's edits on the portal
// and portal faults (late, refused, lost and repeated writes, read-backs
// that fail, lists that shift while written) against the reconciler with
// the in-memory portal, and after every step checks its promises against a
// simple model:
//
//   - the stored users are what the requests asked for (the model's users);
//   - a manual entry (one the admin wants) is never removed by the tool;
//   - nothing is owned that a PUT of the tool did not bring onto the portal;
//   - once faults stop, the portal reaches the desired state within
//     modelSyncBound syncs.
//
// A PUT that times out ("late") lands at the end of its step: the lease
// fence keeps any attempt from landing after the next holder has read the
// portal (docs/allowlist-reconcile.md), so a late landing after newer PUTs
// is outside the model.
//
// MODEL_STEPS sets the steps (default 300; make model runs many more),
// MODEL_SEED the seed (default 1, so that make test is repeatable; make
// model picks a new one and prints it). MODEL_TRACE=1 prints each step of
// the shortest failing sequence with the portal and the state. A failure prints its
// seed and the shortest step sequence found that still fails.
func TestReconcilerModel(t *testing.T) {
	steps := envInt(t, "MODEL_STEPS", 300)
	seed := uint64(envInt(t, "MODEL_SEED", 1))
	if testing.Short() {
		steps = min(steps, 100)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seq := make([]modelStep, steps)
	for i := range seq {
		seq[i] = randomStep(rng)
	}
	failure := runModel(seq)
	if failure == "" {
		t.Logf("seed %d: %d steps held", seed, steps)
		return
	}
	trace := modelTrace
	modelTrace = false
	short := shrink(seq)
	if trace {
		modelTrace = true
		fmt.Println("--- the shortest failing sequence, traced:")
		runModel(short)
	}
	var lines []string
	for i, st := range short {
		lines = append(lines, fmt.Sprintf("  %2d. %s", i+1, st))
	}
	t.Fatalf("seed %d (MODEL_SEED=%d MODEL_STEPS=%d): %s\nshortest failing sequence (%d of %d steps), ending in: %s\n%s",
		seed, seed, steps, failure, len(short), len(seq), runModel(short), strings.Join(lines, "\n"))
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

// modelSyncBound is how many syncs after the faults stop may be needed.
const modelSyncBound = 3

type modelStep struct {
	Kind string
	User int
	Addr []int
	N    int
}

func (s modelStep) String() string {
	switch s.Kind {
	case "replace":
		return fmt.Sprintf("replace u%d with %v (time-bound: %d min)", s.User, s.Addr, s.N)
	case "add", "remove":
		return fmt.Sprintf("%s u%d %v", s.Kind, s.User, s.Addr)
	case "offboard":
		return fmt.Sprintf("offboard u%d", s.User)
	case "tick":
		return fmt.Sprintf("clock +%d min", s.N)
	case "admin-add", "admin-remove", "admin-during-write":
		return fmt.Sprintf("%s manual %v", s.Kind, s.Addr)
	}
	return s.Kind
}

const (
	modelUsers  = 5
	modelPool   = 12 // user addresses 203.0.113.10..
	manualPool  = 4  // the admin's addresses 198.51.100.1..
	faultChance = 25 // percent of steps that arm a fault
)

func userAddr(i int) string   { return fmt.Sprintf("203.0.113.%d", 10+i) }
func manualAddr(i int) string { return fmt.Sprintf("198.51.100.%d", 1+i) }

func randomStep(r *rand.Rand) modelStep {
	pick := func(n, of int) []int {
		var out []int
		for range n {
			if a := r.IntN(of); !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		return out
	}
	if r.IntN(100) < faultChance {
		return modelStep{Kind: []string{"late", "refuse", "lost-answer", "read-fails", "put-down", "admin-during-write", "bump-lost"}[r.IntN(7)],
			Addr: pick(1, manualPool)}
	}
	switch k := r.IntN(100); {
	case k < 25:
		n := 0
		if r.IntN(3) == 0 {
			n = 1 + r.IntN(30)
		}
		return modelStep{Kind: "replace", User: r.IntN(modelUsers), Addr: pick(1+r.IntN(3), modelPool), N: n}
	case k < 40:
		return modelStep{Kind: "add", User: r.IntN(modelUsers), Addr: pick(1, modelPool)}
	case k < 55:
		return modelStep{Kind: "remove", User: r.IntN(modelUsers), Addr: pick(1, modelPool)}
	case k < 62:
		return modelStep{Kind: "offboard", User: r.IntN(modelUsers)}
	case k < 72:
		return modelStep{Kind: "tick", N: 1 + r.IntN(20)}
	case k < 80:
		return modelStep{Kind: "admin-add", Addr: pick(1, manualPool)}
	case k < 85:
		return modelStep{Kind: "admin-remove", Addr: pick(1, manualPool)}
	}
	return modelStep{Kind: "sync"}
}

type modelEntry struct{ expires time.Time }

func (e modelEntry) activeAt(now time.Time) bool { return e.expires.IsZero() || now.Before(e.expires) }

// askedUsers is what the requests asked for: each user's addresses (both
// runs of the model, in memory and through the dev portal, keep it).
type askedUsers map[string]map[string]modelEntry

// modelState is what the requests asked for and what the admin wants.
type modelState struct {
	users  askedUsers
	manual map[string]int // the admin's entries (address → count)
}

func (us askedUsers) active(now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, es := range us {
		for a, e := range es {
			if e.activeAt(now) {
				out[a] = true
			}
		}
	}
	return out
}

// request is the onboarding request of a replace, add, remove or offboard
// step, made at now.
func (st modelStep) request(now time.Time) string {
	u := fmt.Sprintf("u%d", st.User)
	var entries []string
	for _, a := range st.Addr {
		entries = append(entries, userAddr(a))
	}
	switch st.Kind {
	case "replace":
		var items []string
		for _, a := range entries {
			if st.N > 0 {
				items = append(items, fmt.Sprintf(`{"ip":%q,"expiresAt":%q}`, a, now.Add(time.Duration(st.N)*time.Minute).Format(time.RFC3339)))
			} else {
				items = append(items, strconv.Quote(a))
			}
		}
		return fmt.Sprintf(`{"id":%q,"email":"a@example.com","allowedIps":[%s]}`, u, strings.Join(items, ","))
	case "add", "remove":
		email := `,"email":"a@example.com"`
		if st.Kind == "remove" {
			email = ""
		}
		return fmt.Sprintf(`{"action":%q,"id":%q%s,"allowedIps":[%q]}`, st.Kind, u, email, entries[0])
	case "offboard":
		return fmt.Sprintf(`{"action":"offboard","id":%q}`, u)
	}
	return ""
}

// answered takes the service's answer err to st's request (made at now)
// into the model: an InvalidInput stored nothing and is a broken promise
// unless it refused a remove from a user not stored; any other outcome
// stored the change (the portal may lag).
func (us askedUsers) answered(st modelStep, now time.Time, err error) error {
	u := fmt.Sprintf("u%d", st.User)
	if ipguard.ErrorCode(err) == ipguard.EInvalid {
		if st.Kind == "remove" && us[u] == nil {
			return nil // not stored: nothing to remove, as expected
		}
		return fmt.Errorf("%s: %v", st, err)
	}
	var entries []string
	for _, a := range st.Addr {
		entries = append(entries, userAddr(a))
	}
	switch st.Kind {
	case "replace":
		us[u] = map[string]modelEntry{}
		for _, a := range entries {
			me := modelEntry{}
			if st.N > 0 {
				me.expires = now.Add(time.Duration(st.N) * time.Minute).Truncate(time.Second)
			}
			us[u][a] = me
		}
	case "add":
		if us[u] == nil {
			us[u] = map[string]modelEntry{}
		}
		us[u][entries[0]] = modelEntry{} // an add without expiresAt makes the entry permanent
	case "remove":
		delete(us[u], entries[0])
	case "offboard":
		delete(us, u)
	}
	return nil
}

// stored says how the users in store at now differ from what the
// requests asked for ("" when they do not).
func (us askedUsers) stored(ctx context.Context, store Store, now time.Time) string {
	for id, mu := range us {
		u, found, _ := store.GetUser(ctx, id)
		if !found {
			return fmt.Sprintf("user %s is not stored", id)
		}
		got := u.ActiveEntries(now)
		var want []string
		for a, me := range mu {
			if me.activeAt(now) {
				want = append(want, a)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			return fmt.Sprintf("user %s stores %v, want %v", id, got, want)
		}
	}
	return ""
}

// runModel runs seq from a fresh start and returns the first broken
// promise, or "".
func runModel(seq []modelStep) (failure string) {
	defer func() {
		if r := recover(); r != nil {
			failure = fmt.Sprint("panic: ", r)
		}
	}()
	e := newEnv()
	e.p.set(nil, false)
	m := &modelState{users: askedUsers{}, manual: map[string]int{}}
	ctx := context.Background()
	countManual := func() map[string]int {
		n := map[string]int{}
		e.p.mu.Lock()
		defer e.p.mu.Unlock()
		for _, r := range e.p.list {
			if strings.HasPrefix(r.IP, "198.51.100.") && !r.ForAdmin {
				n[r.IP]++
			}
		}
		return n
	}
	adminEdit := func(add bool, a string) {
		e.p.mu.Lock()
		defer e.p.mu.Unlock()
		if add {
			e.p.list = append(e.p.list, ipguard.Restriction{IP: a})
			m.manual[a]++
			return
		}
		if i := slices.Index(e.p.list, ipguard.Restriction{IP: a}); i >= 0 {
			e.p.list = slices.Delete(slices.Clone(e.p.list), i, i+1)
			m.manual[a]--
		}
	}
	request := func(st modelStep) error {
		_, err := e.s.Handle(ctx, []byte(st.request(e.now)))
		return m.users.answered(st, e.now, err)
	}
	converge := func() string {
		e.p.mu.Lock()
		e.p.late, e.p.refuse, e.p.lostAnswer, e.p.readErrs, e.p.putErr, e.p.afterPut = 0, 0, 0, 0, nil, nil
		e.p.mu.Unlock()
		e.st.BumpErrs = 0
		for range modelSyncBound {
			_, _ = e.s.Handle(ctx, []byte(`{"action":"sync"}`))
		}
		want := m.users.active(e.now)
		e.p.mu.Lock()
		defer e.p.mu.Unlock()
		have := map[string]bool{}
		for _, r := range e.p.list {
			if !r.ForAdmin && strings.HasPrefix(r.IP, "203.0.113.") {
				have[r.IP] = true
			}
		}
		for a := range want {
			if !have[a] {
				return fmt.Sprintf("after %d syncs without faults the portal lacks desired %s (portal %s)", modelSyncBound, a, ips(e.p.list))
			}
		}
		for a := range have {
			if !want[a] {
				return fmt.Sprintf("after %d syncs without faults the portal still allows %s, which no user needs (portal %s)", modelSyncBound, a, ips(e.p.list))
			}
		}
		return ""
	}

	for i, st := range seq {
		before := countManual()
		landing := false
		switch st.Kind {
		case "replace", "add", "remove", "offboard":
			if err := request(st); err != nil {
				return fmt.Sprintf("step %d: %v", i+1, err)
			}
			e.p.mu.Lock()
			e.p.putErr = nil // "put-down" lasts one request
			e.p.mu.Unlock()
		case "sync":
			_, _ = e.s.Handle(ctx, []byte(`{"action":"sync"}`))
		case "tick":
			e.now = e.now.Add(time.Duration(st.N) * time.Minute)
		case "admin-add":
			adminEdit(true, manualAddr(st.Addr[0]))
		case "admin-remove":
			adminEdit(false, manualAddr(st.Addr[0]))
		case "admin-during-write":
			a := manualAddr(st.Addr[0])
			e.p.mu.Lock()
			e.p.afterPut = func(f *fakePortal) {
				f.mu.Lock()
				f.list = append(f.list, ipguard.Restriction{IP: a})
				f.mu.Unlock()
				m.manual[a]++
			}
			e.p.mu.Unlock()
		case "late":
			e.p.late = 1
		case "refuse":
			e.p.refuse = 1
		case "lost-answer":
			e.p.lostAnswer = 1
		case "read-fails":
			e.p.readErrs = 1
		case "put-down":
			e.p.putErr = ipguard.Errorf(ipguard.EUnavailable, "HTTP 503")
		case "bump-lost":
			e.st.BumpErrs = 1
		}
		// A PUT that timed out lands now, at the end of the step: the
		// fence keeps the lease past its longest attempt, so it lands
		// before the next holder reads the portal.
		e.p.mu.Lock()
		late := len(e.p.lateList) > 0
		e.p.mu.Unlock()
		if late {
			e.p.landLate()
			landing = true
		}
		if modelTrace && (st.Kind != "admin-add" && st.Kind != "admin-remove") {
			st := e.state()
			fmt.Printf("%3d %-45s portal=%s on=%v owned=%v sent=%s(%s) added=%v pending=%q\n", i+1, seq[i], ips(e.p.list), e.p.enabled, st.Owned, ips(st.Sent), st.SentOutcome, st.SentAdded, st.Pending)
		}
		// Promise: the stored users are what the requests asked for.
		if broken := m.users.stored(ctx, e.st, e.now); broken != "" {
			return fmt.Sprintf("step %d (%s): %s", i+1, st, broken)
		}
		// Promise: a manual entry is never removed by the tool (a late
		// landing of an old list is the portal's doing, not the tool's).
		if !landing && st.Kind != "admin-remove" {
			after := countManual()
			for a, n := range before {
				if after[a] < min(n, m.manual[a]) {
					return fmt.Sprintf("step %d (%s): the tool removed the admin's %s (%d before, %d after)", i+1, st, a, n, after[a])
				}
			}
		}
		// Promise: nothing is owned that a PUT of the tool did not bring
		// onto the portal.
		state := e.state()
		e.p.mu.Lock()
		for _, a := range state.Owned {
			if !e.p.applied[a] {
				e.p.mu.Unlock()
				return fmt.Sprintf("step %d (%s): %s is owned but no PUT of the tool ever brought it onto the portal", i+1, st, a)
			}
		}
		e.p.mu.Unlock()
		if (i+1)%25 == 0 {
			if f := converge(); f != "" {
				return fmt.Sprintf("step %d: %s", i+1, f)
			}
		}
	}
	if f := converge(); f != "" {
		return "at the end: " + f
	}
	return ""
}

// shrink removes steps while the sequence still fails, one at a time and
// then in halves, until no single step can go.
func shrink(seq []modelStep) []modelStep { return shrinkWith(seq, runModel) }

// shrinkWith is shrink with the runner run (the in-memory portal's or the
// dev portal's).
func shrinkWith(seq []modelStep, run func([]modelStep) string) []modelStep {
	cur := slices.Clone(seq)
	for chunk := len(cur) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(cur); {
			try := slices.Concat(cur[:i], cur[i+chunk:])
			if run(try) != "" {
				cur = try
				continue
			}
			i += chunk
		}
	}
	return cur
}

var modelTrace = os.Getenv("MODEL_TRACE") != ""
