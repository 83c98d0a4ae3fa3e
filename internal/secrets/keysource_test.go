package secrets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
)

const secretKey = "sk-5ec2e7c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123"

// fakeAPI answers GetSecretValue with out or err and counts the calls.
type fakeAPI struct {
	out   *secretsmanager.GetSecretValueOutput
	err   error
	calls atomic.Int32
	gate  chan struct{} // if set, each call waits for it
	ids   []string
	mu    sync.Mutex
}

func (f *fakeAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.ids = append(f.ids, aws.ToString(in.SecretId))
	f.mu.Unlock()
	if f.gate != nil {
		<-f.gate
	}
	return f.out, f.err
}

func str(s string) *secretsmanager.GetSecretValueOutput {
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(s)}
}

func TestKeyReadsTheSecret(t *testing.T) {
	tests := []struct {
		name     string
		out      *secretsmanager.GetSecretValueOutput
		err      error
		secretID string
		want     string
		wantCode ipguard.Code
		wantMsg  string
	}{
		{name: "raw key", out: str(secretKey), want: secretKey},
		{name: "raw key with white space", out: str("  " + secretKey + "\n"), want: secretKey},
		{name: "JSON apiKey", out: str(`{"apiKey": "` + secretKey + `"}`), want: secretKey},
		{name: "JSON apiKey with white space", out: str("\n { \"apiKey\": \" " + secretKey + " \", \"note\": \"x\" }\n"), want: secretKey},
		{name: "empty string", out: str("  \n"), wantCode: ipguard.EConfig, wantMsg: "secret is empty"},
		{name: "JSON without apiKey", out: str(`{"key":"` + secretKey + `"}`), wantCode: ipguard.EConfig, wantMsg: `without a non-empty apiKey member`},
		{name: "JSON with empty apiKey", out: str(`{"apiKey":"  "}`), wantCode: ipguard.EConfig, wantMsg: `without a non-empty apiKey member; store the key itself or a JSON object with the key as its apiKey member`},
		{name: "broken JSON", out: str(`{"apiKey":"` + secretKey), wantCode: ipguard.EConfig, wantMsg: "not valid JSON"},
		{name: "JSON apiKey not a string", out: str(`{"apiKey": 5}`), wantCode: ipguard.EConfig, wantMsg: "apiKey member is not a string; store the key itself or a JSON object with the key as its apiKey member"},
		{name: "JSON array", out: str(`["` + secretKey + `"]`), wantCode: ipguard.EConfig, wantMsg: "is not an API key"},
		{name: "quoted key", out: str(`"` + secretKey + `"`), wantCode: ipguard.EConfig, wantMsg: "is not an API key"},
		{name: "Bearer prefix", out: str(`Bearer ` + secretKey), wantCode: ipguard.EConfig, wantMsg: "is not an API key"},
		{name: "binary only", out: &secretsmanager.GetSecretValueOutput{SecretBinary: []byte(secretKey)}, wantCode: ipguard.EConfig, wantMsg: "binary"},
		{name: "no value", out: &secretsmanager.GetSecretValueOutput{}, wantCode: ipguard.EConfig, wantMsg: "no value"},
		{name: "not found", err: &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")},
			wantCode: ipguard.EConfig, wantMsg: `DOCSPACE_API_KEY_SECRET_ID "docspace/api-key": secret does not exist`},
		{name: "access denied", err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"},
			wantCode: ipguard.EConfig, wantMsg: "secretsmanager:GetSecretValue"},
		{name: "decryption failure", err: &types.DecryptionFailure{Message: aws.String("kms")},
			wantCode: ipguard.EConfig, wantMsg: "kms:Decrypt"},
		{name: "throttled", err: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"},
			wantCode: ipguard.EUnavailable, wantMsg: "read secret (DOCSPACE_API_KEY_SECRET_ID=docspace/api-key): "},
		{name: "network", err: errors.New("dial tcp: connection refused"),
			wantCode: ipguard.EUnavailable, wantMsg: "read secret (DOCSPACE_API_KEY_SECRET_ID=docspace/api-key): dial tcp: connection refused"},
		{name: "no secret id", secretID: " ", out: str(secretKey), wantCode: ipguard.EConfig, wantMsg: "DOCSPACE_API_KEY_SECRET_ID: is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "docspace/api-key"
			if tt.secretID != "" {
				id = tt.secretID
			}
			api := &fakeAPI{out: tt.out, err: tt.err}
			got, err := NewKeySource(api, id, 0).Key(context.Background())
			if tt.wantCode == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Key() = %q, %v; want %q", got, err, tt.want)
				}
				if api.ids[0] != id {
					t.Errorf("asked for %q, want %q", api.ids[0], id)
				}
				return
			}
			var ie *ipguard.Error
			if !errors.As(err, &ie) || ie.Code != tt.wantCode {
				t.Fatalf("Key() error = %#v, want code %s", err, tt.wantCode)
			}
			if got != "" {
				t.Errorf("Key() = %q with an error, want \"\"", got)
			}
			// What a human reads is cleaned of every run of the secret: the
			// help must survive that.
			if !strings.Contains(redact.Clean(err.Error()), tt.wantMsg) {
				t.Errorf("cleaned Error() = %q, want it to contain %q", redact.Clean(err.Error()), tt.wantMsg)
			}
			if strings.Contains(err.Error(), secretKey[:12]) {
				t.Errorf("Error() = %q shows the secret value", err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("the SDK error is not reachable through errors.Is")
			}
		})
	}
}

