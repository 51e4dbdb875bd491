#!/usr/bin/env bash
# Build the BIDS-App image from the Dockerfile, with Docker or with podman.
#
#   tools/build_container.sh [TAG]          (default TAG: nipype-icainr:<version>)
#   ICAINR_EXTRAS=network tools/build_container.sh nipype-icainr:network   (with PyTorch)
#
# Engine: Docker when a Docker engine answers, else podman (rootful or rootless).
# Base image: python:3.11-slim when the registry answers; otherwise (podman, no
# registry) a Debian bookworm base made here with mmdebstrap and imported as
# localhost/debian-py:bookworm (apt-get install podman runc mmdebstrap).
# PyTorch: the CPU build, from https://download.pytorch.org/whl/cpu, or from a local
# wheel when one lies in $ICAINR_TORCH_WHEELS (default /opt/wheels): the folder is
# served as a throwaway package index for the build.
# Prints the image's size and the build's seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(python3 -c "import re;print(re.search(r'__version__ = \"(.+?)\"', open('nipype_icainr/__init__.py').read()).group(1))")
TAG=${1:-nipype-icainr:$VERSION}
WHEELS=${ICAINR_TORCH_WHEELS:-/opt/wheels}
EXTRAS=${ICAINR_EXTRAS:-}
START=$(date +%s)

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  ENGINE=(docker)
  BUILD_OPTS=()
elif command -v podman >/dev/null 2>&1; then
  ENGINE=(podman)
  # crun refuses cgroups in hybrid mode on some hosts ("cgroups in hybrid mode not
  # supported"); runc works there
  if [ -x /usr/sbin/runc ]; then
    ENGINE=(podman --runtime /usr/sbin/runc)
  fi
  # podman's default ulimits are refused in some sandboxes; pip needs the host's CA bundle
  # --format docker: the OCI format would ignore the Dockerfile's SHELL (pipefail)
  BUILD_OPTS=(--format docker --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
              --volume /etc/ssl/certs:/etc/ssl/certs:ro)
else
  echo "build_container: neither a Docker engine nor podman is available" >&2
  exit 2
fi
echo "build_container: engine ${ENGINE[*]}"

BASE=python:3.11-slim
if ! "${ENGINE[@]}" pull -q "$BASE" >/dev/null 2>&1; then
  BASE=localhost/debian-py:bookworm
  if ! "${ENGINE[@]}" image exists "$BASE" 2>/dev/null; then
    command -v mmdebstrap >/dev/null || { echo "build_container: no registry and no mmdebstrap" >&2; exit 2; }
    TMP=$(mktemp -d)
    echo "build_container: no registry; making a Debian base with mmdebstrap"
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$TMP/base.tar"
    "${ENGINE[@]}" import "$TMP/base.tar" "$BASE" >/dev/null
    rm -rf "$TMP"
  fi
fi

TORCH_INDEX=https://download.pytorch.org/whl/cpu
SERVER_PID=
WHEEL=
if [ -n "$EXTRAS" ]; then
  WHEEL=$(ls "$WHEELS"/torch-*+cpu-cp311-*.whl 2>/dev/null | head -n 1 || true)
fi
if [ -n "$WHEEL" ]; then
  INDEX=$(mktemp -d)
  mkdir -p "$INDEX/simple/torch"
  ln -s "$WHEEL" "$INDEX/simple/torch/$(basename "$WHEEL")"
  printf '<a href="%s">%s</a>\n' "$(basename "$WHEEL")" "$(basename "$WHEEL")" \
    > "$INDEX/simple/torch/index.html"
  PORT=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
  python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$INDEX" >/dev/null 2>&1 &
  SERVER_PID=$!
  trap 'kill $SERVER_PID 2>/dev/null; rm -rf "$INDEX"' EXIT
  TORCH_INDEX=http://127.0.0.1:$PORT/simple
  echo "build_container: torch from the local wheel $(basename "$WHEEL")"
fi

"${ENGINE[@]}" build --network host "${BUILD_OPTS[@]}" \
  --build-arg BASE_IMAGE="$BASE" --build-arg TORCH_INDEX="$TORCH_INDEX" \
  --build-arg EXTRAS="$EXTRAS" --build-arg VERSION="$VERSION" \
  -t "$TAG" .
SIZE=$("${ENGINE[@]}" image inspect "$TAG" --format '{{.Size}}')
echo "build_container: built $TAG, $((SIZE / 1000000)) MB, in $(( $(date +%s) - START )) s"
