# DocSpace IP Guard. GNU make. `make help` (also plain `make`) lists every target: the "## target:" lines below.
# `sam build` calls build-OnboardFunction / build-AuditFunction.
# The fast lane, `go test -short ./...`, needs only Go: it skips what needs moto, the emulator, cfn-lint.

ARCH ?= arm64
FUZZ_TIME ?= 30s
GO ?= go
FUNCTIONS := onboard audit
GOBUILD = CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"

.PHONY: help build build-OnboardFunction build-AuditFunction check-tools test lint fuzz model bench demo invoke evaluate clean

## help: list every target with one line each
help:
	@awk '/^## [^:]+: / { t = substr($$0, 4); i = index(t, ": "); printf "  make %-22s %s\n", substr(t, 1, i - 1), substr(t, i + 2) }' $(MAKEFILE_LIST)

## build: linux binaries of both functions in build/<name>/bootstrap (ARCH=arm64, or amd64 for the local emulator)
build:
	@for f in $(FUNCTIONS); do \
		echo "build/$$f/bootstrap (linux/$(ARCH))"; \
		GOOS=linux GOARCH=$(ARCH) $(GOBUILD) -o build/$$f/bootstrap ./functions/$$f || exit 1; \
	done

## build-OnboardFunction: what `sam build` calls for OnboardFunction (arm64, into ARTIFACTS_DIR)
## build-AuditFunction: what `sam build` calls for AuditFunction (arm64, into ARTIFACTS_DIR)
# Called by `sam build` (Metadata BuildMethod: makefile) with ARTIFACTS_DIR set.
# Always arm64: that is the architecture in template.yaml.
build-OnboardFunction:
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/onboard

build-AuditFunction:
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/audit

## check-tools: say which of go, moto_server, cfn-lint and samtranslator are missing, and how to install them
check-tools:
	@missing=0; \
	if ! command -v $(GO) >/dev/null 2>&1; then \
		echo "missing: $(GO) -- install Go 1.26 (https://go.dev/dl/)" >&2; missing=1; fi; \
	if ! command -v moto_server >/dev/null 2>&1; then \
		echo "missing: moto_server -- install with: pip install 'moto[server]==5.2.1'" >&2; missing=1; fi; \
	if ! command -v cfn-lint >/dev/null 2>&1; then \
		echo "missing: cfn-lint -- install with: pip install cfn-lint==1.51.0" >&2; missing=1; fi; \
	if ! python3 -c 'import samtranslator' >/dev/null 2>&1; then \
		echo "missing: python3 module samtranslator -- install with: pip install aws-sam-translator==1.110.0" >&2; missing=1; fi; \
	if [ $$missing -ne 0 ]; then echo "make: install the tools above, then run again" >&2; exit 1; fi

## test: vet and every test (needs go, moto_server, cfn-lint, samtranslator)
test: check-tools
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

## model: the reconciler's randomised model test for MODEL_STEPS (default 20000) of a new seed (MODEL_SEED=N repeats one)
# make test runs 300 steps of seed 1 with the in-memory portal
# (internal/onboard/model_test.go) and 150 through the DocSpace client against
# the dev portal (model_devportal_test.go; MODEL_DEVPORTAL_STEPS, default 2000
# here: its steps take real time); a failure prints its seed and the shortest
# failing sequence.
MODEL_STEPS ?= 20000
MODEL_DEVPORTAL_STEPS ?= 2000
model:
	MODEL_STEPS=$(MODEL_STEPS) MODEL_DEVPORTAL_STEPS=$(MODEL_DEVPORTAL_STEPS) MODEL_SEED=$${MODEL_SEED:-$$(od -An -N3 -tu4 /dev/urandom | tr -d ' ')} \
		$(GO) test -count=1 -run '^TestReconcilerModel(DevPortal)?$$' -v -timeout 30m ./internal/onboard/

## lint: gofmt -l, vet, staticcheck (pinned in go.mod as a tool), go mod tidy -diff, cfn-lint
lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt -l: not formatted (run gofmt -w):" >&2; echo "$$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff
	cfn-lint -c I -- template.yaml
	$(GO) test -count=1 -run CfnLint ./internal/testbed/samtemplate/

## fuzz: every fuzz target for FUZZ_TIME each (default 30s), the inputs tried per target, then make model
# Every native fuzz target in the tree (any func FuzzXxx in a _test.go file),
# one after the other for FUZZ_TIME each; then one line per target with the
# inputs tried (go's "execs") and PASS/FAIL. A failing input is written to the
# package's testdata/fuzz/<target>/ by go, and `make test` runs it from then on.
# A target that fails with "context deadline exceeded" and no failing input
# (Go's fuzz-coordinator race at the -fuzztime deadline, go.dev/issue/75804,
# fixed in Go 1.27) is run once more; a second failure counts.
fuzz:
	@summary=$$(mktemp); failed=0; \
	for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' internal cmd functions 2>/dev/null | xargs -n1 dirname | sort -u); do \
		for t in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== ./$$dir $$t for $(FUZZ_TIME)"; \
			out=$$($(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZ_TIME) ./$$dir 2>&1); rc=$$?; \
			if [ $$rc -ne 0 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input'; then \
				echo "$$out" | tail -n 3; echo "   (no failing input: Go's fuzz-coordinator race at the -fuzztime deadline, go.dev/issue/75804; once more)"; \
				out=$$($(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZ_TIME) ./$$dir 2>&1); rc=$$?; \
			fi; \
			echo "$$out" | tail -n 4; \
			execs=$$(echo "$$out" | grep -o 'execs: [0-9]*' | tail -n 1 | cut -d' ' -f2); \
			if [ $$rc -eq 0 ]; then res=PASS; else res=FAIL; failed=1; echo "$$out" | grep -E 'Failing input|--- FAIL|_test.go' | head -n 5; fi; \
			printf '%-24s %-40s %12s inputs  %s\n' ./$$dir $$t "$${execs:-0}" $$res >> $$summary; \
		done; \
	done; \
	echo; echo "fuzz: inputs tried per target ($(FUZZ_TIME) each)"; cat $$summary; rm -f $$summary; \
	exit $$failed
	@echo; echo "== the reconciler's model test, many more steps than make test (make model)"
	@$(MAKE) --no-print-directory model

## bench: the benchmarks (about five minutes)
# The walk and memory benchmarks take about five minutes together (see README, Performance).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

## demo: the whole product on this machine (moto, dev portal, emulator) telling its story
demo:
	$(GO) run ./cmd/demo

## invoke: run one sample event locally without Docker, e.g. make invoke FN=onboard EVENT=events/onboard-add.json (SEED= to skip onboarding the sample user first)
FN ?=
EVENT ?=
SEED ?= events/onboard-direct.json
invoke:
	$(GO) run ./cmd/invoke -fn '$(FN)' -event '$(EVENT)' -seed '$(SEED)'

## evaluate: detection quality on a seeded population of 300 people over 3 weeks (README "Detection quality"; EVALUATE_ARGS= e.g. -set ALERT_MODE=every)
# internal/testbed/evaluate: onboards, learns the first week and audits two
# weeks of simulated time (a run every 5 minutes) against moto and the dev
# portal, then prints recall per takeover type and false alerts per 100
# users a week. make test runs 40 people and holds the defaults to the goal
# (TestDetectionQualityAtDefaults).
EVALUATE_ARGS ?=
evaluate:
	$(GO) run ./cmd/evaluate $(EVALUATE_ARGS)

## clean: remove build/
clean:
	rm -rf build
