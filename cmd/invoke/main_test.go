package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"ipguard/internal/testbed/localaws"
)

// `make invoke FN=audit EVENT=events/audit-test-alert.json` in one command:
// the real bootstrap under the emulator against a fresh local stack; the
// answer on standard output, the log and the delivered message on standard
// error; nothing left running (localdeploy stops moto by its PID).
func TestInvokeRunsASampleEventLocally(t *testing.T) {
	localaws.SkipShort(t, "moto_server and the Lambda emulator")
	var out, errOut bytes.Buffer
	failed, err := run(context.Background(), "audit", "events/audit-test-alert.json", "events/onboard-direct.json", &out, &errOut)
	if err != nil || failed {
		t.Fatalf("failed %v, err %v\n%s\n%s", failed, err, out.String(), errOut.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res["test"] != true {
		t.Errorf("answer %s, want the test alert's result", out.String())
	}
	if !strings.Contains(errOut.String(), "1 message(s) in the alert topic's mailbox") || !strings.Contains(errOut.String(), "test:true") {
		t.Errorf("standard error does not show the delivered test message:\n%s", errOut.String())
	}
	if _, err := run(context.Background(), "nope", "events/audit-test-alert.json", "", &out, &errOut); err == nil || !strings.Contains(err.Error(), "FN=") {
		t.Errorf("a wrong FN: %v, want it named", err)
	}
}

// `make help` lists every target of the Makefile, each with one line.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	root, err := localaws.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	helped := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## ([A-Za-z0-9_-]+): \S`).FindAllStringSubmatch(string(b), -1) {
		helped[m[1]] = true
	}
	targets := regexp.MustCompile(`(?m)^([A-Za-z0-9_-]+):([^=]|$)`).FindAllStringSubmatch(string(b), -1)
	if len(targets) < 5 {
		t.Fatalf("found only %d targets", len(targets))
	}
	for _, m := range targets {
		if !helped[m[1]] {
			t.Errorf("target %s has no \"## %s: ...\" line for make help", m[1], m[1])
		}
	}
}