func TestKeyIsCachedUntilTheTTLPasses(t *testing.T) {
	api := &fakeAPI{out: str(secretKey)}
	ks := NewKeySource(api, "s", time.Minute)
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	ks.now = func() time.Time { return now }
	ctx := context.Background()

	steps := []struct {
		advance   time.Duration
		wantCalls int32
	}{
		{0, 1},
		{30 * time.Second, 1},
		{29 * time.Second, 1},
		{time.Second, 2}, // exactly ttl after the fetch: stale
		{59 * time.Second, 2},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if k, err := ks.Key(ctx); err != nil || k != secretKey {
			t.Fatalf("step %d: Key() = %q, %v", i, k, err)
		}
		if got := api.calls.Load(); got != s.wantCalls {
			t.Errorf("step %d: %d fetches, want %d", i, got, s.wantCalls)
		}
	}
}

func TestInvalidateForcesAFetch(t *testing.T) {
	api := &fakeAPI{out: str("sk-old")}
	ks := NewKeySource(api, "s", time.Hour)
	ctx := context.Background()
	if k, _ := ks.Key(ctx); k != "sk-old" {
		t.Fatalf("Key() = %q", k)
	}
	api.out = str("sk-new")
	if k, _ := ks.Key(ctx); k != "sk-old" {
		t.Fatalf("cached Key() = %q, want sk-old", k)
	}
	ks.Invalidate()
	if k, _ := ks.Key(ctx); k != "sk-new" {
		t.Errorf("Key() after Invalidate = %q, want sk-new", k)
	}
	if api.calls.Load() != 2 {
		t.Errorf("%d fetches, want 2", api.calls.Load())
	}
}

func TestFailuresAreNotCached(t *testing.T) {
	api := &fakeAPI{err: errors.New("timeout")}
	ks := NewKeySource(api, "s", time.Hour)
	if _, err := ks.Key(context.Background()); err == nil {
		t.Fatal("want an error")
	}
	api.err, api.out = nil, str(secretKey)
	if k, err := ks.Key(context.Background()); err != nil || k != secretKey {
		t.Fatalf("Key() = %q, %v after recovery", k, err)
	}
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	api := &fakeAPI{out: str(secretKey), gate: make(chan struct{})}
	ks := NewKeySource(api, "s", time.Hour)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			k, err := ks.Key(context.Background())
			if err == nil && k != secretKey {
				err = errors.New("wrong key " + k)
			}
			errs <- err
		})
	}
	close(api.gate) // let the one fetch finish
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := api.calls.Load(); got != 1 {
		t.Errorf("%d fetches for %d concurrent callers, want 1", got, n)
	}
}

func TestKeySourceIsADocspaceKeyProvider(t *testing.T) {
	var p interface {
		Key(context.Context) (string, error)
		Invalidate()
	} = NewKeySource(&fakeAPI{}, "s", 0)
	if ks := p.(*KeySource); ks.ttl != DefaultTTL {
		t.Errorf("ttl = %v, want %v", ks.ttl, DefaultTTL)
	}
}

// Of a JSON secret, every value is scrubbed (the key and anything else it
// holds), but not its structure: text that merely mentions "apiKey" (the
// status's own field of that name) stays readable.
func TestJSONSecretScrubsItsValuesNotItsStructure(t *testing.T) {
	other := "db-password-0123456789"
	s := `{"apiKey": "` + secretKey + `", "nested": {"pw": "` + other + `"}}`
	if _, err := NewKeySource(&fakeAPI{out: str(s)}, "docspace/api-key", 0).Key(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{secretKey[5:20], other[2:12]} {
		if c := redact.Clean("x " + text + " y"); strings.Contains(c, text) {
			t.Errorf("Clean kept %q: %q", text, c)
		}
	}
	status := `{"action":"status","apiKey":{"name":"ipguard","postfix":"9f3c"},"nested":{"pw":1}}`
	if c := redact.Clean(status); c != status {
		t.Errorf("Clean changed the structure-only text: %q", c)
	}
}

// Refresh after a refusal reads the secret again, unless another caller
// already did (the cache holds another key than the refused one): several
// calls refused at once cost one read.
func TestRefreshReadsAgainOnceForConcurrentRefusals(t *testing.T) {
	api := &fakeAPI{out: str("sk-old-0123456789")}
	ks := NewKeySource(api, "docspace/key", time.Hour)
	old, err := ks.Key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	api.out = str("sk-new-0123456789")
	for i := 0; i < 3; i++ {
		k, err := ks.Refresh(context.Background(), old)
		if err != nil || k != "sk-new-0123456789" {
			t.Fatalf("Refresh = %q, %v; want the new key", k, err)
		}
	}
	if n := api.calls.Load(); n != 2 {
		t.Errorf("%d reads of the secret, want 2 (the first and one after the refusal)", n)
	}
	// The new key refused as well: read once more.
	if _, err := ks.Refresh(context.Background(), "sk-new-0123456789"); err != nil || api.calls.Load() != 3 {
		t.Errorf("refresh after the new key was refused: %v, %d reads", err, api.calls.Load())
	}
}
