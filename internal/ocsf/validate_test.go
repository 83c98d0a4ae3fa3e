package ocsf_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"sync"
	"testing"
)

// facts are the parts of the OCSF schema (one version) the validator
// checks: per class and object, each attribute's requirement, type, array
// flag, object type and enum. testdata/compile_facts.py compiled them from
// the schema's source at the version's tag (see docs/ocsf.md).
type facts struct {
	Version string                 `json:"version"`
	Classes map[string]classFacts  `json:"classes"`
	Objects map[string]objectFacts `json:"objects"`
	Types   map[string]typeFacts   `json:"types"`
}

type classFacts struct {
	ClassUID    int                  `json:"class_uid"`
	CategoryUID int                  `json:"category_uid"`
	Attributes  map[string]attrFacts `json:"attributes"`
	Constraints constraints          `json:"constraints"`
}

type objectFacts struct {
	Attributes  map[string]attrFacts `json:"attributes"`
	Constraints constraints          `json:"constraints"`
}

// constraints are a class's or an object's rules over its attributes:
// at least one of AtLeastOne present, exactly one of JustOne.
type constraints struct {
	AtLeastOne []string `json:"at_least_one"`
	JustOne    []string `json:"just_one"`
}

type attrFacts struct {
	Requirement string `json:"requirement"`
	Type        string `json:"type"`
	IsArray     bool   `json:"is_array"`
	ObjectType  string `json:"object_type"`
	Enum        []any  `json:"enum"`
}

type typeFacts struct {
	Type   string `json:"type"` // the base type of a derived one
	Regex  string `json:"regex"`
	MaxLen int    `json:"max_len"`
}

var (
	factsOnce sync.Once
	schema    facts
	factsErr  error
)

func loadFacts(t *testing.T, version string) facts {
	t.Helper()
	factsOnce.Do(func() {
		b, err := os.ReadFile("testdata/ocsf-" + version + "-facts.json")
		if err != nil {
			factsErr = err
			return
		}
		factsErr = json.Unmarshal(b, &schema)
	})
	if factsErr != nil {
		t.Fatalf("OCSF %s schema facts: %v", version, factsErr)
	}
	return schema
}

// validate checks record (any value that encodes to a JSON object) against
// class of the facts and returns every problem found, sorted.
func validate(f facts, class string, record any) []string {
	b, err := json.Marshal(record)
	if err != nil {
		return []string{err.Error()}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return []string{err.Error()}
	}
	c, ok := f.Classes[class]
	if !ok {
		return []string{"no class " + class}
	}
	var probs []string
	v := validator{f: f, add: func(s string) { probs = append(probs, s) }}
	v.object(class, c.Attributes, m)
	v.constrained(class, c.Constraints, m)
	if n, _ := m["class_uid"].(float64); int(n) != c.ClassUID {
		v.add(fmt.Sprintf("class_uid = %v, want %d", m["class_uid"], c.ClassUID))
	}
	if n, _ := m["category_uid"].(float64); int(n) != c.CategoryUID {
		v.add(fmt.Sprintf("category_uid = %v, want %d", m["category_uid"], c.CategoryUID))
	}
	act, _ := m["activity_id"].(float64)
	if n, _ := m["type_uid"].(float64); int(n) != c.ClassUID*100+int(act) {
		v.add(fmt.Sprintf("type_uid = %v, want class_uid*100+activity_id = %d", m["type_uid"], c.ClassUID*100+int(act)))
	}
	if md, ok := m["metadata"].(map[string]any); !ok || md["version"] != f.Version {
		v.add(fmt.Sprintf("metadata.version is not %s", f.Version))
	}
	sort.Strings(probs)
	return probs
}

type validator struct {
	f   facts
	add func(string)
}

