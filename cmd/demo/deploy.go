package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/localdeploy"
)

// portalTZ is the dev portal's time zone: its login dates carry this offset.
const portalTZ = 3 * time.Hour

// demo is the running deployment the story is told against.
type demo struct {
	out     io.Writer
	stack   *localdeploy.Stack
	onboard *localaws.Emulator
	audit   *localaws.Emulator
	// enforcing is AuditFunction again, deployed with ENFORCEMENT_MODE=end-session.
	enforcing *localaws.Emulator
	logPath   string
}

// run sets everything up, tells the story and tears everything down again
// (deferred, so also on failure and when ctx is cancelled by Ctrl-C).
func run(ctx context.Context, out io.Writer) (err error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "ipguard-demo-")
	if err != nil {
		return err
	}
	d := &demo{out: out, logPath: filepath.Join(dir, "functions.log")}
	logFile, err := os.Create(d.logPath)
	if err != nil {
		return err
	}
	defer func() {
		logFile.Close()
		fmt.Fprintf(out, "\nFunction logs (all emulators): %s\n", d.logPath)
	}()

	title(out, "DocSpace IP Guard — local demo")
	fmt.Fprintf(out, "Building both bootstraps for linux/%s ... ", runtime.GOARCH)
	boot := map[string]string{}
	for _, fn := range []string{"onboard", "audit"} {
		boot[fn] = filepath.Join(dir, fn, "bootstrap")
		if err := localaws.BuildBootstrap(ctx, "./functions/"+fn, boot[fn]); err != nil {
			fmt.Fprintln(out)
			return err
		}
	}
	defer func() { // keep the log, drop the binaries
		os.RemoveAll(filepath.Join(dir, "onboard"))
		os.RemoveAll(filepath.Join(dir, "audit"))
	}()
	fmt.Fprintf(out, "done (%s)\n", time.Since(start).Round(100*time.Millisecond))

	fmt.Fprint(out, "Starting moto, the dev portal and the emulators ... ")
	if d.stack, err = localdeploy.Start(ctx, localdeploy.Options{TZOffset: portalTZ}); err != nil {
		fmt.Fprintln(out)
		return err
	}
	if err = d.stack.StartFindings(ctx); err != nil {
		fmt.Fprintln(out)
		d.stack.Close()
		return err
	}
	motoPID := d.stack.Moto.PID
	defer func() {
		if cerr := d.stack.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stop the local deployment: %w", cerr))
		}
		fmt.Fprintf(out, "Stopped the emulators, the dev portal and moto_server (pid %d).\n", motoPID)
	}()
	var logMu sync.Mutex
	env := d.stack.FunctionEnv("LOG_LEVEL=info", "AWS_LAMBDA_FUNCTION_TIMEOUT=60", "AUDIT_SCHEDULE=rate(5 minutes)")
	for _, fn := range []struct {
		name, boot string
		env        []string
		emu        **localaws.Emulator
	}{
		{"onboard", boot["onboard"], env, &d.onboard},
		{"audit", boot["audit"], env, &d.audit},
		{"audit end-session", boot["audit"], append(slices.Clone(env), "ENFORCEMENT_MODE=end-session"), &d.enforcing},
	} {
		w := &prefixWriter{mu: &logMu, w: logFile, prefix: "[" + fn.name + "] "}
		e, err := localaws.StartEmulator(ctx, fn.boot, fn.env, w)
		if err != nil {
			fmt.Fprintln(out)
			return err
		}
		*fn.emu = e
		defer func() {
			if serr := e.Stop(); serr != nil {
				err = errors.Join(err, fmt.Errorf("stop the %s emulator: %w", fn.name, serr))
			}
			w.Flush()
		}()
	}
	fmt.Fprintln(out, "done")
	if err := d.describe(ctx); err != nil {
		return err
	}

	if err := d.tell(ctx); err != nil {
		return err
	}
	if err := d.checkLogHasNoKey(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nEvery step behaved as shown (%s in all).\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// describe prints what is running where. The API key is never printed.
func (d *demo) describe(ctx context.Context) error {
	s := d.stack
	t, err := s.DDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(localdeploy.TableName)})
	if err != nil {
		return fmt.Errorf("describe table: %w", err)
	}
	types := map[string]string{}
	for _, a := range t.Table.AttributeDefinitions {
		types[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	var keys []string
	for _, k := range t.Table.KeySchema {
		keys = append(keys, fmt.Sprintf("%s (%s, %s)", aws.ToString(k.AttributeName), types[aws.ToString(k.AttributeName)], k.KeyType))
	}
	fmt.Fprintln(d.out, "\nLocal deployment:")
	table(d.out, nil, [][]string{
		{"moto server", fmt.Sprintf("%s (pid %d)", s.Moto.Endpoint, s.Moto.PID)},
		{"functions' AWS endpoint", s.AWSEndpoint + " (records SNS publishes, then forwards to moto)"},
		{"DynamoDB table", fmt.Sprintf("%s, key %s, from template.yaml", localdeploy.TableName, strings.Join(keys, ", "))},
		{"secret", localdeploy.SecretName + ` = {"apiKey": "<redacted>"}`},
		{"SNS topic", s.TopicARN},
		{"stand-in mailbox", "SQS queue " + localdeploy.QueueName + ", subscribed to the topic"},
		{"findings bus", localdeploy.BusName + ", rule \"everything but the test alert\" -> SQS queue " + localdeploy.SIEMQueueName + " (a SIEM stand-in)"},
		{"login archive", "S3 bucket " + localdeploy.ArchiveBucket + " (ARCHIVE_BUCKET)"},
		{"dev DocSpace portal", fmt.Sprintf("%s (time zone %s)", s.PortalURL, offset(portalTZ))},
		{"OnboardFunction", fmt.Sprintf("bootstrap under aws-lambda-rie at %s (pid %d)", d.onboard.URL, d.onboard.PID)},
		{"AuditFunction", fmt.Sprintf("bootstrap under aws-lambda-rie at %s (pid %d)", d.audit.URL, d.audit.PID)},
	})
	return nil
}

// invocationError is a handler error the emulator returned.
type invocationError struct{ Type, Message string }

func (e *invocationError) Error() string { return e.Type + ": " + e.Message }

// invoke sends event to the function and decodes its result into v.
func invoke(ctx context.Context, e *localaws.Emulator, event any, v any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return err
	}
	body, err := e.Invoke(ctx, payload)
	if err != nil {
		return err
	}
	var fail struct{ ErrorType, ErrorMessage string }
	if json.Unmarshal(body, &fail) == nil && (fail.ErrorType != "" || fail.ErrorMessage != "") {
		return &invocationError{Type: fail.ErrorType, Message: fail.ErrorMessage}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode result %s: %w", body, err)
	}
	return nil
}

// checkLogHasNoKey fails if the API key shows up in the functions' log.
func (d *demo) checkLogHasNoKey() error {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return err
	}
	if strings.Contains(string(b), d.stack.APIKey) {
		return fmt.Errorf("the DocSpace API key appears in %s", d.logPath)
	}
	return nil
}

// prefixWriter writes whole lines to w, each after prefix; the emulators
// share one log file through it.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := io.WriteString(p.w, p.prefix+string(p.buf[:i+1])); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}

// Flush writes a last unfinished line.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		io.WriteString(p.w, p.prefix+string(p.buf)+"\n")
		p.buf = nil
	}
}
