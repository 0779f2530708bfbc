#!/usr/bin/env bash
# Makes the runtime base image from Debian packages, for machines that reach no container
# registry: a distroless-style root filesystem (glibc, libgcc, CA certificates, a passwd
# entry for the non-root user, no shell, no package manager) built with mmdebstrap, then
# `podman import`ed as $BASE_IMAGE. The tarball is cached in $CACHE_DIR: once it exists the
# image is re-imported from it with no network at all.
#
#   deploy/container/make-base.sh [BASE_IMAGE]   (default localhost/mcp-edge-base:bookworm)
#
# Environment: CACHE_DIR (default target/container), SUITE (default bookworm), MIRROR.
set -euo pipefail

image=${1:-localhost/mcp-edge-base:bookworm}
suite=${SUITE:-bookworm}
cache=${CACHE_DIR:-target/container}
tarball="$cache/base-$suite.tar"

if podman image exists "$image" 2>/dev/null; then
    exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || {
        echo "mmdebstrap is missing: apt-get install mmdebstrap (or run .ci/run)" >&2
        exit 1
    }
    echo "building the base root filesystem ($suite) into $tarball" >&2
    # extract: the packages' files only, no maintainer scripts and no shell.
    mmdebstrap --quiet --variant=extract \
        --include=libc6,libgcc-s1,ca-certificates,tzdata,netbase \
        --customize-hook='mkdir -p "$1/etc/ssl/certs" "$1/tmp" "$1/home/nonroot" "$1/etc/mcp-edge"' \
        --customize-hook='chmod 1777 "$1/tmp"' \
        --customize-hook='cat /etc/ssl/certs/ca-certificates.crt > "$1/etc/ssl/certs/ca-certificates.crt"' \
        --customize-hook='printf "root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n" > "$1/etc/passwd"' \
        --customize-hook='printf "root:x:0:\nnonroot:x:65532:\n" > "$1/etc/group"' \
        --customize-hook='chown 65532:65532 "$1/home/nonroot"' \
        --customize-hook='rm -rf "$1/usr/share/doc" "$1/usr/share/man" "$1/usr/share/locale" "$1/usr/share/lintian" "$1/var/cache/apt" "$1/var/lib/apt/lists"' \
        "$suite" "$cache/base-$suite.partial.tar" ${MIRROR:+"$MIRROR"}
    mv "$cache/base-$suite.partial.tar" "$tarball"
fi
podman import --quiet "$tarball" "$image" >/dev/null
echo "imported $image from $tarball" >&2
