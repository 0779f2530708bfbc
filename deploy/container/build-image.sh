#!/usr/bin/env bash
# Builds the mcp-edge image from a binary built on the host, offline: the runtime base is
# made from Debian packages (make-base.sh, cached under target/container) and the
# Containerfile's `prebuilt` stage takes the binary. Prints the image's size.
#
#   deploy/container/build-image.sh BINARY [IMAGE]     (default localhost/mcp-edge:latest)
#
# The build context is staged in target/container/context-IMAGE, holding only what the
# Containerfile copies (the binary, stripped; the image's config), so that no build walks
# target/. Environment: BASE_IMAGE (default localhost/mcp-edge-base:bookworm),
# CONTAINERS_CONF (default deploy/container/containers.conf).
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=${1:?usage: build-image.sh BINARY [IMAGE]}
image=${2:-localhost/mcp-edge:latest}
base=${BASE_IMAGE:-localhost/mcp-edge-base:bookworm}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/container/containers.conf}

for tool in podman strip; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "$tool is missing: apt-get install podman buildah runc mmdebstrap binutils (or run .ci/run)" >&2
        exit 1
    }
done
CACHE_DIR=target/container deploy/container/make-base.sh "$base"

context="target/container/context-$(printf '%s' "$image" | tr -c 'A-Za-z0-9._-' '_')"
rm -rf "$context"
mkdir -p "$context/deploy/container"
cp Containerfile "$context/Containerfile"
cp deploy/container/mcp-edge.yaml "$context/deploy/container/"
strip -o "$context/mcp-edge" "$binary"

podman build --quiet --format docker --file "$context/Containerfile" \
    --build-arg BINARY_FROM=prebuilt --build-arg PREBUILT_BINARY=mcp-edge \
    --build-arg RUNTIME_IMAGE="$base" --tag "$image" "$context" >/dev/null
rm -rf "$context"
# The prebuilt stage's image is kept as a build cache by podman; nothing reuses it.
podman image prune --force --filter label=io.github.mcp-edge.stage=prebuilt >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "$image: $size bytes ($((size / 1024 / 1024)) MiB), binary $binary"
