package devportal

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every control route the dev portal serves is documented in
// docs/dev-portal.md, and every route documented there is served.
func TestControlEndpointsAreDocumented(t *testing.T) {
	code, err := os.ReadFile("control.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../../docs/dev-portal.md")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{"GET /_dev/sessions/{id}": true} // the one route matched by prefix
	for _, m := range regexp.MustCompile(`case "([A-Z]+ /_dev/[a-z/]+)":`).FindAllStringSubmatch(string(code), -1) {
		served[m[1]] = true
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`([A-Z]+ /_dev/[a-z/{}]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	if len(served) < 20 {
		t.Fatalf("found only %d routes in control.go", len(served))
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("%s is served but not in docs/dev-portal.md", r)
		}
	}
	for r := range documented {
		if !served[r] && !strings.Contains(r, "{") {
			t.Errorf("docs/dev-portal.md lists %s, which the portal does not serve", r)
		}
	}
}
