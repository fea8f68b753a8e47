#!/usr/bin/env bash
# The checks that need a GPU, as one short script (a lent GPU machine, ~8 minutes):
#   1. tests/test_cuda.py (every estimator on CUDA, CPU agreement, memmap streaming,
#      autocast, two ranks with CUDA tensors);
#   2. benchmarks/bench_gemm_limit.py's CUDA section (GEMM limit and phase throughput in
#      fp32, bf16 and fp16 autocast, the whole training set on the device);
#   3. the whole default test suite with CUDA visible (device='auto' resolves to the GPU);
#   4. time to ClustPy's accuracy on mnist_test for DEC and IDEC with device='cuda';
#   5. with two GPUs or more: seconds per epoch on 1 GPU against one NCCL rank per GPU.
# Data: $SKDEEPCLUSTER_DATA or ../shared/data (mnist_test.npz). Results go to $OUT (or
# ./gpu_check_out). Each step has its own time limit; a step that fails does not stop the
# others. Usage: bash benchmarks/gpu_check.sh; STEPS="test_cuda suite" runs only those steps.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
STEPS=${STEPS:-test_cuda gemm suite ttq ddp}
step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    case " $STEPS " in *" $name "*) ;; *) return ;; esac
    echo "==> [$name] $* (limit ${limit}s) at $(date +%T)"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log" | tail -n 40
    echo "==> [$name] rc=${PIPESTATUS[0]} in $((SECONDS - start))s"
}
nvidia-smi -L
$PY -c "import torch, sklearn, numpy, scipy; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| sklearn', sklearn.__version__, '| numpy', numpy.__version__, '| scipy', scipy.__version__, '| gpus', torch.cuda.device_count())"
step test_cuda "${T_CUDA:-120}" $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py -rs
step gemm "${T_GEMM:-110}" $PY benchmarks/bench_gemm_limit.py --no-cpu --epochs 4 \
    --cluster-epochs 5 --repeats 5 --output "$OUT/gemm_limit_cuda.md"
# 8 workers of 2 threads each (16 cores); test_cuda.py ran above.
OMP_NUM_THREADS=2 step suite "${T_SUITE:-270}" $PY -m pytest -v -p no:cacheprovider -n 8 \
    --maxfail 40 --timeout 150 -rf --ignore=tests/test_cuda.py
step ttq "${T_TTQ:-100}" $PY benchmarks/bench_time_to_quality.py --skip-clustpy \
    --params '{"device": "cuda"}' --output "$OUT/time_to_quality_cuda.md"
N_GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$N_GPUS" -ge 2 ]; then
    step ddp "${T_DDP:-150}" $PY benchmarks/bench_distributed.py epochs --dataset mnist_test \
        --epochs 3 --gpus "$N_GPUS"
else
    echo "==> [ddp] skipped: $N_GPUS GPU(s); NCCL needs one per rank"
fi
