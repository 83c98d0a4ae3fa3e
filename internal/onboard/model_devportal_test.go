package onboard_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/docspace"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease/leasetest"
	"ipguard/internal/onboard"
	"ipguard/internal/onboard/onboardtest"
	"ipguard/internal/testbed/devportal"
)

// TestReconcilerModelDevPortal runs the steps of TestReconcilerModel
// through the real DocSpace client (internal/docspace) against the dev
// portal in process (httptest), with the faults the dev portal expresses:
//
//	late                a PUT is not answered within the client's timeout
//	                    and lands shortly after the client gave up
//	lost-answer         a PUT is served but answered with invalid JSON
//	refuse              a PUT is answered 400 (not applied)
//	put-down            every PUT of one request is answered 503
//	read-fails          the next read of the list is answered 503
//	admin-during-write  an admin adds an entry right after the next PUT
//	bump-lost           the store's next version bump fails
//
// and the same promises after every step: the stored users are the model's;
// the tool never removes a manual entry; nothing is owned that a PUT of the
// tool did not bring onto the portal; once faults stop, the portal reaches
// the desired state within onboard.ModelSyncBound syncs.
//
// MODEL_DEVPORTAL_STEPS sets the steps (default 150, 60 with -short; a step
// takes up to ~60 ms of real time, so make model runs fewer here than
// MODEL_STEPS), MODEL_SEED the seed (default 1, as for TestReconcilerModel).
// A failure prints the seed and the shortest failing sequence.
//
// It found that the client took a PUT answered 200 with a body it could not
// read for "not applied" (ipguard.ErrNotApplied), so the reconciler never
// owned what that PUT brought onto the portal and left it there for good.
func TestReconcilerModelDevPortal(t *testing.T) {
	steps := 150
	if v := os.Getenv("MODEL_DEVPORTAL_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("MODEL_DEVPORTAL_STEPS=%q: want a whole number", v)
		}
		steps = n
	}
	seed := uint64(1)
	if v := os.Getenv("MODEL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("MODEL_SEED=%q: want a whole number", v)
		}
		seed = n
	}
	if testing.Short() {
		steps = min(steps, 60)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seq := make([]onboard.ModelStep, steps)
	for i := range seq {
		seq[i] = onboard.RandomModelStep(rng)
	}
	failure := runDevPortalModel(seq)
	if failure == "" {
		t.Logf("seed %d: %d steps held against the dev portal", seed, steps)
		return
	}
	short := onboard.ShrinkModel(seq, runDevPortalModel)
	var lines []string
	for i, st := range short {
		lines = append(lines, fmt.Sprintf("  %2d. %s", i+1, st))
	}
	t.Fatalf("seed %d (MODEL_SEED=%d MODEL_STEPS=%d): %s\nshortest failing sequence (%d of %d steps), ending in: %s\n%s",
		seed, seed, steps, failure, len(short), len(seq), runDevPortalModel(short), strings.Join(lines, "\n"))
}

const (
	modelKey       = "sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	modelAdmin     = "aaaaaaaa-1111-4111-8111-0000000000a1"
	modelTimeout   = 150 * time.Millisecond // the client's timeout: a delay past it is unanswered
	modelApplyLate = 20 * time.Millisecond  // a late PUT lands this long after the client gave up
	restrictPath   = "/settings/iprestrictions"
)

type modelKeys string

func (k modelKeys) Key(context.Context) (string, error) { return string(k), nil }

// recordingPortal is the client as onboard.Portal; it notes every address
// of the user pool seen on the portal around each write (the admin only
// edits the manual pool, so such an address is there by a PUT of the tool)
// and runs afterPut once right after the next write.
type recordingPortal struct {
	*docspace.Client
	dev      *devportal.Portal
	mu       sync.Mutex
	applied  map[string]bool
	afterPut func()
}

