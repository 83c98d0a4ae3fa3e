// Package wiring is the composition root of both Lambda functions: it reads
// the configuration, builds the adapters (DocSpace, DynamoDB, SNS, Secrets
// Manager) and hands them to the domain services. Each function's wiring is in
// the file named after it (onboard.go, audit.go); this file holds what both
// share: the adapters, the invocation boundary (envelope, errors with an
// errorType per code) and the logger and metrics written per invocation.
package wiring

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"ipguard/internal/config"
	"ipguard/internal/docspace"
	"ipguard/internal/dynamo"
	"ipguard/internal/emf"
	"ipguard/internal/ipguard"
	"ipguard/internal/redact"
	"ipguard/internal/secrets"
)

// Deps are the adapters both functions use.
type Deps struct {
	Config config.Config
	AWS    aws.Config
	Log    *slog.Logger
	Portal *docspace.Client
	// APIKeys supplies the DocSpace API key (the secret); the key watch
	// names a refused key by its last characters from it.
	APIKeys docspace.KeyProvider
	Store   *dynamo.Store
	// MetricsOut receives the EMF metrics lines; nil means standard output,
	// where Lambda hands them to CloudWatch Logs.
	MetricsOut io.Writer
}

// Load reads the configuration for fn and builds the shared adapters. AWS
// endpoints come only from the SDK's standard resolution.
func Load(ctx context.Context, fn config.Function) (Deps, error) {
	cfg, err := config.Load(os.Getenv, fn)
	log := NewLogger(os.Stdout, cfg.LogLevel)
	if err != nil {
		return Deps{Log: log}, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return Deps{Log: log}, ipguard.Errorf(ipguard.EConfig, "load AWS configuration: %w", err)
	}
	keys := secrets.NewKeySource(secretsmanager.NewFromConfig(awsCfg), cfg.DocSpace.KeySecretID, cfg.DocSpace.KeyCacheTTL)
	store := dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Table)
	portal, err := docspace.New(docspace.Options{
		BaseURL:           cfg.DocSpace.Host,
		AllowHTTP:         cfg.DocSpace.AllowHTTP,
		Keys:              keys,
		Timeout:           cfg.DocSpace.Timeout,
		Logger:            log,
		RequestsPerMinute: cfg.DocSpace.RequestsPerMinute,
		// One budget per portal: every container of both functions takes
		// its requests from the same windows in the table (#17).
		Budget: store,
	})
	if err != nil {
		return Deps{Log: log}, err
	}
	return Deps{
		Config:  cfg,
		AWS:     awsCfg,
		Log:     log,
		Portal:  portal,
		APIKeys: keys,
		Store:   store,
	}, nil
}

// Start runs h as the Lambda handler. Its errors become Lambda error
// responses whose errorType names the kind (InvalidInput, ConfigurationError,
// DependencyUnavailable, Conflict, InternalError) and whose message is the
// error's text, cleaned of secrets. Log lines written during an invocation
// carry its request id (see NewLogger).
func Start[T any](log *slog.Logger, h func(context.Context, []byte) (T, error)) {
	lambda.Start(rawHandler(Invoke(log, h)))
}

// rawHandler hands the payload to the handler as the bytes that came, so
// that malformed JSON reaches it (and becomes InvalidInput naming the
// position) instead of failing in the runtime's decoding with an errorType
// of its own.
type rawHandler func(context.Context, json.RawMessage) (json.RawMessage, error)

func (h rawHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return h(ctx, payload)
}

