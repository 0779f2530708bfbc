# mcp-edge developer entry points. `make demo` and `make test` work on a fresh machine:
# `setup` installs what the build needs and the machine may lack.

CARGO ?= cargo

.PHONY: setup setup-test demo test lint build deny release-deps image

# The RustSec advisory database that `cargo deny check advisories` clones.
ADVISORY_DB ?= https://github.com/RustSec/advisory-db

## Installs build prerequisites that are missing (cmake, for pingora's zlib-ng).
setup:
	@command -v cmake >/dev/null 2>&1 || { \
		echo "installing cmake (needed by pingora's zlib-ng)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq cmake >/dev/null; \
	}
	@command -v python3 >/dev/null 2>&1 || { echo "python3 is required for the MCP SDK interop tests"; exit 1; }

## Installs the Debian packages the test suite runs (HAProxy, Redis, podman with runc and
## buildah, mmdebstrap, Node.js), where they are missing.
setup-test: setup
	@tests/setup/system-packages.sh

## Runs the proxy on 127.0.0.1:8080 in front of the built-in MCP server (the `demo`
## feature; the shipped binary is built without it).
demo: setup
	$(CARGO) run --release -p mcp-edge --features demo -- demo

build: setup
	$(CARGO) build --workspace --all-targets --all-features

## Formatting and lints, warnings denied, with and without the demo.
lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

## The shipped binary (no features) leaves the demo out: axum is not among its dependencies.
release-deps:
	@if $(CARGO) tree -p mcp-edge -e normal --prefix none | grep -q '^axum '; then \
		echo "the release build of mcp-edge depends on axum (the demo's server)"; exit 1; \
	fi

## The whole test suite: lints, the release dependency check, unit tests, end-to-end tests (real binary, real sockets,
## the official Python MCP SDK installed from PyPI into target/ on first use, the TypeScript
## SDK and the MCP conformance suite from npm into target/node-sdk). The demo feature is
## on: the SDK tests use its server.
test: setup-test lint release-deps
	@command -v npm >/dev/null 2>&1 || { echo "node and npm are required for the TypeScript MCP SDK and conformance tests"; exit 1; }
	$(CARGO) test --workspace --all-features --no-fail-fast

## Dependency guards (deny.toml): licences, duplicate versions, sources, then the RustSec
## advisories where their database can be fetched (skipped with a message elsewhere).
## Needs cargo-deny (`cargo install --locked cargo-deny`); CI installs it. Not part of
## `make test`, which needs neither it nor GitHub.
deny:
	@$(CARGO) deny --version >/dev/null 2>&1 || { \
		echo "cargo-deny is missing: cargo install --locked cargo-deny"; exit 1; }
	$(CARGO) deny check bans licenses sources
	@if ! command -v git >/dev/null 2>&1; then \
		echo "deny: advisories SKIPPED: git is missing, and cargo-deny fetches the advisory database with it"; \
	elif ! timeout 30 git ls-remote --exit-code $(ADVISORY_DB) HEAD >/dev/null 2>&1; then \
		echo "deny: advisories SKIPPED: the advisory database ($(ADVISORY_DB)) cannot be reached from this machine"; \
	else \
		echo "$(CARGO) deny check advisories"; timeout 600 $(CARGO) deny check advisories; \
	fi

## The container image localhost/mcp-edge:latest, offline: the release binary built here,
## on a runtime base made from Debian packages (deploy/container/; needs podman, runc and
## mmdebstrap: `.ci/run` installs them). The multi-stage `podman build .` is the path for
## machines that reach a registry (docs/deploy.md).
IMAGE ?= localhost/mcp-edge:latest
image: setup
	$(CARGO) build --release -p mcp-edge
	deploy/container/build-image.sh target/release/mcp-edge $(IMAGE)
