package samtemplate

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.yaml.in/yaml/v3"
)

// TableDef is the DynamoDB table definition read from template.yaml.
type TableDef struct {
	AttributeDefinitions []AttributeDef
	KeySchema            []KeyElement // the HASH key, then the RANGE key if there is one
	BillingMode          string       // always "PAY_PER_REQUEST" when returned by Table
	TTLAttribute         string       // "" when TTL is not enabled
}

// AttributeDef is one key attribute: Type is "S", "N" or "B".
type AttributeDef struct{ Name, Type string }

// KeyElement is one part of the primary key: KeyType is "HASH" or "RANGE".
type KeyElement struct{ Name, KeyType string }

// Table reads the AWS::DynamoDB::Table resource logicalID from the template at path.
//
// CloudFormation short tags (!Ref, !GetAtt, !Sub, ...) anywhere in the template are fine,
// but the properties Table reads must be literal values. Table checks what DynamoDB and
// CloudFormation would check and what cfn-lint misses: attribute and key types, that every
// key attribute is defined and every definition used, and that BillingMode is spelt
// PAY_PER_REQUEST (the only mode supported: the local table has no provisioned capacity).
// Tables with secondary indexes are refused rather than created without them.
func Table(path, logicalID string) (TableDef, error) {
	def, err := readTable(path, logicalID)
	if err != nil {
		return TableDef{}, fmt.Errorf("%s: table %s: %w", path, logicalID, err)
	}
	return def, nil
}

func readTable(path, logicalID string) (TableDef, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return TableDef{}, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return TableDef{}, fmt.Errorf("parse YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return TableDef{}, fmt.Errorf("not a YAML document")
	}
	res := lookup(lookup(doc.Content[0], "Resources"), logicalID)
	if res == nil {
		return TableDef{}, fmt.Errorf("no such resource under Resources")
	}
	typ, err := literal(lookup(res, "Type"), "Type")
	if err != nil {
		return TableDef{}, err
	}
	if typ != "AWS::DynamoDB::Table" {
		return TableDef{}, fmt.Errorf("resource Type is %q, want AWS::DynamoDB::Table", typ)
	}
	props := lookup(res, "Properties")
	if props == nil {
		return TableDef{}, fmt.Errorf("no Properties")
	}
	for _, idx := range []string{"GlobalSecondaryIndexes", "LocalSecondaryIndexes"} {
		if lookup(props, idx) != nil {
			return TableDef{}, fmt.Errorf("%s are not supported", idx)
		}
	}

	var def TableDef
	attrs, err := list(lookup(props, "AttributeDefinitions"), "AttributeDefinitions")
	if err != nil {
		return TableDef{}, err
	}
	for i, a := range attrs {
		field := fmt.Sprintf("AttributeDefinitions[%d]", i)
		name, typ, err := attributeAnd(a, field, "AttributeType")
		if err != nil {
			return TableDef{}, err
		}
		if typ != "S" && typ != "N" && typ != "B" {
			return TableDef{}, fmt.Errorf("%s.AttributeType is %q, want S, N or B", field, typ)
		}
		def.AttributeDefinitions = append(def.AttributeDefinitions, AttributeDef{Name: name, Type: typ})
	}

	keys, err := list(lookup(props, "KeySchema"), "KeySchema")
	if err != nil {
		return TableDef{}, err
	}
	if len(keys) > 2 {
		return TableDef{}, fmt.Errorf("KeySchema has %d elements, want a HASH key and at most one RANGE key", len(keys))
	}
	for i, k := range keys {
		field := fmt.Sprintf("KeySchema[%d]", i)
		name, kt, err := attributeAnd(k, field, "KeyType")
		if err != nil {
			return TableDef{}, err
		}
		if want := []string{"HASH", "RANGE"}[i]; kt != want {
			return TableDef{}, fmt.Errorf("%s.KeyType is %q, want %s", field, kt, want)
		}
		if !slices.ContainsFunc(def.AttributeDefinitions, func(a AttributeDef) bool { return a.Name == name }) {
			return TableDef{}, fmt.Errorf("%s.AttributeName %q has no AttributeDefinitions entry", field, name)
		}
		def.KeySchema = append(def.KeySchema, KeyElement{Name: name, KeyType: kt})
	}
	for _, a := range def.AttributeDefinitions {
		if !slices.ContainsFunc(def.KeySchema, func(k KeyElement) bool { return k.Name == a.Name }) {
			return TableDef{}, fmt.Errorf("attribute %q is defined but not part of the key", a.Name)
		}
	}

	def.BillingMode, err = literal(lookup(props, "BillingMode"), "BillingMode")
	if err != nil {
		return TableDef{}, err
	}
	if def.BillingMode != string(types.BillingModePayPerRequest) {
		return TableDef{}, fmt.Errorf("BillingMode is %q, want PAY_PER_REQUEST", def.BillingMode)
	}

	if ttl := lookup(props, "TimeToLiveSpecification"); ttl != nil {
		enabled, err := literal(lookup(ttl, "Enabled"), "TimeToLiveSpecification.Enabled")
		if err != nil {
			return TableDef{}, err
		}
		on, err := strconv.ParseBool(enabled)
		if err != nil {
			return TableDef{}, fmt.Errorf("TimeToLiveSpecification.Enabled is %q, want true or false", enabled)
		}
		if on {
			def.TTLAttribute, err = literal(lookup(ttl, "AttributeName"), "TimeToLiveSpecification.AttributeName")
			if err != nil {
				return TableDef{}, err
			}
		}
	}
	return def, nil
}

