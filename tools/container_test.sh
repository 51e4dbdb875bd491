#!/usr/bin/env bash
# Build the BIDS-App image and use it as a user would, with no network and as a
# non-root user: participant and group levels on the bundled sample, then
# icainr-restore inside the container, then a check (inside the container too)
# that the restored NIfTI's header equals the original's and that its data are as
# close as the sidecar's PSNR says. Prints the image size and each stage's seconds.
#
#   tools/container_test.sh [TAG]        (default TAG: nipype-icainr:test)
#
# Needs Docker, or podman (+ runc, + mmdebstrap where no registry is reachable).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-nipype-icainr:test}
SAMPLE=nipype_icainr/data/sample/studyforrest-slab

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  ENGINE=(docker)
  RUN_OPTS=()
else
  ENGINE=(podman)
  [ -x /usr/sbin/runc ] && ENGINE=(podman --runtime /usr/sbin/runc)
  RUN_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
fi

stage() { echo "container_test: $1 in $(( $(date +%s) - $2 )) s"; }

T=$(date +%s)
bash tools/build_container.sh "$TAG"
stage "build" "$T"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r "$SAMPLE" "$WORK/bids"
mkdir -p "$WORK/out" "$WORK/work" "$WORK/restored"
chmod -R a+rX "$WORK/bids"
chmod a+rwx "$WORK/out" "$WORK/work" "$WORK/restored"
RUN=("${ENGINE[@]}" run --rm --network none --user 1000:1000 "${RUN_OPTS[@]}"
     -v "$WORK/bids:/data:ro" -v "$WORK/out:/out" -v "$WORK/work:/work"
     -v "$WORK/restored:/restored" -v "$PWD/tools:/checks:ro")

T=$(date +%s)
"${RUN[@]}" "$TAG" /data /out participant --participant-label 02 -w /work --ratio 100 \
  --nprocs 2 --skip-bids-validation
stage "participant level" "$T"

T=$(date +%s)
"${RUN[@]}" "$TAG" /data /out group
stage "group level" "$T"

T=$(date +%s)
"${RUN[@]}" --entrypoint icainr-restore "$TAG" /out /restored
stage "icainr-restore" "$T"

T=$(date +%s)
"${RUN[@]}" --entrypoint python "$TAG" /checks/check_restored.py /data /restored /out
stage "check" "$T"