func (r *recordingPortal) observe() {
	list, _ := r.dev.Restrictions()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range list {
		if strings.HasPrefix(e.IP, "203.0.113.") {
			r.applied[e.IP] = true
		}
	}
}

func (r *recordingPortal) SaveIPRestrictions(ctx context.Context, list []ipguard.Restriction, enable bool) (time.Time, error) {
	r.observe()
	at, err := r.Client.SaveIPRestrictions(ctx, list, enable)
	r.observe()
	r.mu.Lock()
	hook := r.afterPut
	r.afterPut = nil
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	return at, err
}

func runDevPortalModel(seq []onboard.ModelStep) (failure string) {
	defer func() {
		if r := recover(); r != nil {
			failure = fmt.Sprint("panic: ", r)
		}
	}()
	ctx := context.Background()
	dev := devportal.New(devportal.Options{})
	if err := dev.PutUsers(devportal.User{ID: modelAdmin, Status: devportal.StatusActive, IsAdmin: true}); err != nil {
		return "setup: " + err.Error()
	}
	if err := dev.PutKey(devportal.APIKey{Key: modelKey, CreateBy: modelAdmin, IsActive: true}); err != nil {
		return "setup: " + err.Error()
	}
	dev.SetRestrictions(nil, false)
	srv := httptest.NewServer(dev.Handler())
	defer srv.Close()
	c, err := docspace.New(docspace.Options{BaseURL: srv.URL, AllowHTTP: true, Keys: modelKeys(modelKey), MaxAttempts: 1, Timeout: modelTimeout})
	if err != nil {
		return "setup: " + err.Error()
	}
	portal := &recordingPortal{Client: c, dev: dev, applied: map[string]bool{}}
	st := onboardtest.NewStore()
	now := time.Now().UTC().Truncate(time.Second)
	svc := &onboard.Service{Store: st, Portal: portal, Leases: &leasetest.Backend{}, LeaseWait: 5 * time.Second,
		WriteAttempt: modelTimeout,
		Settings:     onboard.Settings{MaxRangeAddresses: 256, Enforce: true, Limits: allowlist.DefaultLimits},
		Now:          func() time.Time { return now }}

	users := onboard.ModelUsers{}
	manual := map[string]int{}
	var mmu sync.Mutex // manual is also written by afterPut
	countManual := func() map[string]int {
		list, _ := dev.Restrictions()
		n := map[string]int{}
		for _, r := range list {
			if strings.HasPrefix(r.IP, "198.51.100.") && !r.ForAdmin {
				n[r.IP]++
			}
		}
		return n
	}
	adminEdit := func(add bool, a string) {
		list, on := dev.Restrictions()
		mmu.Lock()
		defer mmu.Unlock()
		if add {
			dev.SetRestrictions(append(list, ipguard.Restriction{IP: a}), on)
			manual[a]++
			return
		}
		if i := slices.Index(list, ipguard.Restriction{IP: a}); i >= 0 {
			dev.SetRestrictions(slices.Delete(list, i, i+1), on)
			manual[a]--
		}
	}
	request := func(s onboard.ModelStep) error {
		_, err := svc.Handle(ctx, []byte(onboard.ModelRequest(s, now)))
		return onboard.ModelAnswered(users, s, now, err)
	}
	sync := func() { _, _ = svc.Handle(ctx, []byte(`{"action":"sync"}`)) }
	converge := func() string {
		dev.ClearFaults()
		portal.mu.Lock()
		portal.afterPut = nil
		portal.mu.Unlock()
		st.BumpErrs = 0
		time.Sleep(modelApplyLate * 3) // a late PUT still in flight lands first
		for range onboard.ModelSyncBound {
			sync()
		}
		want := onboard.ModelActive(users, now)
		list, _ := dev.Restrictions()
		have := map[string]bool{}
		for _, r := range list {
			if !r.ForAdmin && strings.HasPrefix(r.IP, "203.0.113.") {
				have[r.IP] = true
			}
		}
		for a := range want {
			if !have[a] {
				return fmt.Sprintf("after %d syncs without faults the portal lacks desired %s (portal %v)", onboard.ModelSyncBound, a, list)
			}
		}
		for a := range have {
			if !want[a] {
				return fmt.Sprintf("after %d syncs without faults the portal still allows %s, which no user needs (portal %v)", onboard.ModelSyncBound, a, list)
			}
		}
		return ""
	}
	putFault := func(f devportal.Fault) {
		f.Method, f.Path = "PUT", restrictPath
		dev.InjectFault(f)
	}

	latePending := false // a late PUT fault is armed and may not have landed yet
	for i, s := range seq {
		before := countManual()
		switch s.Kind {
		case "replace", "add", "remove", "offboard":
			if err := request(s); err != nil {
				return fmt.Sprintf("step %d: %v", i+1, err)
			}
			dev.ClearFaults() // "put-down" lasts one request; an unused fault goes with it
		case "sync":
			sync()
		case "tick":
			now = now.Add(time.Duration(s.N) * time.Minute)
		case "admin-add":
			adminEdit(true, onboard.ModelManualAddr(s.Addr[0]))
		case "admin-remove":
			adminEdit(false, onboard.ModelManualAddr(s.Addr[0]))
		case "admin-during-write":
			a := onboard.ModelManualAddr(s.Addr[0])
			portal.mu.Lock()
			portal.afterPut = func() { adminEdit(true, a) }
			portal.mu.Unlock()
		case "late":
			putFault(devportal.Fault{Times: 1, ApplyLate: modelApplyLate})
			latePending = true
		case "refuse":
			putFault(devportal.Fault{Times: 1, Status: 400})
		case "lost-answer":
			putFault(devportal.Fault{Times: 1, Malformed: true})
		case "read-fails":
			dev.InjectFault(devportal.Fault{Method: "GET", Path: restrictPath, Times: 1, Status: 503})
		case "put-down":
			putFault(devportal.Fault{Status: 503})
		case "bump-lost":
			st.BumpErrs = 1
		}
		// A PUT that timed out lands now, at the end of the step.
		if latePending && (s.Kind == "replace" || s.Kind == "add" || s.Kind == "remove" || s.Kind == "offboard" || s.Kind == "sync") {
			time.Sleep(modelApplyLate * 3)
			latePending = s.Kind == "sync" // a request step cleared the fault had it not fired
		}
		portal.observe()
		// Promise: the stored users are what the requests asked for.
		if broken := onboard.ModelStored(ctx, users, st, now); broken != "" {
			return fmt.Sprintf("step %d (%s): %s", i+1, s, broken)
		}
		// Promise: a manual entry is never removed by the tool.
		if s.Kind != "admin-remove" {
			after := countManual()
			mmu.Lock()
			for a, n := range before {
				if after[a] < min(n, manual[a]) {
					mmu.Unlock()
					return fmt.Sprintf("step %d (%s): the tool removed the admin's %s (%d before, %d after)", i+1, s, a, n, after[a])
				}
			}
			mmu.Unlock()
		}
		// Promise: nothing is owned that a PUT of the tool did not bring
		// onto the portal.
		state, _ := st.PortalState(ctx)
		portal.mu.Lock()
		for _, a := range state.Owned {
			if !portal.applied[a] {
				portal.mu.Unlock()
				return fmt.Sprintf("step %d (%s): %s is owned but no PUT of the tool ever brought it onto the portal", i+1, s, a)
			}
		}
		portal.mu.Unlock()
		if (i+1)%25 == 0 {
			if f := converge(); f != "" {
				return fmt.Sprintf("step %d: %s", i+1, f)
			}
			latePending = false
		}
	}
	if f := converge(); f != "" {
		return "at the end: " + f
	}
	return ""
}

