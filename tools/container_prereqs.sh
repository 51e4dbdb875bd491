#!/usr/bin/env bash
# Make sure a container engine can run here: Docker if it answers, else podman with
# runc and mmdebstrap (installed from Debian's packages when missing). Exit 0 when an
# engine ran a trivial container, 1 otherwise (the caller decides to skip).
set -uo pipefail
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v podman >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1 \
    || [ ! -x /usr/sbin/runc ]; then
  command -v apt-get >/dev/null 2>&1 || exit 1
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      podman runc mmdebstrap >/dev/null; } || exit 1
fi
# a Debian base for the build (tools/build_container.sh makes it when missing); the
# same image runs the trivial container that proves the engine works here
if ! podman image exists localhost/debian-py:bookworm; then
  tar=$(mktemp --suffix=.tar)
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$tar" >/dev/null 2>&1 || { rm -f "$tar"; exit 1; }
  podman import "$tar" localhost/debian-py:bookworm >/dev/null || { rm -f "$tar"; exit 1; }
  rm -f "$tar"
fi
podman --runtime /usr/sbin/runc run --rm --network none --ulimit nofile=1024:1024 \
    --ulimit nproc=4096:4096 localhost/debian-py:bookworm true
