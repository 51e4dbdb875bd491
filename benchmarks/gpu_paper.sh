#!/usr/bin/env bash
# Times the `paper` preset (the ICA-INR network with the paper's settings) and
# the `network` preset on a CUDA device, compress and decompress, on one run.
#   usage: benchmarks/gpu_paper.sh RUN.nii.gz OUT_DIR [ICAINR_COMMAND]
# ICAINR_COMMAND defaults to `icainr`; pass e.g. "python3 -m nipype_icainr.cli"
# where the package is on PYTHONPATH but not installed.
set -u
run=$1; out=$2; icainr=${3:-icainr}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__)"
nproc
for preset in network paper; do
    t0=$(date +%s.%N)
    timeout "${ICAINR_GPU_LIMIT:-420}" $icainr compress "$run" "$out/$preset.icainr" \
        --preset "$preset" --device cuda --quiet --json > "$out/$preset.json"
    rc=$?
    t1=$(date +%s.%N)
    echo "$preset compress rc=$rc wall=$(python3 -c "print(round($t1-$t0,1))") s"
    cat "$out/$preset.json"; echo
    [ $rc -eq 0 ] || continue
    t0=$(date +%s.%N)
    $icainr decompress "$out/$preset.icainr" "$out/$preset.nii.gz" --device cuda
    rc=$?
    t1=$(date +%s.%N)
    echo "$preset decompress rc=$rc wall=$(python3 -c "print(round($t1-$t0,1))") s"
    $icainr info "$out/$preset.icainr" | head -40
    rm -f "$out/$preset.nii.gz"
done