func (v validator) object(path string, attrs map[string]attrFacts, m map[string]any) {
	for name, a := range attrs {
		if a.Requirement == "required" {
			if val, ok := m[name]; !ok || val == nil {
				v.add(path + "." + name + ": required, missing")
			}
		}
	}
	for name, val := range m {
		a, ok := attrs[name]
		if !ok {
			v.add(path + "." + name + ": not an attribute of " + path)
			continue
		}
		p := path + "." + name
		if a.IsArray {
			arr, ok := val.([]any)
			if !ok {
				v.add(p + ": want an array")
				continue
			}
			for i, el := range arr {
				v.value(fmt.Sprintf("%s[%d]", p, i), a, el)
			}
			continue
		}
		v.value(p, a, val)
	}
}

func (v validator) value(p string, a attrFacts, val any) {
	if len(a.Enum) > 0 {
		found := false
		for _, e := range a.Enum {
			if fmt.Sprint(e) == fmt.Sprint(val) {
				found = true
			}
		}
		if !found {
			v.add(fmt.Sprintf("%s: %v is not in the enum %v", p, val, a.Enum))
		}
	}
	if a.Type == "object_t" {
		m, ok := val.(map[string]any)
		if !ok {
			v.add(p + ": want an object")
			return
		}
		if a.ObjectType == "object" {
			return // free-form (unmapped)
		}
		o, ok := v.f.Objects[a.ObjectType]
		if !ok {
			v.add(p + ": object type " + a.ObjectType + " unknown to the facts")
			return
		}
		v.object(p, o.Attributes, m)
		v.constrained(p, o.Constraints, m)
		return
	}
	v.scalar(p, a.Type, val)
}

// constrained checks m against its class's or object's constraints.
func (v validator) constrained(path string, c constraints, m map[string]any) {
	present := func(names []string) int {
		n := 0
		for _, name := range names {
			if val, ok := m[name]; ok && val != nil {
				n++
			}
		}
		return n
	}
	if len(c.AtLeastOne) > 0 && present(c.AtLeastOne) == 0 {
		v.add(fmt.Sprintf("%s: at least one of %v required, none present", path, c.AtLeastOne))
	}
	if len(c.JustOne) > 0 && present(c.JustOne) != 1 {
		v.add(fmt.Sprintf("%s: exactly one of %v required, %d present", path, c.JustOne, present(c.JustOne)))
	}
}

func (v validator) scalar(p, typ string, val any) {
	base, t := typ, v.f.Types[typ]
	if t.Type != "" {
		base = t.Type
	}
	switch base {
	case "json_t":
		return
	case "integer_t", "long_t", "timestamp_t", "port_t":
		n, ok := val.(float64)
		if !ok || n != math.Trunc(n) {
			v.add(fmt.Sprintf("%s: %v is not an integer (%s)", p, val, typ))
		}
	case "float_t":
		if _, ok := val.(float64); !ok {
			v.add(fmt.Sprintf("%s: %v is not a number", p, val))
		}
	case "boolean_t":
		if _, ok := val.(bool); !ok {
			v.add(fmt.Sprintf("%s: %v is not a boolean", p, val))
		}
	case "string_t":
		s, ok := val.(string)
		if !ok {
			v.add(fmt.Sprintf("%s: %v is not a string (%s)", p, val, typ))
			return
		}
		if t.MaxLen > 0 && len(s) > t.MaxLen {
			v.add(fmt.Sprintf("%s: %d bytes, more than %s's %d", p, len(s), typ, t.MaxLen))
		}
		if max := v.f.Types["string_t"].MaxLen; max > 0 && len(s) > max {
			v.add(fmt.Sprintf("%s: %d bytes, more than string_t's %d", p, len(s), max))
		}
		if t.Regex != "" {
			re, err := regexp.Compile(t.Regex)
			if err != nil {
				v.add(fmt.Sprintf("%s: the schema's %s pattern does not compile: %v", p, typ, err))
			} else if !re.MatchString(s) {
				v.add(fmt.Sprintf("%s: %q does not match %s", p, s, typ))
			}
		}
	default:
		v.add(fmt.Sprintf("%s: type %s unknown to the validator", p, typ))
	}
}