// Invoke is the handler Start runs, for tests: h with the request id set for
// logging, its error turned into a Lambda error response, and its result
// as JSON cleaned of secrets like the error (a warning may quote a portal
// value that echoes the key).
func Invoke[T any](log *slog.Logger, h func(context.Context, []byte) (T, error)) func(context.Context, json.RawMessage) (json.RawMessage, error) {
	return func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
		_, end := beginInvocation(ctx)
		defer end()
		out, err := safeCall(ctx, log, h, payload)
		if err != nil {
			msg := errorMessage(err)
			// Bad input is the caller's to fix: a warning here, not an error of ours.
			level := slog.LevelError
			if ipguard.ErrorCode(err) == ipguard.EInvalid {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "invocation failed", "errorType", ErrorType(err), "error", msg)
			return nil, messages.InvokeResponse_Error{Message: msg, Type: ErrorType(err)}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, messages.InvokeResponse_Error{Message: "encode the result: " + redact.Clean(err.Error()), Type: ErrorType(err)}
		}
		if c := redact.Clean(string(b)); c != string(b) {
			if !json.Valid([]byte(c)) { // a removed run held a quote
				c2, _ := json.Marshal(c)
				return c2, nil
			}
			return json.RawMessage(c), nil
		}
		return b, nil
	}
}

// safeCall is h(ctx, payload) with a panic turned into an InternalError
// (the handlers recover their own before writing their metrics line; this is
// the last guard at the boundary).
func safeCall[T any](ctx context.Context, log *slog.Logger, h func(context.Context, []byte) (T, error), payload []byte) (out T, err error) {
	defer func() { recovered(ctx, log, recover(), &err) }()
	return h(ctx, payload)
}

// StartFailing answers every invocation of the function fn with err: a
// function whose configuration is wrong says so, naming the variable, on
// each call, and counts it in the Failures metrics (namespace
// METRICS_NAMESPACE when it is readable), so that the failure alarms fire.
func StartFailing(log *slog.Logger, err error, fn config.Function) {
	log.Error("configuration error", "error", err.Error())
	ns := config.MetricsNamespace(os.Getenv)
	// ERROR passes Lambda's log-level filter whatever LOG_LEVEL is.
	mw := metricsWriter{out: os.Stdout, namespace: ns, now: time.Now, level: slog.LevelError}
	Start(log, failingHandler(mw, err, fn))
}

// failingHandler is StartFailing's handler. A run of the audit's schedule
// also declares LagSeconds, UnknownLag, as every scheduled run does
// (runLag): AuditRunsMissingAlarm counts those samples as the schedule's
// runs, and an audit that cannot start is invoked, not stopped.
func failingHandler(mw metricsWriter, err error, fn config.Function) func(context.Context, []byte) (struct{}, error) {
	return func(ctx context.Context, payload []byte) (struct{}, error) {
		ms := failureMetrics(err)
		if fn == config.Audit && scheduledRun(payload) {
			ms = append(ms, emf.Metric{Name: MetricLagSeconds, Unit: emf.Seconds, Value: UnknownLag.Seconds()})
		}
		mw.write(ctx, ms, map[string]any{"errorType": ErrorType(err)})
		return struct{}{}, err
	}
}

// ErrorType is the errorType of err's Lambda error response: InvalidInput,
// ConfigurationError, DependencyUnavailable, Conflict or InternalError.
func ErrorType(err error) string {
	switch ipguard.ErrorCode(err) {
	case ipguard.EInvalid:
		return "InvalidInput"
	case ipguard.EConfig:
		return "ConfigurationError"
	case ipguard.EUnavailable:
		return "DependencyUnavailable"
	case ipguard.EConflict:
		return "Conflict"
	default:
		return "InternalError"
	}
}

func (d Deps) snsClient() *sns.Client { return sns.NewFromConfig(d.AWS) }

func (d Deps) metricsWriter() metricsWriter {
	out := d.MetricsOut
	if out == nil {
		out = os.Stdout
	}
	ns := d.Config.MetricsNamespace
	if ns == "" {
		ns = config.DefaultMetricsNamespace
	}
	mw := metricsWriter{out: out, namespace: ns, now: time.Now, level: d.Config.LogLevel}
	if d.Portal != nil {
		mw.budgetFallbacks = d.Portal.TakeBudgetFallbacks
	}
	return mw
}

func errorTypeOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return ErrorType(err)
}
