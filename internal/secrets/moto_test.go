package secrets_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"ipguard/internal/ipguard"
	"ipguard/internal/secrets"
	"ipguard/internal/testbed/localaws"
)

// TestKeySourceAgainstMoto reads real Secrets Manager responses from a local
// moto server: by name, by ARN, JSON form, and a missing secret.
func TestKeySourceAgainstMoto(t *testing.T) {
	localaws.MotoT(t) // sets AWS_ENDPOINT_URL and dummy credentials
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	sm := secretsmanager.NewFromConfig(cfg)

	const key = "sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	create := func(name, value string) string {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		if err != nil {
			t.Fatalf("CreateSecret %s: %v", name, err)
		}
		return aws.ToString(out.ARN)
	}
	rawARN := create("ipguard/docspace-api-key", key+"\n")
	jsonARN := create("ipguard/docspace-api-key-json", `{"apiKey":"`+key+`"}`)

	tests := []struct {
		name, id string
	}{
		{"raw by name", "ipguard/docspace-api-key"},
		{"raw by ARN", rawARN},
		{"JSON by name", "ipguard/docspace-api-key-json"},
		{"JSON by ARN", jsonARN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secrets.NewKeySource(sm, tt.id, 0).Key(ctx)
			if err != nil || got != key {
				t.Fatalf("Key() = %q, %v; want the stored key", got, err)
			}
		})
	}

	t.Run("missing secret", func(t *testing.T) {
		_, err := secrets.NewKeySource(sm, "ipguard/no-such-secret", 0).Key(ctx)
		var ie *ipguard.Error
		if !errors.As(err, &ie) || ie.Code != ipguard.EConfig || ie.Field != "DOCSPACE_API_KEY_SECRET_ID" || ie.Value != "ipguard/no-such-secret" {
			t.Fatalf("err = %#v, want EConfig naming the secret", err)
		}
		if !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Error() = %q, want it to say the secret does not exist", err)
		}
	})
}
