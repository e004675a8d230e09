#!/usr/bin/env bash
# The GPU checks of one lent GPU machine (see the device notes in benchmarks/README.md):
# the CUDA tests (marked gpu; they skip without a device) and the sasrec cost benchmark on
# CUDA and on the CPU of the same machine, in one process (the speed-up is their ratio).
# Expects python3 with torch (CUDA); wheels of lmrec's other dependencies in .whl/ and
# the data cache in .lmrec_home/ when the machine cannot download them.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src:$PWD
else
  export PYTHONPATH=$PWD/src:$PWD
fi
[ -d .lmrec_home ] && export LMREC_HOME=$PWD/.lmrec_home
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
nvidia-smi -L | tee "$OUT/device.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/device.txt"
python3 -m pytest -q -p no:cacheprovider -rs -m gpu \
  tests/models/test_bpr.py tests/models/test_sequential.py tests/models/test_twotower.py \
  2>&1 | tee "$OUT/gpu_tests.log"
python3 benchmarks/sequential.py --part cost --devices cuda,cpu 2>&1 | tee "$OUT/gpu_cost.log"
cp benchmarks/results/sequential_cost_cuda_cpu.json "$OUT/" 2>/dev/null || true
