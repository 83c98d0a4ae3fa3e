package samtemplate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func templatePath(t *testing.T) string {
	t.Helper()
	path, err := FindTemplate()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTableReadsAllowlistTableFromTemplate(t *testing.T) {
	def, err := Table(templatePath(t), "AllowlistTable")
	if err != nil {
		t.Fatal(err)
	}
	want := TableDef{
		AttributeDefinitions: []AttributeDef{{Name: "pk", Type: "S"}},
		KeySchema:            []KeyElement{{Name: "pk", KeyType: "HASH"}},
		BillingMode:          "PAY_PER_REQUEST",
		TTLAttribute:         "expiresAt",
	}
	if !reflect.DeepEqual(def, want) {
		t.Fatalf("Table = %+v, want %+v", def, want)
	}

	in := def.CreateTableInput("t1")
	if aws.ToString(in.TableName) != "t1" || in.BillingMode != types.BillingModePayPerRequest ||
		len(in.AttributeDefinitions) != 1 || aws.ToString(in.AttributeDefinitions[0].AttributeName) != "pk" ||
		in.AttributeDefinitions[0].AttributeType != types.ScalarAttributeTypeS ||
		len(in.KeySchema) != 1 || aws.ToString(in.KeySchema[0].AttributeName) != "pk" ||
		in.KeySchema[0].KeyType != types.KeyTypeHash {
		t.Errorf("CreateTableInput = %+v", in)
	}
	ttl := def.TTLInput("t1")
	if ttl == nil || aws.ToString(ttl.TableName) != "t1" ||
		aws.ToString(ttl.TimeToLiveSpecification.AttributeName) != "expiresAt" ||
		!aws.ToBool(ttl.TimeToLiveSpecification.Enabled) {
		t.Errorf("TTLInput = %+v", ttl)
	}
}

func TestTTLInputIsNilWithoutTTL(t *testing.T) {
	if in := (TableDef{}).TTLInput("t1"); in != nil {
		t.Fatalf("TTLInput = %+v, want nil", in)
	}
}

// A table template around the given properties, with intrinsic functions elsewhere that
// must not get in the way.
func tableTemplate(props string) string {
	return `Transform: AWS::Serverless-2016-10-31
Parameters:
  Mode: {Type: String}
Resources:
  Other:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "${AWS::StackName}-alerts"
      Tags: [{Key: k, Value: !GetAtt T.Arn}]
  T:
    Type: AWS::DynamoDB::Table
    Properties:
` + props + `
Outputs:
  Name: {Value: !Ref T}
`
}

const (
	attrsPK   = "      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]\n"
	keyPK     = "      KeySchema: [{AttributeName: pk, KeyType: HASH}]\n"
	onDemand  = "      BillingMode: PAY_PER_REQUEST\n"
	ttlExpiry = "      TimeToLiveSpecification: {AttributeName: expiresAt, Enabled: true}\n"
)

func writeTemplate(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTableAcceptsCompositeKeyAndDisabledTTL(t *testing.T) {
	path := writeTemplate(t, tableTemplate(
		"      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: N}]\n"+
			"      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]\n"+
			onDemand+
			"      TimeToLiveSpecification: {AttributeName: expiresAt, Enabled: false}\n"))
	def, err := Table(path, "T")
	if err != nil {
		t.Fatal(err)
	}
	want := TableDef{
		AttributeDefinitions: []AttributeDef{{"pk", "S"}, {"sk", "N"}},
		KeySchema:            []KeyElement{{"pk", "HASH"}, {"sk", "RANGE"}},
		BillingMode:          "PAY_PER_REQUEST",
	}
	if !reflect.DeepEqual(def, want) {
		t.Fatalf("Table = %+v, want %+v", def, want)
	}
}

func TestTableRejects(t *testing.T) {
	tests := []struct {
		name, template, logicalID, wantErr string
	}{
		{"a missing resource", tableTemplate(attrsPK + keyPK + onDemand), "Nope", "no such resource"},
		{"a resource of another type", tableTemplate(attrsPK + keyPK + onDemand), "Other", "want AWS::DynamoDB::Table"},
		{"a misspelt billing mode", tableTemplate(attrsPK + keyPK + "      BillingMode: PAY_PER_REQEUST\n"), "T", `BillingMode is "PAY_PER_REQEUST"`},
		{"provisioned billing", tableTemplate(attrsPK + keyPK + "      BillingMode: PROVISIONED\n"), "T", "want PAY_PER_REQUEST"},
		{"a missing billing mode", tableTemplate(attrsPK + keyPK), "T", "BillingMode is missing"},
		{"a billing mode from !Ref", tableTemplate(attrsPK + keyPK + "      BillingMode: !Ref Mode\n"), "T", "intrinsic function !Ref"},
		{"a billing mode from long-form Ref", tableTemplate(attrsPK + keyPK + "      BillingMode: {Ref: Mode}\n"), "T", "not a mapping"},
		{"an unknown attribute type", tableTemplate("      AttributeDefinitions: [{AttributeName: pk, AttributeType: X}]\n" + keyPK + onDemand), "T", "want S, N or B"},
		{"a key without a definition", tableTemplate(attrsPK + "      KeySchema: [{AttributeName: id, KeyType: HASH}]\n" + onDemand), "T", `"id" has no AttributeDefinitions entry`},
		{"a definition outside the key", tableTemplate("      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: x, AttributeType: S}]\n" + keyPK + onDemand), "T", `"x" is defined but not part of the key`},
		{"a RANGE key first", tableTemplate(attrsPK + "      KeySchema: [{AttributeName: pk, KeyType: RANGE}]\n" + onDemand), "T", "want HASH"},
		{"no key schema", tableTemplate(attrsPK + onDemand), "T", "KeySchema is missing"},
		{"a secondary index", tableTemplate(attrsPK + keyPK + onDemand + "      GlobalSecondaryIndexes: []\n"), "T", "GlobalSecondaryIndexes are not supported"},
		{"a TTL flag that is not a boolean", tableTemplate(attrsPK + keyPK + onDemand + "      TimeToLiveSpecification: {AttributeName: expiresAt, Enabled: yes please}\n"), "T", "want true or false"},
		{"enabled TTL without an attribute", tableTemplate(attrsPK + keyPK + onDemand + "      TimeToLiveSpecification: {Enabled: true}\n"), "T", "TimeToLiveSpecification.AttributeName is missing"},
		{"text that is not YAML", "Resources: [\n", "T", "parse YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemplate(t, tt.template)
			_, err := Table(path, tt.logicalID)
			if err == nil {
				t.Fatalf("Table succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Table error = %q, want it to name %s and contain %q", err, path, tt.wantErr)
			}
		})
	}
}

func TestTableAcceptsIntrinsicsElsewhere(t *testing.T) {
	path := writeTemplate(t, tableTemplate(attrsPK+keyPK+onDemand+ttlExpiry+
		"      Tags: [{Key: stack, Value: !Ref AWS::StackName}]\n"+
		"      SSESpecification: {SSEEnabled: !If [Cond, true, false]}\n"))
	def, err := Table(path, "T")
	if err != nil {
		t.Fatal(err)
	}
	if def.TTLAttribute != "expiresAt" {
		t.Fatalf("TTLAttribute = %q, want expiresAt", def.TTLAttribute)
	}
}

func TestFindTemplateWalksUpToGoMod(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"go.mod", "template.yaml"} {
		if err := os.WriteFile(filepath.Join(root, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	path, err := FindTemplate()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "template.yaml"); path != want {
		t.Fatalf("FindTemplate = %q, want %q", path, want)
	}
}

func TestFindTemplateFailsWithoutTemplateBesideGoMod(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	if path, err := FindTemplate(); err == nil {
		t.Fatalf("FindTemplate = %q, want an error (go.mod has no template.yaml beside it)", path)
	}
}
