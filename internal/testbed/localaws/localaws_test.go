package localaws_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"ipguard/internal/testbed/localaws"
)

// gone reports whether no process with pid exists any more.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestMotoServesResetsAndStops(t *testing.T) {
	ctx := context.Background()
	m := localaws.MotoT(t)

	if !strings.HasPrefix(m.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %q, want a loopback URL", m.Endpoint)
	}
	wantEnv := []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
	}
	if got := m.Env(); !slices.Equal(got, wantEnv) {
		t.Errorf("Env() = %q, want %q", got, wantEnv)
	}
	if got := os.Getenv("AWS_ENDPOINT_URL"); got != m.Endpoint {
		t.Errorf("MotoT set AWS_ENDPOINT_URL = %q, want %q", got, m.Endpoint)
	}

	cfg, err := localaws.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("t"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table through Config (AWS_ENDPOINT_URL): %v", err)
	}
	tables := func() []string {
		out, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
		if err != nil {
			t.Fatal(err)
		}
		return out.TableNames
	}
	if got := tables(); !slices.Equal(got, []string{"t"}) {
		t.Fatalf("tables before Reset = %q, want [t]", got)
	}
	if err := m.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tables(); len(got) != 0 {
		t.Fatalf("tables after Reset = %q, want none", got)
	}

	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if !gone(m.PID) {
		t.Errorf("moto_server pid %d still exists after Stop", m.PID)
	}
	if err := m.Stop(); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
}

func TestStartMotoWithoutMotoOnPathSaysWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := localaws.StartMoto(context.Background())
	want := "moto_server not found on PATH: install moto with the server extra (pip install 'moto[server]')"
	if err == nil || err.Error() != want {
		t.Fatalf("StartMoto error = %v, want %q", err, want)
	}
}

func TestEmulatorReturnsResultAndHandlerError(t *testing.T) {
	localaws.SkipShort(t, "the Lambda emulator")
	ctx := context.Background()
	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	if err := localaws.BuildBootstrap(ctx, "./internal/testbed/localaws/testdata/echo", bootstrap); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	e, err := localaws.StartEmulator(ctx, bootstrap, nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Stop()
		if t.Failed() {
			t.Logf("emulator log:\n%s", log.String())
		}
	})

	tests := []struct {
		name    string
		payload string
		want    map[string]any
	}{
		{
			name:    "result is the handler's output",
			payload: `{"hello":"world","n":1}`,
			want:    map[string]any{"hello": "world", "n": 1.0},
		},
		{
			name:    "handler error is errorMessage and errorType",
			payload: `{"fail":true}`,
			want:    map[string]any{"errorMessage": "echo: asked to fail", "errorType": "errorString"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := e.Invoke(ctx, []byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if !mapsEqual(got, tt.want) {
				t.Errorf("body = %s, want %v", body, tt.want)
			}
		})
	}

	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if !gone(e.PID) {
		t.Errorf("aws-lambda-rie pid %d still exists after Stop", e.PID)
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
