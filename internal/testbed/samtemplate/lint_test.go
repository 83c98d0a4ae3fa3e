package samtemplate

import (
	"os/exec"
	"path/filepath"
	"testing"
)

func TestTemplatePassesCfnLint(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs cfn-lint (make test runs it)")
	}
	path := templatePath(t)
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal("cfn-lint is not on PATH: install it with `pip install cfn-lint==1.51.0`")
	}
	cmd := exec.Command(bin, "--", filepath.Base(path))
	cmd.Dir = filepath.Dir(path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cfn-lint %s: %v\n%s", path, err, out)
	}
}
