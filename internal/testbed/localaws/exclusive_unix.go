//go:build unix

package localaws

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Exclusive makes the calling test the only one, among the tests on this
// machine that call Exclusive with the same name, to run until it ends (a
// lock file in the temporary directory, released by the test's cleanup).
// Use it for tests that load the machine (many emulators) and for tests
// whose deadlines such a load would break, so that go test's parallel
// packages do not run them at the same time.
func Exclusive(t testing.TB, name string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "ipguard-"+name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("exclusive %s: %v", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("exclusive %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