// CreateTableInput returns the request that creates this table under the given name.
func (d TableDef) CreateTableInput(name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingMode(d.BillingMode),
	}
	for _, a := range d.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.Name),
			AttributeType: types.ScalarAttributeType(a.Type),
		})
	}
	for _, k := range d.KeySchema {
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{
			AttributeName: aws.String(k.Name),
			KeyType:       types.KeyType(k.KeyType),
		})
	}
	return in
}

// TTLInput returns the request that enables TTL on the table of the given name, or nil
// when the template does not enable TTL. DynamoDB accepts it only once the table is active.
func (d TableDef) TTLInput(name string) *dynamodb.UpdateTimeToLiveInput {
	if d.TTLAttribute == "" {
		return nil
	}
	return &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(d.TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	}
}

// lookup returns the value of key in the mapping n, or nil when n is not a mapping or has
// no such key.
func lookup(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

// list returns the items of the non-empty sequence n.
func list(n *yaml.Node, field string) ([]*yaml.Node, error) {
	if n == nil {
		return nil, fmt.Errorf("%s is missing", field)
	}
	if n.Kind != yaml.SequenceNode || n.Tag != "!!seq" {
		return nil, fmt.Errorf("%s must be a literal list", field)
	}
	if len(n.Content) == 0 {
		return nil, fmt.Errorf("%s is empty", field)
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = deref(c)
	}
	return items, nil
}

// attributeAnd reads the literal AttributeName of the mapping n and the
// literal beside it under key, each error naming field.key.
func attributeAnd(n *yaml.Node, field, key string) (name, value string, err error) {
	if name, err = literal(lookup(n, "AttributeName"), field+".AttributeName"); err != nil {
		return "", "", err
	}
	if value, err = literal(lookup(n, key), field+"."+key); err != nil {
		return "", "", err
	}
	return name, value, nil
}

// literal returns the text of the non-empty scalar n. An intrinsic function, in short form
// (!Ref X) or long form ({Ref: X}), is not a literal.
func literal(n *yaml.Node, field string) (string, error) {
	if n == nil {
		return "", fmt.Errorf("%s is missing", field)
	}
	if n.Kind != yaml.ScalarNode || !strings.HasPrefix(n.Tag, "!!") {
		return "", fmt.Errorf("%s must be a literal value, not %s", field, describe(n))
	}
	if n.Value == "" {
		return "", fmt.Errorf("%s is empty", field)
	}
	return n.Value, nil
}

func describe(n *yaml.Node) string {
	switch {
	case !strings.HasPrefix(n.Tag, "!!"):
		return "the intrinsic function " + n.Tag
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	return "a " + n.Tag
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}
