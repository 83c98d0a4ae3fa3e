// Package secrets reads the DocSpace API key from AWS Secrets Manager and
// keeps it for a while, so a warm Lambda container asks for it once per TTL.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"ipguard/internal/awserr"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
)

// field is the environment variable that names the secret; configuration
// errors point at it.
const field = "DOCSPACE_API_KEY_SECRET_ID"

// DefaultTTL is how long a fetched key is used before it is read again.
const DefaultTTL = 5 * time.Minute

// API is the part of the Secrets Manager client KeySource uses;
// *secretsmanager.Client implements it.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// KeySource supplies the DocSpace API key stored in one secret. The secret's
// SecretString is either the key itself or JSON {"apiKey": "..."}; surrounding
// white space is ignored.
//
// It is safe for concurrent use: concurrent callers share a single fetch.
// It satisfies docspace.KeyProvider, including the optional Refresh and
// Invalidate.
type KeySource struct {
	api      API
	secretID string
	ttl      time.Duration
	now      func() time.Time // the clock; tests replace it

	mu      sync.Mutex
	key     string
	expires time.Time // zero: nothing cached
}

// NewKeySource returns a KeySource reading secretID (a name or an ARN)
// through api. A ttl ≤ 0 means DefaultTTL. Nothing is fetched until Key is called.
func NewKeySource(api API, secretID string, ttl time.Duration) *KeySource {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &KeySource{api: api, secretID: strings.TrimSpace(secretID), ttl: ttl, now: time.Now}
}

// Key returns the API key, from the cache while it is younger than the TTL.
// A failed fetch is not cached. Errors are *ipguard.Error: EConfig when the
// secret is missing, unreadable for lack of permission, or holds no usable
// key (Field DOCSPACE_API_KEY_SECRET_ID, Value the secret id); EUnavailable
// when Secrets Manager fails otherwise. No error contains the secret's value.
func (k *KeySource) Key(ctx context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != "" && k.now().Before(k.expires) {
		return k.key, nil
	}
	key, err := k.fetch(ctx)
	if err != nil {
		return "", err
	}
	k.key, k.expires = key, k.now().Add(k.ttl)
	return key, nil
}

// Invalidate drops the cached key so that the next Key reads the secret
// again; a DocSpace client calls it when the portal refuses the key (401),
// which is how a rotated key is picked up.
func (k *KeySource) Invalidate() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.key, k.expires = "", time.Time{}
}

// Refresh returns the key after refused was refused by the portal: the
// cached key when it is another one already (a concurrent caller read the
// secret again), otherwise the secret read anew (and cached). Errors as Key's.
func (k *KeySource) Refresh(ctx context.Context, refused string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != "" && k.key != refused && k.now().Before(k.expires) {
		return k.key, nil
	}
	k.key, k.expires = "", time.Time{}
	key, err := k.fetch(ctx)
	if err != nil {
		return "", err
	}
	k.key, k.expires = key, k.now().Add(k.ttl)
	return key, nil
}

// fetch reads and parses the secret.
func (k *KeySource) fetch(ctx context.Context) (string, error) {
	if k.secretID == "" {
		return "", &ipguard.Error{Code: ipguard.EConfig, Field: field,
			Message: "is empty; set it to the name or ARN of the secret holding the DocSpace API key"}
	}
	out, err := k.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.secretID)})
	if err != nil {
		return "", k.classify(err)
	}
	switch {
	case out.SecretString != nil:
		rememberSecret(*out.SecretString)
		key, err := k.parse(*out.SecretString)
		redact.Remember(key)
		return key, err
	case out.SecretBinary != nil:
		return "", k.configError(nil, `secret holds binary data; store the API key as the secret string (the key itself, or {"apiKey":"..."})`)
	default:
		return "", k.configError(nil, "secret has no value")
	}
}

// rememberSecret registers the secret string with package redact: a JSON
// object by each of its values (the key and whatever else it holds) of at
// least redact.MinRun characters, not by its structure, whose runs
// ({"apiKey", "apiKey":) would otherwise mangle any text that merely names
// the member (broken JSON: by its runs between JSON punctuation); anything
// else whole.
func rememberSecret(s string) {
	if !strings.HasPrefix(strings.TrimSpace(s), "{") {
		redact.Remember(s)
		return
	}
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		for _, part := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("{}[]\":, \t\r\n", r) }) {
			if len(part) >= redact.MinRun {
				redact.Remember(part)
			}
		}
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if len(strings.TrimSpace(v)) >= redact.MinRun {
				redact.Remember(v)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
}

// parse extracts the key from a SecretString without ever quoting it.
func (k *KeySource) parse(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", k.configError(nil, "secret is empty; store the DocSpace API key in it")
	}
	// The help below names the member without quoting it: what a human
	// reads is cleaned of every run of 8 characters of the secret (package
	// redact), and `{"apiKey"` is such a run of a JSON secret.
	const how = "store the key itself or a JSON object with the key as its apiKey member"
	if !strings.HasPrefix(s, "{") {
		// A DocSpace key is one token (sk- and hex digits): white space,
		// quotes or brackets mean a wrapped or prefixed key that the
		// portal would refuse as if it were wrong.
		if strings.ContainsAny(s, " \t\r\n\"'[]{},") {
			return "", k.configError(nil, "secret is not an API key (it holds white space, quotes, brackets or commas, e.g. a JSON array or string, or a \"Bearer \" prefix); "+how)
		}
		return s, nil
	}
	var v struct {
		APIKey json.RawMessage `json:"apiKey"`
	}
	if json.Unmarshal([]byte(s), &v) != nil {
		// The parser's message could quote part of the value: do not pass it on.
		return "", k.configError(nil, `secret holds text starting with "{" that is not valid JSON; `+how)
	}
	var key string
	if len(v.APIKey) > 0 && string(v.APIKey) != "null" && json.Unmarshal(v.APIKey, &key) != nil {
		return "", k.configError(nil, "secret's apiKey member is not a string; "+how)
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return "", k.configError(nil, "secret holds JSON without a non-empty apiKey member; "+how)
	}
	return key, nil
}

// classify turns a GetSecretValue failure into a domain error.
func (k *KeySource) classify(err error) error {
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return k.configError(err, "secret does not exist (check the name or ARN, the account and the region)")
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDeniedException", "AccessDenied":
			return k.configError(err, "access to the secret denied: the function's role needs secretsmanager:GetSecretValue on this secret (and kms:Decrypt for a customer-managed key)")
		case "DecryptionFailure":
			return k.configError(err, "secret cannot be decrypted: the function's role needs kms:Decrypt on the secret's KMS key")
		case "InvalidRequestException":
			return k.configError(err, "secret cannot be read (is it scheduled for deletion?): "+apiErr.ErrorMessage())
		}
	}
	return awserr.Classify(err, "read secret", awserr.Resource{Service: "secretsmanager", Field: field, Value: k.secretID})
}

func (k *KeySource) configError(cause error, msg string) *ipguard.Error {
	return &ipguard.Error{Code: ipguard.EConfig, Field: field, Value: k.secretID, Message: msg, Err: cause}
}
