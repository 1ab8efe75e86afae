# Minimal Makefile (written with the e2e harness; replace freely).
# `make test`: vet, unit tests with -race, then the end-to-end suite verbosely.
# The race run leaves out ./test/e2e so the slow e2e suite runs once, in its own step.
GO ?= go

.PHONY: test e2e demo
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)
	$(GO) test -count=1 -v -timeout 30m ./test/e2e/...

e2e:
	$(GO) test -count=1 -v -timeout 30m ./test/e2e/...

# `make demo`: as root, a sandboxed systemd --user, three podman-compose stacks and the
# Duplicati simulator; prints the timeline of `systemctl --user start backup@alpha backup@beta backup@gamma`.
demo:
	bash demo/demo.sh
