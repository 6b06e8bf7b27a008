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
	@go build -o bin/partnersim ./cmd/partnersim
	@bash scripts/run.sh

## test: the same services, then gofmt, go vet and the whole suite with the race detector
test: check-go services lint
	@. $(ENV) && go test $(GO_TEST_FLAGS) ./...

## services: make sure PostgreSQL and Redis are reachable (writes .data/services.env)
services:
	@bash scripts/services.sh

## stop: stop the private PostgreSQL and Redis started under .data/
stop:
	@bash scripts/stop.sh

build: check-go
	@go build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/hub

lint: check-go
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.data/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	@go vet ./...

migrate: services build
	@. $(ENV) && ./$(BIN) migrate up

seed: migrate
	@. $(ENV) && ./$(BIN) seed

audit: services build
	@. $(ENV) && ./$(BIN) audit

check-go:
	@command -v go >/dev/null || { echo "Go is not installed: get Go $$(sed -n 's/^go //p' go.mod) or newer (https://go.dev/dl) and run again"; exit 1; }

clean:
	rm -rf bin
