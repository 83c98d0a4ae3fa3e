// Command invoke runs one sample event through a function on this machine,
// the way `sam local invoke -e` does but without Docker: the real bootstrap
// under the Lambda Runtime Interface Emulator, against a fresh local stack
// (moto for DynamoDB, SNS, SQS and Secrets Manager; the dev DocSpace portal).
// Run it with
//
//	make invoke FN=onboard EVENT=events/onboard-add.json
//
// Before the event it onboards the sample user (SEED, default
// events/onboard-direct.json; SEED= for none), so the events that change or
// read that user work on their own. It prints the function's answer on
// standard output, then its log lines and the alerts the stand-in mailbox
// received on standard error, and stops everything it started, also on
// failure and on Ctrl-C. It exits 1 when the function answered with an
// error, 2 when it could not run it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/localdeploy"
)

func main() {
	fn := flag.String("fn", "", "the function: onboard or audit")
	event := flag.String("event", "", "the event file, e.g. events/onboard-add.json")
	seed := flag.String("seed", "events/onboard-direct.json", "an onboarding event sent first (empty: none)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	failed, err := run(ctx, *fn, *event, *seed, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "invoke: %v\n", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func run(ctx context.Context, fn, eventPath, seedPath string, out, errOut io.Writer) (failed bool, err error) {
	if fn != "onboard" && fn != "audit" {
		return false, fmt.Errorf("FN=%q: must be onboard or audit (e.g. make invoke FN=onboard EVENT=events/onboard-add.json)", fn)
	}
	event, err := readEvent(eventPath)
	if err != nil {
		return false, err
	}
	var seed []byte
	if seedPath != "" {
		if seed, err = readEvent(seedPath); err != nil {
			return false, fmt.Errorf("SEED: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "ipguard-invoke-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(errOut, "building %s and starting moto, the dev portal and the emulator ...\n", fn)
	boot := map[string]string{}
	for _, f := range []string{"onboard", fn} {
		if boot[f] != "" {
			continue
		}
		boot[f] = filepath.Join(dir, f, "bootstrap")
		if err := localaws.BuildBootstrap(ctx, "./functions/"+f, boot[f]); err != nil {
			return false, err
		}
	}
	stack, err := localdeploy.Start(ctx, localdeploy.Options{})
	if err != nil {
		return false, err
	}
	defer func() { err = errors.Join(err, stack.Close()) }()
	env := stack.FunctionEnv("LOG_LEVEL=info", "AWS_LAMBDA_FUNCTION_TIMEOUT=60")

	if seed != nil {
		var log bytes.Buffer
		answer, err := invokeOnce(ctx, boot["onboard"], env, seed, &log)
		if err != nil {
			return false, fmt.Errorf("seed %s: %w", seedPath, err)
		}
		if bytes.Contains(answer, []byte(`"errorType"`)) {
			return false, fmt.Errorf("seed %s failed: %s\n%s", seedPath, answer, log.String())
		}
		fmt.Fprintf(errOut, "seeded with %s\n", seedPath)
		if _, err := stack.Mail(ctx, 300*time.Millisecond); err != nil { // the seed's own messages, if any
			return false, err
		}
	}

	var log bytes.Buffer
	answer, err := invokeOnce(ctx, boot[fn], env, event, &log)
	if err != nil {
		return false, err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, answer, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(answer)
	}
	fmt.Fprintln(out, pretty.String())
	fmt.Fprintf(errOut, "\n--- %s log ---\n%s", fn, log.String())
	mail, err := stack.Mail(ctx, 300*time.Millisecond)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(errOut, "\n--- %d message(s) in the alert topic's mailbox ---\n", len(mail))
	for _, m := range mail {
		fmt.Fprintf(errOut, "subject: %s\nattributes: %v\n%s\n\n", m.Subject, m.Attributes, m.Message)
	}
	var e struct {
		ErrorType string `json:"errorType"`
	}
	_ = json.Unmarshal(answer, &e)
	return e.ErrorType != "", nil
}

// invokeOnce runs bootstrap under its own emulator for one event.
func invokeOnce(ctx context.Context, bootstrap string, env []string, event []byte, log io.Writer) ([]byte, error) {
	emu, err := localaws.StartEmulator(ctx, bootstrap, env, log)
	if err != nil {
		return nil, err
	}
	answer, err := emu.Invoke(ctx, event)
	time.Sleep(100 * time.Millisecond) // let the emulator copy the last log lines
	return answer, errors.Join(err, emu.Stop())
}

// readEvent reads an event file relative to the module root or the working
// directory.
func readEvent(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("EVENT is empty: name a file of events/, e.g. make invoke FN=onboard EVENT=events/onboard-add.json")
	}
	b, err := os.ReadFile(path)
	if err != nil && !filepath.IsAbs(path) {
		if root, rerr := localaws.ModuleRoot(); rerr == nil {
			b, err = os.ReadFile(filepath.Join(root, path))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read the event: %w", err)
	}
	return b, nil
}
