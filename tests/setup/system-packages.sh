#!/usr/bin/env bash
# Installs the Debian packages the test suite runs, where the machine lacks them. Used by
# `make test` (through `make setup-test`) and by CI (`.ci/run`), so that the two agree.
# Idempotent: nothing is installed when every command is already there.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
missing=()
# pingora's zlib-ng.
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v make >/dev/null 2>&1 || missing+=(make)
# The Python SDK virtualenvs under target/.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# The TypeScript SDK, the conformance suite and oidc-provider (tests/node/).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
# Three mcp-edge replicas sit behind HAProxy in tests/e2e_replicas.rs.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# Upstream recycling coordinated across replicas runs against a real Redis
# (tests/e2e_recycle_coordination.rs starts its own on an ephemeral port).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The container image and its test (deploy/container/, tests/e2e_container.rs): podman
# with runc (crun fails on these kernels' cgroups), buildah, and mmdebstrap for the base.
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v strip >/dev/null 2>&1 || missing+=(binutils)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
