package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ipguard/internal/audit"
	"ipguard/internal/testbed/devportal"
)

// BenchmarkAuditPeakRSS100kEvents runs the real audit bootstrap under the
// Lambda emulator over a window of 100,000 login events from the dev portal
// (moto for DynamoDB and SNS) and reports the bootstrap's peak resident set
// (VmHWM of its process, Linux) and the run's time. The memory target is
// 64 MB: the walk evaluates and commits the window in pieces, so memory
// does not grow with the window. It takes about a minute and a half (the
// run keeps to the portal's rate ceiling): run it with make bench.
func BenchmarkAuditPeakRSS100kEvents(b *testing.B) {
	const events = 100_000
	for b.Loop() {
		s := deploy(b)
		end := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
		evs := make([]devportal.LoginEvent, events)
		for i := range evs {
			ip := "203.0.113.10"
			if i%1000 == 0 {
				ip = "192.0.2.77" // 100 violations along the way
			}
			evs[i] = janeLogin(end.Add(-time.Duration(i)*time.Second), ip)
		}
		s.Portal.AddLoginEvents(evs...)
		onboardJane(b, s)
		fn := startFunctionTimeout(b, "audit", s.FunctionEnv("AUDIT_LOOKBACK=30h", "PORTAL_REQUESTS_PER_MINUTE=1500"), "300")
		res := measuredAudit(b, fn, end)
		if res.EventsScanned != events || !res.Complete || res.Counts[audit.KindIPNotAllowed] != 100 {
			b.Fatalf("result %s: want all %d events scanned, complete, 100 violations", jsonText(res), events)
		}
	}
}

// measuredAudit runs one scheduled audit ending at end on fn, reports its
// peak RSS, duration and pages, and stops fn.
func measuredAudit(b *testing.B, fn *function, end time.Time) audit.Result {
	b.Helper()
	start := time.Now()
	var res audit.Result
	fn.invoke(b, scheduledEvent(end)).result(b, &res)
	took := time.Since(start)
	kb, err := peakRSS(fn.emu.PID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(kb)/1024, "peak-RSS-MB")
	b.ReportMetric(took.Seconds(), "run-s")
	b.ReportMetric(float64(res.PagesFetched), "pages")
	if err := fn.stop(); err != nil {
		b.Fatal(err)
	}
	return res
}

// peakRSS returns the largest VmHWM (kB) among the descendants of pid: the
// bootstrap the emulator started.
func peakRSS(pid int) (int, error) {
	pids, err := bootstrapPIDs(pid)
	if err != nil {
		return 0, err
	}
	best := 0
	for _, c := range pids {
		if kb, err := vmHWM(c); err == nil {
			best = max(best, kb)
		}
	}
	return best, nil
}

// bootstrapPIDs are the bootstrap processes under pid (the emulator).
func bootstrapPIDs(pid int) ([]int, error) {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	if len(stats) == 0 {
		return nil, fmt.Errorf("peak RSS: /proc is not readable; this benchmark needs Linux")
	}
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		child, _ := strconv.Atoi(strings.Fields(s)[0])
		children[ppid] = append(children[ppid], child)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c)); err == nil && filepath.Base(exe) == "bootstrap" {
				out = append(out, c)
			}
			walk(c)
		}
	}
	walk(pid)
	if len(out) == 0 {
		return nil, fmt.Errorf("peak RSS: no bootstrap process under the emulator (pid %d)", pid)
	}
	return out, nil
}

// bootstrapCPU is the CPU time (user and system) the bootstrap processes
// under pid have used: on a shared machine a steadier measure of the
// audit's own work than the time it took.
func bootstrapCPU(pid int) (time.Duration, error) {
	pids, err := bootstrapPIDs(pid)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, c := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		if err != nil {
			return 0, err
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			return 0, fmt.Errorf("cpu: /proc/%d/stat too short", c)
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * (time.Second / 100), nil // USER_HZ is 100 on Linux
}

func vmHWM(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// BenchmarkAuditPeakRSSCredentialStuffing is the memory target of a flood
// (issue 16 §4): one window of 500,000 failed logins from 250,000 distinct
// addresses (two each, below the burst threshold, as a credential-stuffing
// run through many proxies looks) and 100,000 normal logins, read by the
// real audit bootstrap under the Lambda emulator. It reports the
// bootstrap's peak resident set; the target is 64 MiB. It takes about five
// minutes (6,000 pages at the portal's rate ceiling): run it with make
// bench.
func BenchmarkAuditPeakRSSCredentialStuffing(b *testing.B) {
	const guestID = "712d9ec3-5d2b-4b13-824f-71f00191dcca" // the portal's guest: failed logins of unknown accounts
	const failed, normal, addrs = 500_000, 100_000, 250_000
	for b.Loop() {
		s := deploy(b)
		end := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
		evs := make([]devportal.LoginEvent, 0, failed+normal)
		for i := 0; i < failed+normal; i++ {
			at := end.Add(-time.Duration(i/10) * time.Second) // ten rows a second
			if i%6 == 5 {
				evs = append(evs, janeLogin(at, "203.0.113.10"))
				continue
			}
			a := (i - i/6) % addrs
			evs = append(evs, devportal.LoginEvent{Date: at, UserID: guestID, Login: fmt.Sprintf("victim%d@example.com", i%5000),
				ActionID: 1013, IP: fmt.Sprintf("10.%d.%d.%d", a/65536, (a/256)%256, a%256), Browser: "python-requests", Platform: "Linux"})
		}
		s.Portal.AddLoginEvents(evs...)
		evs = nil
		onboardJane(b, s)
		fn := startFunctionTimeout(b, "audit", s.FunctionEnv("AUDIT_LOOKBACK=30h", "PORTAL_REQUESTS_PER_MINUTE=1500"), "900")
		if res := measuredAudit(b, fn, end); res.EventsScanned != failed+normal || !res.Complete {
			b.Fatalf("result %s: want all %d events scanned and complete", jsonText(res), failed+normal)
		}
	}
}
