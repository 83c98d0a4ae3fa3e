package samtemplate

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// cfnLint runs cfn-lint 1.51 on path with the informational rules included
// (-c I: e.g. I3011, an explicit DeletionPolicy on stateful resources), the
// way `make lint` does.
func cfnLint(t *testing.T, path string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs cfn-lint (make test runs it)")
	}
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal("cfn-lint is not on PATH: install it with `pip install cfn-lint==1.51.0`")
	}
	cmd := exec.Command(bin, "-c", "I", "--", filepath.Base(path))
	cmd.Dir = filepath.Dir(path)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("cfn-lint -c I %s: %v\n%s", path, err, out)
	}
}

func TestTemplatePassesCfnLintWithInformationalRules(t *testing.T) {
	cfnLint(t, templatePath(t))
}

// The plain CloudFormation SAM makes of it (roles, schedules, invoke
// configs) is held to the same rules.
func TestTranslatedTemplatePassesCfnLintWithInformationalRules(t *testing.T) {
	b, err := json.MarshalIndent(cfn(t), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "translated.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfnLint(t, path)
}
