package samtemplate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// checkParameter returns why value does not satisfy the parameter's declared constraints
// (what CloudFormation checks at deploy time), or "" when it does.
func checkParameter(param map[string]any, value string) string {
	if p, ok := param["AllowedPattern"].(string); ok {
		re, err := regexp.Compile(`^(?:` + p + `)$`)
		if err != nil {
			return fmt.Sprintf("AllowedPattern %q does not compile: %v", p, err)
		}
		if !re.MatchString(value) {
			return fmt.Sprintf("%q does not match AllowedPattern %q", value, p)
		}
	}
	if allowed, ok := param["AllowedValues"].([]any); ok {
		values := []string{value}
		if param["Type"] == "CommaDelimitedList" { // CloudFormation checks each element
			values = strings.Split(value, ",")
		}
		for _, v := range values {
			found := false
			for _, a := range allowed {
				found = found || fmt.Sprint(a) == v
			}
			if !found {
				return fmt.Sprintf("%q is not one of AllowedValues %v", v, allowed)
			}
		}
	}
	if param["Type"] == "Number" {
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Sprintf("%q is not a number", value)
		}
		if lo, ok := param["MinValue"].(float64); ok && n < lo {
			return fmt.Sprintf("%v is below MinValue %v", n, lo)
		}
		if hi, ok := param["MaxValue"].(float64); ok && n > hi {
			return fmt.Sprintf("%v is above MaxValue %v", n, hi)
		}
	}
	return ""
}

func parameters(t *testing.T) map[string]any {
	t.Helper()
	ps := mapOf(cfn(t)["Parameters"])
	if len(ps) == 0 {
		t.Fatal("translated template has no Parameters")
	}
	return ps
}

func TestParameterDefaultsSatisfyTheirConstraints(t *testing.T) {
	for name, p := range parameters(t) {
		p := mapOf(p)
		def, ok := p["Default"]
		if !ok {
			continue
		}
		if why := checkParameter(p, fmt.Sprint(def)); why != "" {
			t.Errorf("parameter %s default: %s", name, why)
		}
	}
}

var (
	overridesLine = regexp.MustCompile(`(?m)^parameter_overrides\s*=\s*("(?:[^"\\]|\\.)*")\s*$`)
	overrideToken = regexp.MustCompile(`^(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))(?:\s+|$)`)
)

// samconfigOverrides reads [default.deploy.parameters] parameter_overrides from samconfig.toml:
// a TOML string of Key="value" pairs separated by spaces, as `sam deploy --guided` writes it.
func samconfigOverrides(t *testing.T) map[string]string {
	t.Helper()
	path := filepath.Join(filepath.Dir(templatePath(t)), "samconfig.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := overridesLine.FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s has no parameter_overrides = \"...\" line", path)
	}
	text, err := strconv.Unquote(string(m[1]))
	if err != nil {
		t.Fatalf("%s parameter_overrides: %v", path, err)
	}
	overrides := map[string]string{}
	for rest := strings.TrimSpace(text); rest != ""; {
		tok := overrideToken.FindStringSubmatch(rest)
		if tok == nil {
			t.Fatalf("%s parameter_overrides: cannot read Key=\"value\" at %q", path, rest)
		}
		if _, dup := overrides[tok[1]]; dup {
			t.Errorf("%s parameter_overrides: %s given twice", path, tok[1])
		}
		overrides[tok[1]] = tok[2] + tok[3]
		rest = rest[len(tok[0]):]
	}
	return overrides
}

