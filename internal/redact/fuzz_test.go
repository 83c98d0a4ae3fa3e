package redact_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
	"ipguard/internal/snsalert"
	"ipguard/internal/snsalert/snsmessage"
	"ipguard/internal/wiring"
)

// No run of MinRun or more characters of a registered key survives any path
// out of the process: a log line, an error, a Lambda result, an SNS subject
// and bodies, read as written and with their JSON (and JSON in JSON)
// decoded. The text carries the key whole, cut, and next to any text.
func FuzzRedactPathsOut(f *testing.F) {
	f.Add("sk-7e57c0ffee0123456789abcdef0123456789", "HTTP 401: Bearer ", uint8(3))
	f.Fuzz(func(t *testing.T, key, text string, cut uint8) {
		if len(strings.TrimSpace(key)) < redact.MinRun || windows(key).hitIn(redact.Mark) {
			return // a key that shares a run with the mark itself cannot be told from it
		}
		if !utf8.ValidString(key) {
			// A key comes from Secrets Manager's SecretString through JSON
			// (the API's and, for {"apiKey": …}, ours): it is always valid
			// UTF-8. An invalid last byte can join the text after it into one
			// character, which no redaction by the key's text can see.
			return
		}
		redact.Reset()
		redact.Remember(key)
		s := text + key + text + key[int(cut)%len(key):] + text

		var logs strings.Builder
		log := wiring.NewLogger(&logs, slog.LevelDebug)
		log.Info(s, "value", s, "error", errors.New(s), "list", []string{s}, "map", map[string]any{"k": s})
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			leaks(t, key, "log line", line)
		}

		_, err := wiring.Invoke(log, func(context.Context, []byte) (any, error) {
			return nil, ipguard.Invalid("allowedIps[0]", s, "is not %q", s)
		})(context.Background(), json.RawMessage(`{}`))
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) {
			t.Fatalf("Invoke error %T", err)
		}
		leaks(t, key, "Lambda error", ie.Message)

		res, err := wiring.Invoke(log, func(context.Context, []byte) (any, error) {
			return map[string]any{"warnings": []string{s, humantext.Line(s, 1000)}, "n": 1}, nil
		})(context.Background(), json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		leaks(t, key, "Lambda result", string(res))

		api := &recordSNS{}
		body, _ := json.Marshal(map[string]string{"login": s})
		_, err = snsalert.New(api, "arn:aws:sns:eu-west-1:123456789012:alerts").Publish(context.Background(), ipguard.Alert{
			Subject: humantext.Line(s, snsmessage.MaxSubjectRunes), Default: string(body), Email: "Login: " + s,
			SMS: humantext.ASCII(s, snsmessage.MaxSMSBytes)})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		leaks(t, key, "SNS subject", aws.ToString(api.in.Subject))
		leaks(t, key, "SNS message", aws.ToString(api.in.Message))
	})
}

type recordSNS struct{ in *sns.PublishInput }

func (r *recordSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	r.in = in
	return &sns.PublishOutput{MessageId: aws.String("m")}, nil
}

// leaks fails t when out holds a run of MinRun characters of key outside
// the marks: out as it is written or, when it is JSON, every string in it
// as it reads decoded (and so on inside those). A JSON text is judged by
// what it says: hex digits of an escape next to a short piece of the key
// may spell a run of it, but carry nothing of the key.
func leaks(t *testing.T, key, path, out string) {
	t.Helper()
	w := windows(key)
	var check func(s string, depth int)
	check = func(s string, depth int) {
		var v any
		if depth < 4 && json.Unmarshal([]byte(s), &v) == nil {
			for _, str := range stringsIn(v) {
				check(str, depth+1)
			}
			return
		}
		for _, piece := range strings.Split(s, redact.Mark) {
			if w.hitIn(piece) {
				t.Fatalf("%s holds a run of the key %q: %q (in %q)", path, key, s, out)
			}
		}
	}
	check(out, 0)
}

// stringsIn lists the strings of a decoded JSON value, keys included.
func stringsIn(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsIn(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range x {
			out = append(append(out, k), stringsIn(e)...)
		}
		return out
	}
	return nil
}

// runs is the set of MinRun-byte windows of a key.
type runs map[string]bool

func windows(key string) runs {
	w := runs{}
	for _, k := range []string{key, strings.TrimSpace(key)} {
		for i := 0; i+redact.MinRun <= len(k); i++ {
			w[k[i:i+redact.MinRun]] = true
		}
	}
	return w
}

func (w runs) hitIn(s string) bool {
	for i := 0; i+redact.MinRun <= len(s); i++ {
		if w[s[i:i+redact.MinRun]] {
			return true
		}
	}
	return false
}
