# The two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ENV := .data/services.env
BIN := bin/hub
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO_TEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: run test services stop build lint check-go migrate seed audit bench clean

## run: install/start PostgreSQL and Redis if needed, migrate, seed the demo coalition, serve
run: check-go services build
	@CGO_ENABLED=0 bash scripts/gobuild.sh "the partner simulator" -o=bin/partnersim ./cmd/partnersim
	@CGO_ENABLED=0 bash scripts/gobuild.sh "the mail catcher" -o=bin/mailcatcher ./cmd/mailcatcher
	@bash scripts/run.sh

## test: the same services, then gofmt, go vet, staticcheck, the lint of the API document, the whole suite
## with the race detector, and a short run of every fuzz target (FUZZTIME, default 3s each)
test: check-go test-deps services lint openapi-lint
	@bash scripts/gobuild.sh "every package for the race detector" $(filter -race,$(GO_TEST_FLAGS)) ./...
	@printf '\033[1;34m==>\033[0m running the whole suite (go test $(GO_TEST_FLAGS) ./...)\n'
	@. $(ENV) && go test $(GO_TEST_FLAGS) ./...
	@. $(ENV) && bash scripts/fuzz.sh

## test-deps: what the suite needs besides the services (a C compiler for the race detector,
## Chromium for the browser tests), installed when absent (scripts/deps.sh)
.PHONY: test-deps
test-deps:
	@bash scripts/deps.sh test

## openapi-lint: lint the API document the hub serves (`hub openapi`, the merged web/openapi/*.yaml)
## with Redocly's CLI and the rules of tools/openapi/redocly.yaml; any error fails
OPENAPI_TOOLS := tools/openapi
OPENAPI_STAMP := $(OPENAPI_TOOLS)/node_modules/.package-lock.json
.PHONY: openapi-lint openapi-tools node-deps docs-vendor
openapi-lint: build openapi-tools
	@./$(BIN) openapi > bin/openapi.json
	@echo "linting the API document (redocly lint bin/openapi.json)"
	@cd $(OPENAPI_TOOLS) && out=$$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	  node_modules/.bin/redocly lint --config redocly.yaml --format stylish ../../bin/openapi.json 2>&1) || { echo "$$out"; exit 1; }

## openapi-tools: the npm packages pinned in tools/openapi (package-lock.json), installed when
## absent or when the lock file changes
openapi-tools: $(OPENAPI_STAMP)
$(OPENAPI_STAMP): $(OPENAPI_TOOLS)/package-lock.json | node-deps
	@echo "installing the API document's tools (npm ci in $(OPENAPI_TOOLS))"
	@cd $(OPENAPI_TOOLS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

## node-deps: Debian's Node.js and npm for tools/openapi, installed when absent
node-deps:
	@command -v npm >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "the API document's lint needs Node.js 18.17 or newer and npm: install them by hand"; exit 1; }; \
	  SUDO=""; if [ "$$(id -u)" != 0 ]; then SUDO=$$(command -v sudo || true); fi; \
	  echo "installing nodejs and npm (apt-get)"; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }

## docs-vendor: copy the Redoc bundle pinned in tools/openapi into web/static, where it renders
## /docs; its one request to another host (the footer logo) becomes an empty image (docs/openapi.md)
docs-vendor: openapi-tools
	@sed 's#https://cdn.redoc.ly/redoc/logo-mini.svg#data:,#' $(OPENAPI_TOOLS)/node_modules/redoc/bundles/redoc.standalone.js \
	  > web/static/redoc.standalone.js
	@cp $(OPENAPI_TOOLS)/node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt web/static/
	@echo "web/static/redoc.standalone.js is redoc $$(cd $(OPENAPI_TOOLS) && node -p 'require("redoc/package.json").version')"

## chaos: kill the hub, its worker, a private PostgreSQL and a private Redis under load (docs/reliability.md)
.PHONY: chaos
chaos: check-go services
	@. $(ENV) && go test -tags chaos -count=1 -timeout 30m -run '^TestChaos' -v ./cmd/hub/ 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|\s+chaos_\w*test)' ; exit $${PIPESTATUS[0]}

## cluster: on loopback, a PostgreSQL primary and streaming replica, Redis with a replica and three
## Sentinels, two `hub serve` behind HAProxy and two `hub worker`; migrates, seeds, prints the URLs
## (scripts/cluster.sh, docs/operations.md). cluster-stop stops all of it.
.PHONY: cluster cluster-stop chaos-cluster
cluster: check-go build
	@CGO_ENABLED=0 bash scripts/gobuild.sh "the mail catcher" -o=bin/mailcatcher ./cmd/mailcatcher
	@bash scripts/cluster.sh start

cluster-stop:
	@bash scripts/cluster.sh stop

## chaos-cluster: under load through HAProxy, kill a serve process, a worker mid settlement close, the
## Redis primary and the PostgreSQL primary, checking after each that nothing acknowledged is lost or
## doubled (docs/reliability.md). Bounded to 10 minutes; not part of `make test`.
chaos-cluster: cluster
	@. .data/cluster/cluster.env && go test -tags chaos -count=1 -timeout 10m -run '^TestChaosCluster' -v ./cmd/hub/ 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|\s+chaos_\w*test)' ; exit $${PIPESTATUS[0]}

## services: make sure PostgreSQL and Redis are reachable (writes .data/services.env)
services:
	@bash scripts/services.sh

## stop: stop the private PostgreSQL and Redis started under .data/
stop:
	@bash scripts/stop.sh

## build: the hub needs no C, and building it without cgo gives the same compiled packages
## whether a C compiler is installed or not (make test installs one for the race detector),
## so make test's go vet reuses what make run compiled.
build: check-go
	@CGO_ENABLED=0 bash scripts/gobuild.sh "the hub" "-ldflags=-X main.version=$(VERSION)" -o=$(BIN) ./cmd/hub

## lint: gofmt, go vet and staticcheck (the version pinned in scripts/staticcheck.sh, installed
## when absent); any finding fails
lint: check-go
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.data/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	@CGO_ENABLED=0 bash scripts/gobuild.sh "every package" ./...
	@CGO_ENABLED=0 go vet ./...
	@CGO_ENABLED=0 go vet -tags chaos ./cmd/hub/
	@bash scripts/staticcheck.sh

migrate: services build
	@. $(ENV) && ./$(BIN) migrate up

seed: migrate
	@. $(ENV) && ./$(BIN) seed

audit: services build
	@. $(ENV) && ./$(BIN) audit

## bench: a few-minute run of every benchmark (HTTP load against a real hub in its own
## database hub_bench, settlement close of a generated month); prints a table and writes
## bench-results/*.json. Not part of `make test`. Full scale: BENCH_ARGS="-duration 60s
## -settle-tx 5000000 -settle-members 1000000" (see docs/performance.md). The second run is
## single earns at 1, 4, 16 and 64 clients (earn-scale): the group commit at low and high load.
bench: check-go services build
	@go build -o bin/hubbench ./cmd/hubbench
	@. $(ENV) && ./bin/hubbench -quick -hub $(BIN) $(BENCH_ARGS)
	@. $(ENV) && ./bin/hubbench -quick -hub $(BIN) -workloads earn-scale $(BENCH_ARGS)

## check-go: Go on PATH (the version is in go.mod), and the CA certificates it fetches modules with
check-go:
	@bash scripts/deps.sh go

clean:
	rm -rf bin
