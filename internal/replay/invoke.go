package replay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Lambda invokes a function through the Lambda Invoke API (synchronous,
// signed with the caller's credentials: it needs lambda:InvokeFunction).
type Lambda struct {
	Config   aws.Config
	Function string // name or ARN
	// Endpoint is the Lambda API base URL; empty means
	// AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL, or the region's endpoint.
	Endpoint string
	HTTP     *http.Client
}

// Invoke implements Invoker.
func (l Lambda) Invoke(ctx context.Context, payload []byte) ([]byte, string, error) {
	endpoint := strings.TrimRight(l.Endpoint, "/")
	if endpoint == "" {
		endpoint = "https://lambda." + l.Config.Region + ".amazonaws.com"
		if l.Config.BaseEndpoint != nil {
			endpoint = strings.TrimRight(*l.Config.BaseEndpoint, "/")
		}
	}
	u := endpoint + "/2015-03-31/functions/" + url.PathEscape(l.Function) + "/invocations"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	req.Header.Set("Content-Type", "application/json")
	creds, err := l.Config.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(payload)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "lambda", l.Config.Region, time.Now()); err != nil {
		return nil, "", err
	}
	hc := l.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode/100 != 2 {
		return nil, "", fmt.Errorf("lambda invoke %s: HTTP %d: %s", l.Function, resp.StatusCode, body)
	}
	fnErr := resp.Header.Get("X-Amz-Function-Error")
	if fnErr == "" && bytes.Contains(body, []byte(`"errorType"`)) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		// The Lambda emulator does not set the header; its error response has the same body.
		fnErr = "Unhandled"
	}
	return body, fnErr, nil
}
