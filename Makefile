# `make test`: as root first installs what the end-to-end tests need (scripts/test-deps.sh),
# then vet, unit tests with -race (fuzz seed corpora included), then the end-to-end suite.
# The race run leaves out ./test/e2e so the slow e2e suite runs once, in its own step.
GO ?= go
# e2e tests run in parallel: every test has its own manager, cgroups and unit names, and
# most of their time is spent waiting for jobs and timeouts, not on the CPU.
E2E_PARALLEL ?= 6

.PHONY: test e2e demo deps
deps:
	bash scripts/test-deps.sh

test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)
	$(GO) test -count=1 -v -timeout 50m -parallel $(E2E_PARALLEL) ./test/e2e/...

e2e: deps
	$(GO) test -count=1 -v -timeout 50m -parallel $(E2E_PARALLEL) ./test/e2e/...

# `make demo`: as root, a sandboxed systemd --user, three podman-compose stacks and the
# Duplicati simulator; prints the timeline of `systemctl --user start backup@alpha backup@beta backup@gamma`.
demo: deps
	bash demo/demo.sh
