#!/usr/bin/env bash
# Install what lambdapack needs on Debian 12, only what is missing.
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh --test   plus everything the test suite runs
set -euo pipefail

build_pkgs=(gcc pkg-config meson ninja-build libarchive-dev libelf-dev libzstd-dev
            libcjson-dev libdeflate-dev zlib1g-dev libcurl4-openssl-dev libyaml-dev)
test_pkgs=(libcmocka-dev python3 python3-yaml clang lld elfutils binutils gcc-aarch64-linux-gnu
           libc6-dev-arm64-cross unzip zip p7zip-full libarchive-tools openssl nodejs
           util-linux time pigz fdupes hyperfine bc
           umoci skopeo podman runc oci-image-tool golang-github-opencontainers-image-spec-dev
           python3-jsonschema docker-registry busybox-static uidmap fuse-overlayfs docker.io
           chromium apache2-utils python3-cryptography zsh man-db bsdextrautils)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
