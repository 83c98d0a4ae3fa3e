package wiring

import (
	"os/exec"
	"strings"
	"testing"

	"ipguard/internal/testbed/localaws"
)

// The Lambda binaries never reach the test infrastructure: nothing under
// functions/ imports, directly or not, a package under internal/testbed
// (the dev portal, the moto and emulator starters, the local stack, the
// template reader, the integration and end-to-end suites), nor the shared
// in-memory fakes and their contracts (package names ending in "test" or
// "contract").
func TestFunctionsDoNotReachTheTestbed(t *testing.T) {
	root, err := localaws.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "./functions/...")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./functions/...: %v\n%s", err, out)
	}
	n := 0
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "ipguard/") {
			n++
		}
		if strings.HasPrefix(pkg, "ipguard/internal/testbed") {
			t.Errorf("functions/ reaches %s", pkg)
		}
		if strings.HasPrefix(pkg, "ipguard/") && (strings.HasSuffix(pkg, "test") || strings.HasSuffix(pkg, "contract")) {
			t.Errorf("functions/ reaches the test fake %s (leasetest, audittest, onboardtest, enforcetest are for tests)", pkg)
		}
	}
	if n < 5 {
		t.Fatalf("go list named only %d packages of this module: %s", n, out)
	}
}
