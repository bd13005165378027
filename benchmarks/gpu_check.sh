#!/usr/bin/env bash
# The GPU check: one short run on a machine with CUDA (every path here also runs, and is tested, on CPU).
#   1. the GPSampler on device="cuda" against the CPU (valid, reproducible suggestions; seconds each);
#   2. the process group of DDP trials on NCCL: aborted after a failure, kept, created again;
#   3. n_jobs GPU slots: each trial trains on the GPU of its slot;
#   4. a DDP trial with NCCL under torchrun, and the digits example on the GPU;
#   5. the tests of the sampler, callback, Tuner and CLI with a GPU present;
#   6. where the GPU starts to pay: our GP at 200-1000 trials of history on cuda, then on the CPU
#      (benchmarks/gp_scale.py; Optuna's GP on the CPU in both, as the common yardstick).
# Packages missing on the GPU machine travel as wheels in .whl/ (see the device tool's README).
set -u
export PYTHONUNBUFFERED=1 OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
status=0
step() { echo; echo "=== $1"; shift; "$@" || { echo "=== FAILED: $*"; status=1; }; }

step "machine" bash -c 'nvidia-smi -L; python3 -c "import torch, lightning, botorch; print(torch.__version__, lightning.__version__, botorch.__version__, torch.cuda.get_device_name(0))"'
step "GP sampler on cuda vs cpu" python3 benchmarks/gpu_gp.py
step "NCCL group: abort, keep, reset" python3 -m pytest -q -p no:cacheprovider tests/test_distributed.py -k training_group
step "n_jobs GPU slots" python3 -m pytest -q -p no:cacheprovider tests/test_slots.py -k gpu
step "DDP trials with NCCL under torchrun" torchrun --standalone --nproc_per_node=1 examples/ddp_digits.py \
    --n-trials 3 --max-epochs 3 --root-dir /tmp/ddp_runs
step "digits example on the GPU" python3 examples/digits.py --n-trials 4 --max-epochs 3 --accelerator gpu --root-dir /tmp/gpu_runs
step "tests with a GPU present" python3 -m pytest -q -p no:cacheprovider -m "not postgres" -x \
    tests/samplers tests/test_callback.py tests/test_tuner.py tests/test_cli.py tests/test_training_faults.py
step "GP at scale on cuda" timeout 300 python3 benchmarks/gp_scale.py --device cuda --sizes 200,500,1000 --seeds 1
step "GP at scale on the CPU" timeout 300 python3 benchmarks/gp_scale.py --device cpu --sizes 200,500,1000 --seeds 1
echo; echo "=== gpu_check status $status"
exit $status
