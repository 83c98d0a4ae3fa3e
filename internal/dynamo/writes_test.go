package dynamo

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"ipguard/internal/audit"
	"ipguard/internal/onboard"
)

// keyConstants are the string constants of this package's non-test files
// that name an item key or a key prefix (they hold a "#").
func keyConstants(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := map[string]string{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					s, _ := strconv.Unquote(lit.Value)
					if strings.Contains(s, "#") {
						found[vs.Names[i].Name] = s
					}
				}
			}
		}
	}
	return found
}

// covered reports whether a key or prefix is writable under the patterns.
func covered(key string, patterns []string) bool {
	for _, p := range patterns {
		if strings.HasSuffix(key, "#") && strings.HasPrefix(p, key) {
			return true // a prefix: some (or all) of its items
		}
		if ok, _ := path.Match(p, key); ok {
			return true
		}
	}
	return false
}

// Every kind of item the code writes is in a function's write list
// (WHERE-ISSUES-MEET §16): a new key constant fails here until it is given
// to the function that writes it, and so to its IAM condition.
func TestEveryKeyConstantIsWritableByAFunction(t *testing.T) {
	consts := keyConstants(t)
	if len(consts) < 10 {
		t.Fatalf("found only %d key constants (%v): is the parse still right?", len(consts), consts)
	}
	for name, key := range consts {
		if !covered(key, AuditWrites) && !covered(key, OnboardWrites) {
			t.Errorf("key constant %s = %q is writable by no function: add it to AuditWrites or OnboardWrites, and to template.yaml", name, key)
		}
	}
}

// No item is writable by both: the audit's role cannot reach onboarding's
// items (users, the portal state, its lease) nor the other way round. The
// one exception is the portal's request budget, shared by design (#17): its
// windows count requests, they change nothing on the portal or in a user.
func TestNoItemIsWritableByBothFunctions(t *testing.T) {
	for _, a := range AuditWrites {
		for _, o := range OnboardWrites {
			if a == budgetPrefix+"*" && o == a {
				continue
			}
			ma, _ := path.Match(a, strings.TrimSuffix(o, "*"))
			mo, _ := path.Match(o, strings.TrimSuffix(a, "*"))
			if a == o || ma || mo {
				t.Errorf("audit pattern %q and onboarding pattern %q overlap", a, o)
			}
		}
	}
}

func TestLeaseWritesNameTheLeasesTheServicesTake(t *testing.T) {
	if !slices.Contains(AuditWrites, leasePrefix+audit.LeaseName) || !slices.Contains(OnboardWrites, leasePrefix+onboard.LeaseName) {
		t.Errorf("AuditWrites %v / OnboardWrites %v lack the leases %q / %q", AuditWrites, OnboardWrites, audit.LeaseName, onboard.LeaseName)
	}
}

// The README's IAM paragraph names every item each role may write.
func TestReadmeNamesEveryWritableItem(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	a := strings.Index(text, "**write only its own items**")
	b := strings.Index(text[max(a, 0):], "A compromised audit")
	if a < 0 || b < 0 {
		t.Fatal("README.md has no IAM paragraph (**write only its own items** ... A compromised audit)")
	}
	list := text[a : a+b]
	for _, w := range append(append([]string{}, AuditWrites...), OnboardWrites...) {
		if k := "`" + strings.TrimSuffix(w, "*") + "`"; !strings.Contains(list, k) {
			t.Errorf("README.md's IAM list lacks %s", k)
		}
	}
}