// samconfig.toml ships nothing that passes validation but cannot work (#14
// §1): every parameter without a default is left out, so that a plain `sam
// deploy` fails at once until it is given; what it does set names parameters
// the template has, with values they accept; and its rollout values are the
// template's defaults, the safe start of README "Rollout" (§7).
func TestSamconfigShipsOnlyValuesThatWork(t *testing.T) {
	params := parameters(t)
	overrides := samconfigOverrides(t)
	for name, value := range overrides {
		p, ok := params[name]
		if !ok {
			t.Errorf("samconfig.toml overrides %s, which template.yaml does not declare", name)
			continue
		}
		if why := checkParameter(mapOf(p), value); why != "" {
			t.Errorf("samconfig.toml %s: %s", name, why)
		}
		if _, hasDefault := mapOf(p)["Default"]; !hasDefault {
			t.Errorf("samconfig.toml gives %s = %q, a placeholder that deploys and then fails; leave it out so that deploying without it fails", name, value)
		}
		for _, example := range []string{"example.", "123456789012", "yourportal", "AbCdEf"} {
			if strings.Contains(value, example) {
				t.Errorf("samconfig.toml %s = %q is an example value", name, value)
			}
		}
	}
	// #21 §1: people without an allowlist go to the digest by default, also
	// for a guided deploy with the shipped samconfig.
	if v, ok := overrides["UnknownUserPolicy"]; ok && v != fmt.Sprint(mapOf(params["UnknownUserPolicy"])["Default"]) {
		t.Errorf("samconfig.toml UnknownUserPolicy = %s, want the template's default %v", v, mapOf(params["UnknownUserPolicy"])["Default"])
	}
	for name, want := range map[string]string{"PortalEnforce": "false", "EnforcementMode": "report"} {
		if def := fmt.Sprint(mapOf(params[name])["Default"]); def != want {
			t.Errorf("%s defaults to %s, want %s (restrictions off, report only, until README \"Rollout\")", name, def, want)
		}
		if v, ok := overrides[name]; ok && v != want {
			t.Errorf("samconfig.toml %s = %s, want %s, the template's default and the rollout's start", name, v, want)
		}
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(templatePath(t)), "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "example.com") || strings.Contains(string(data), "123456789012") {
		t.Error("samconfig.toml holds an example address or account")
	}
}

// The guided deploy and the console show the parameters grouped (#14 §7):
// every parameter in exactly one group, and the first group holds every
// parameter without a safe default.
func TestParametersAreGroupedAndTheFirstGroupIsWhatHasNoDefault(t *testing.T) {
	iface := mapOf(mapOf(cfn(t)["Metadata"])["AWS::CloudFormation::Interface"])
	groups := asList(iface["ParameterGroups"])
	if len(groups) == 0 {
		t.Fatal("no AWS::CloudFormation::Interface ParameterGroups")
	}
	params := parameters(t)
	seen := map[string]int{}
	for i, g := range groups {
		g := mapOf(g)
		if textOf(mapOf(g["Label"])["default"]) == "" {
			t.Errorf("group %d has no label", i)
		}
		for _, p := range asList(g["Parameters"]) {
			seen[textOf(p)]++
			if _, ok := params[textOf(p)]; !ok {
				t.Errorf("group %d names %v, which is not a parameter", i, p)
			}
			if _, hasDefault := mapOf(params[textOf(p)])["Default"]; !hasDefault && i != 0 {
				t.Errorf("%v has no default but sits in group %d, not the first", p, i)
			}
		}
	}
	for name := range params {
		if seen[name] != 1 {
			t.Errorf("parameter %s is in %d groups, want 1", name, seen[name])
		}
	}
}

func TestCheckParameter(t *testing.T) {
	phone := map[string]any{"Type": "String", "AllowedPattern": `^(\+[1-9][0-9]{1,14})?$`}
	level := map[string]any{"Type": "String", "AllowedValues": []any{"debug", "info"}}
	count := map[string]any{"Type": "Number", "MinValue": 1.0, "MaxValue": 65536.0}
	tests := []struct {
		param map[string]any
		value string
		ok    bool
	}{
		{phone, "", true},
		{phone, "+15551234567", true},
		{phone, "5551234567", false},
		{phone, "+1555 1234567", false},
		{level, "info", true},
		{level, "trace", false},
		{count, "256", true},
		{count, "0", false},
		{count, "65537", false},
		{count, "many", false},
	}
	for _, tt := range tests {
		if why := checkParameter(tt.param, tt.value); (why == "") != tt.ok {
			t.Errorf("checkParameter(%v, %q) = %q, want ok=%v", tt.param, tt.value, why, tt.ok)
		}
	}
}

// `sam deploy --guided` asks for the parameters in the template's order: the
// ones without a safe default come first, before the ones to press Enter on.
func TestParametersWithoutDefaultComeFirst(t *testing.T) {
	data, err := os.ReadFile(templatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	params := lookup(doc.Content[0], "Parameters")
	if params == nil {
		t.Fatal("no Parameters")
	}
	seenDefault := ""
	for i := 0; i+1 < len(params.Content); i += 2 {
		name, p := params.Content[i].Value, params.Content[i+1]
		if lookup(p, "Default") != nil {
			if seenDefault == "" {
				seenDefault = name
			}
			continue
		}
		if seenDefault != "" {
			t.Errorf("%s has no default but comes after %s, which has one", name, seenDefault)
		}
	}
}