// rotatingKeys hands out the old key until rotated is set, then the new one
// (the secret was rotated and the container's cache ran out meanwhile).
type rotatingKeys struct {
	mu       sync.Mutex
	old, new string
	rotated  bool
}

func (k *rotatingKeys) Key(context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.rotated {
		return k.new, nil
	}
	return k.old, nil
}

// Invalidate is the cache dropped after a 401 (the secret is read again).
func (k *rotatingKeys) Invalidate() {}

// The lock-out preflight judges the key the switch-on is sent with: a key
// rotated to a non-owner's after the preflight's answer never switches
// restrictions on (attack review, #15 §5: the preflight's answer is not
// used past a key change), whether the container's cache ran out before
// the PUT or the old key, deactivated, was refused (401) and the client
// would send the PUT again with the fresh key. Before, the preflight judged
// the owner's key and the PUT that switched restrictions on went out with
// the admin's, whom the allowlist does not exempt: the tool locked itself
// out.
func TestSwitchOnIsSentWithTheKeyThePreflightJudged(t *testing.T) {
	const (
		ownerKey = "sk-owner0123456789abcdef0123456789abcdef0123456789abcdef01234567"
		adminKey = "sk-admin0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	)
	for _, tc := range []struct {
		name       string
		after      string // the rotation happens right after this call (path suffix)
		deactivate bool   // and the old key stops working
	}{
		{"the cache runs out after keys/@self", "/keys/@self", false},
		{"the old key is deactivated after the creator's check", "/people/" + devportal.OwnerID, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := devportal.New(devportal.Options{AdminKeys: []string{ownerKey}})
			if err := dev.PutUsers(devportal.User{ID: modelAdmin, Status: devportal.StatusActive, IsAdmin: true}); err != nil {
				t.Fatal(err)
			}
			if err := dev.PutKey(devportal.APIKey{Key: adminKey, CreateBy: modelAdmin, IsActive: true}); err != nil {
				t.Fatal(err)
			}
			dev.SetRestrictions(nil, false)
			keys := &rotatingKeys{old: ownerKey, new: adminKey}
			var mu sync.Mutex
			var switchedOnWith []string
			h := dev.Handler()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, restrictPath) {
					body, _ := io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(body))
					if bytes.Contains(body, []byte(`"enable":true`)) {
						mu.Lock()
						switchedOnWith = append(switchedOnWith, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
						mu.Unlock()
					}
				}
				h.ServeHTTP(w, r)
				keys.mu.Lock()
				rotate := !keys.rotated && strings.HasSuffix(strings.ToLower(r.URL.Path), strings.ToLower(tc.after))
				if rotate {
					keys.rotated = true
				}
				keys.mu.Unlock()
				if rotate && tc.deactivate {
					k, _ := dev.Key(ownerKey)
					k.IsActive = false
					if err := dev.PutKey(k); err != nil {
						t.Error(err)
					}
				}
			}))
			defer srv.Close()
			c, err := docspace.New(docspace.Options{BaseURL: srv.URL, AllowHTTP: true, Keys: keys, MaxAttempts: 1, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			svc := &onboard.Service{Store: onboardtest.NewStore(), Portal: c, Leases: &leasetest.Backend{}, LeaseWait: 5 * time.Second,
				Directory: docspace.Directory{Client: c},
				Settings:  onboard.Settings{MaxRangeAddresses: 256, Enforce: true, Limits: allowlist.DefaultLimits}}
			_, _ = svc.Handle(context.Background(), []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`))
			keys.mu.Lock()
			rotated := keys.rotated
			keys.mu.Unlock()
			if !rotated {
				t.Fatalf("the key was never rotated (no call to %s): the test tests nothing", tc.after)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range switchedOnWith {
				if k != ownerKey {
					t.Errorf("restrictions were switched on with the rotated key (created by an admin, not the owner), which the preflight never judged")
				}
			}
		})
	}
}

// publishFunc is an alert topic that hands each alert to the function.
type publishFunc func(ipguard.Alert)

func (f publishFunc) Publish(_ context.Context, a ipguard.Alert) (string, error) {
	f(a)
	return "m", nil
}

// Through the real DocSpace client against the dev portal whose audit trail
// lags as a real DocSpace's (PUT /_dev/auditlag: a save shows a minute
// later): an admin's save inside the tool's write is not in the trail when
// the write is checked right after, and the first sync once the trail
// caught up alerts it as drift, naming the admin, with the list the tool
// read before its write (#15 §5). Before, nothing looked again.
func TestOverwrittenSaveIsAlertedOnceTheDevPortalsTrailCaughtUp(t *testing.T) {
	dev, srv := laggingDevPortal(t, []ipguard.Restriction{{IP: "198.51.100.7"}})
	c, err := docspace.New(docspace.Options{BaseURL: srv.URL, AllowHTTP: true, Keys: modelKeys(modelKey), MaxAttempts: 1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now, later := time.Now().UTC().Truncate(time.Second), time.Duration(0)
	var mu sync.Mutex
	var sent []ipguard.Alert
	alerts := publishFunc(func(a ipguard.Alert) { mu.Lock(); sent = append(sent, a); mu.Unlock() })
	svc := &onboard.Service{Store: onboardtest.NewStore(), Portal: c, Trail: docspace.AllowlistTrail{Client: c}, Directory: docspace.Directory{Client: c},
		Alerts: alerts, Leases: &leasetest.Backend{}, LeaseWait: 5 * time.Second,
		Settings: onboard.Settings{MaxRangeAddresses: 256, Limits: allowlist.DefaultLimits},
		Now:      func() time.Time { return now.Add(later) }}
	// The admin's save, in the second the tool's window begins.
	dev.AddAuditEvents(devportal.AuditEvent{Date: now, UserID: "bbbbbbbb-2222-4222-8222-0000000000b2", User: "Ada Admin", ActionID: 6094, IP: "192.0.2.66"})
	ctx := context.Background()
	if _, err := svc.Handle(ctx, []byte(`{"id":"u1","email":"a@example.com","allowedIps":["203.0.113.10"]}`)); err != nil {
		t.Fatal(err)
	}
	drift := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, a := range sent {
			if slices.Contains(a.Kinds, "allowlist_drift") {
				out = append(out, a.Email)
			}
		}
		return out
	}
	if got := drift(); len(got) != 0 {
		t.Fatalf("drift alerted before the trail could show the save: %q", got)
	}
	later = 3 * time.Minute
	dev.SetClockSkew(later)
	if _, err := svc.Handle(ctx, []byte(`{"action":"sync"}`)); err != nil {
		t.Fatal(err)
	}
	got := drift()
	if len(got) != 1 || !strings.Contains(got[0], "Ada Admin") || !strings.Contains(got[0], "overwrote") || !strings.Contains(got[0], "198.51.100.7") {
		t.Errorf("drift alerts once the trail caught up: %q; want the admin's overwritten save, with the list the tool read", got)
	}
}

// TestTwoContainersOnboardingWhileTheTrailLagsAlertTheAdminOnce: two
// containers (two Services sharing one store and lease) onboard at once
// through the real client while the dev portal's trail lags, and an admin
// saves in the second their windows begin. Once the trail caught up, the
// sync alerts that save once, naming the admin (made safe to read), never
// the tool, with the list read before the write and its full count, and
// without the API key.
func TestTwoContainersOnboardingWhileTheTrailLagsAlertTheAdminOnce(t *testing.T) {
	var seed []ipguard.Restriction
	for i := range 55 {
		seed = append(seed, ipguard.Restriction{IP: fmt.Sprintf("198.51.100.%d", i+1)})
	}
	dev, srv := laggingDevPortal(t, seed)
	now, later := time.Now().UTC().Truncate(time.Second), time.Duration(0)
	var mu sync.Mutex
	var sent []ipguard.Alert
	alerts := publishFunc(func(a ipguard.Alert) { mu.Lock(); sent = append(sent, a); mu.Unlock() })
	// One clock for both, a microsecond on at each reading (two
	// containers' clocks never give the same instant to two windows).
	tick := time.Duration(0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); tick += time.Microsecond; return now.Add(later + tick) }
	store, leases := onboardtest.NewStore(), &leasetest.Backend{}
	svcs := make([]*onboard.Service, 2)
	for i := range svcs {
		c, err := docspace.New(docspace.Options{BaseURL: srv.URL, AllowHTTP: true, Keys: modelKeys(modelKey), MaxAttempts: 1, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		svcs[i] = &onboard.Service{Store: store, Portal: c, Trail: docspace.AllowlistTrail{Client: c}, Directory: docspace.Directory{Client: c},
			Alerts: alerts, Leases: leases, LeaseWait: 5 * time.Second,
			Settings: onboard.Settings{MaxRangeAddresses: 256, Limits: allowlist.DefaultLimits},
			Now:      clock}
	}
	const admin = "bbbbbbbb-2222-4222-8222-0000000000b2"
	dev.AddAuditEvents(devportal.AuditEvent{Date: now, UserID: admin, User: "Ada\n\x1b[31mAdmin\u202e", ActionID: 6094, IP: "192.0.2.66"})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, len(svcs))
	for i, svc := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = svc.Handle(ctx, fmt.Appendf(nil, `{"id":"u%d","email":"u%d@example.com","allowedIps":["203.0.113.%d"]}`, i, i, 10+i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	drift := func() []ipguard.Alert {
		mu.Lock()
		defer mu.Unlock()
		var out []ipguard.Alert
		for _, a := range sent {
			if slices.Contains(a.Kinds, "allowlist_drift") {
				out = append(out, a)
			}
		}
		return out
	}
	if got := drift(); len(got) != 0 {
		t.Fatalf("drift alerted before the trail could show the save: %q", got[0].Email)
	}

	mu.Lock()
	later = 3 * time.Minute
	mu.Unlock()
	dev.SetClockSkew(later)
	for _, svc := range svcs {
		if _, err := svc.Handle(ctx, []byte(`{"action":"sync"}`)); err != nil {
			t.Fatal(err)
		}
	}
	got := drift()
	if len(got) != 1 {
		t.Fatalf("drift alerts once the trail caught up: %d, want 1: %v", len(got), got)
	}
	email := got[0].Email
	for _, want := range []string{"by Ada", "Admin", admin, "192.0.2.66", "overwrote", "(55 entries)", "... and 5 more", "198.51.100.1"} {
		if !strings.Contains(email, want) {
			t.Errorf("the alert does not say %q:\n%s", want, email)
		}
	}
	for _, a := range []string{got[0].Email, got[0].Default, got[0].SMS, got[0].Subject} {
		if strings.Contains(a, modelAdmin) || strings.Contains(a, modelKey) || strings.ContainsAny(a, "\x1b\u202e") {
			t.Errorf("the alert names the tool's user, carries the key or an unsafe character: %q", a)
		}
	}
}

// laggingDevPortal is the dev portal holding list (restrictions off), its
// audit trail a minute late, served until the test ends; the key is the
// model's.
func laggingDevPortal(t *testing.T, list []ipguard.Restriction) (*devportal.Portal, *httptest.Server) {
	t.Helper()
	dev := devportal.New(devportal.Options{})
	if err := dev.PutUsers(devportal.User{ID: modelAdmin, Status: devportal.StatusActive, IsAdmin: true}); err != nil {
		t.Fatal(err)
	}
	if err := dev.PutKey(devportal.APIKey{Key: modelKey, CreateBy: modelAdmin, IsActive: true}); err != nil {
		t.Fatal(err)
	}
	dev.SetRestrictions(list, false)
	dev.SetAuditLag(time.Minute)
	srv := httptest.NewServer(dev.Handler())
	t.Cleanup(srv.Close)
	return dev, srv
}
