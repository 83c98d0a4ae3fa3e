package samtemplate

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The maps a newcomer reads first match the tree (#19): DEVELOPERS.md's
// layout table has a row for every package, and each row's "may import"
// names every package of this module the package imports (unless it says
// "everything" or names kinds of package); the README's code layout
// paragraph names every package too; neither names a package that is not
// in the tree.
func TestLayoutNamesEveryPackage(t *testing.T) {
	root := filepath.Dir(templatePath(t))
	imports := modulePackages(t, root)
	dev, err := os.ReadFile(filepath.Join(root, "DEVELOPERS.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := layoutRows(t, string(dev))
	for pkg, imps := range imports {
		may, ok := rows[pkg]
		if !ok {
			t.Errorf("DEVELOPERS.md's layout table has no row for %s", pkg)
			continue
		}
		if strings.Contains(may, "everything") || strings.Contains(may, "harnesses") || strings.Contains(may, "domain packages") {
			continue
		}
		for _, imp := range imps {
			if !namesPackage(may, imp) {
				t.Errorf("DEVELOPERS.md: %s imports %s, but its row says it may import %q", pkg, imp, may)
			}
		}
	}

	for row := range rows {
		if !inTree(root, row) {
			t.Errorf("DEVELOPERS.md's layout table has a row for %s, which is not in the tree", row)
		}
	}

	text := readme(t)
	a := strings.Index(text, "Code layout (see `DEVELOPERS.md`")
	if a < 0 {
		t.Fatal("README.md has no paragraph starting \"Code layout (see `DEVELOPERS.md`\"")
	}
	para, _, _ := strings.Cut(text[a:], "\n\n")
	named := backticked(para)
	for pkg := range imports {
		if !namedIn(named, pkg) {
			t.Errorf("README's code layout paragraph does not name %s", pkg)
		}
	}
	for _, s := range named {
		if p := strings.TrimSuffix(s, "/main.go"); strings.HasPrefix(p, "internal/") || strings.HasPrefix(p, "cmd/") {
			if !inTree(root, p) {
				t.Errorf("README's code layout paragraph names %s, which is not in the tree", s)
			}
		}
	}
}

// inTree reports whether the path p (a package or a folder of packages,
// with an optional trailing slash; a pattern such as functions/* counts
// when it matches one) is a folder under root.
func inTree(root, p string) bool {
	matches, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(p, "/"))))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// modulePackages returns each package of the module (its path inside the
// module) with the module's packages it imports, outside tests.
func modulePackages(t *testing.T, root string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, ok := strings.CutPrefix(f[0], "ipguard/")
		if !ok {
			continue
		}
		pkgs[pkg] = nil
		for _, imp := range f[1:] {
			if rel, ok := strings.CutPrefix(imp, "ipguard/"); ok {
				pkgs[pkg] = append(pkgs[pkg], rel)
			}
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list named only %d packages: %s", len(pkgs), out)
	}
	return pkgs
}

// layoutRows reads the "## Layout" table: every package path in a row's
// first column, to the row's last column.
func layoutRows(t *testing.T, dev string) map[string]string {
	t.Helper()
	a := strings.Index(dev, "## Layout")
	if a < 0 {
		t.Fatal(`DEVELOPERS.md has no "## Layout" section`)
	}
	section, _, _ := strings.Cut(dev[a+len("## Layout"):], "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(line, "| `") {
			continue
		}
		may := strings.TrimSpace(cells[len(cells)-2])
		for _, p := range backticked(cells[1]) {
			p = strings.TrimSuffix(strings.TrimSuffix(p, "/main.go"), "/")
			rows[p] = may
		}
	}
	return rows
}

// backticked returns the `code` spans of s.
func backticked(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// namesPackage reports whether the text of a "may import" cell names pkg,
// by its path below internal/ (or below internal/testbed/).
func namesPackage(may, pkg string) bool {
	for _, name := range []string{strings.TrimPrefix(pkg, "internal/"), strings.TrimPrefix(pkg, "internal/testbed/")} {
		if regexp.MustCompile(`(^|[\s,(])` + regexp.QuoteMeta(name) + `($|[\s,)])`).MatchString(may) {
			return true
		}
	}
	return false
}

// namedIn reports whether one of the code spans names pkg: its path, that
// path below internal/ or internal/testbed/, or a pattern such as
// `functions/*/main.go` that matches it.
func namedIn(spans []string, pkg string) bool {
	for _, s := range spans {
		s = strings.TrimSuffix(s, "/main.go")
		if s == pkg || "internal/"+s == pkg || "internal/testbed/"+s == pkg {
			return true
		}
		if ok, _ := path.Match(s, pkg); ok && strings.Contains(s, "*") {
			return true
		}
	}
	return false
}
