# DocSpace IP Guard. GNU make. `make help` (also plain `make`) lists every target: the "## target:" lines below.
# `sam build` calls build-OnboardFunction / build-AuditFunction.

ARCH ?= arm64
GO ?= go
FUNCTIONS := onboard audit
GOBUILD = CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"

.PHONY: help build build-OnboardFunction build-AuditFunction check-tools test lint bench demo invoke clean

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

## lint: vet and cfn-lint on template.yaml
lint:
	$(GO) vet ./...
	cfn-lint template.yaml

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

## clean: remove build/
clean:
	rm -rf build
