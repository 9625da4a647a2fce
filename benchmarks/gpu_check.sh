#!/usr/bin/env bash
# The GPU check, in one call on a machine with a GPU and no internet:
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. environment  2. build for sm_90 (CUDA forced)  3. CUDA tests
# 4. compute-sanitizer memcheck on a small CUDA test subset  5. benchmark at 2^28
# 6. the launch-shape sweep (benchmarks/cuda_launch_sweep.cu) at 2^28
# Each stage has its own timeout and writes its log into OUTDIR as it goes, so
# a hang or failure loses only that stage (the benchmark keeps the cells it
# measured). The limits add up to 570 s (590 when the benchmark stops early),
# under the 10 minutes one device call may run. On an H200 (2026-11-30) the
# build took 150 s, the tests 17 s, memcheck 10 s and the benchmark 105 s.
# The device tool returns at most 8 files: this script writes 8 (summary.txt
# with the environment, 5 stage logs, the benchmark's JSON and plot).
#
# GPU_CHECK_DRY=1 runs the same stages on a machine without a GPU (CPU-only
# tests, CPU benchmark at small sizes, the sweep compiled only) to catch typos
# before spending GPU time.
set -u
OUT=${1:?usage: gpu_check.sh OUTDIR}
SUMMARY_NAME=summary.txt
source "$(dirname "$0")/gpu_stages.sh"
export ARTDERIV_CUDA=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-$(nproc)}

# A g++ that links libstdc++ statically into a shared object (the GPU machine's
# /opt/gcc/bin/g++ wrapper does) gives the extension a second C++ runtime beside
# torch's: there the first run's import crashed in catalog()'s ostringstream.
# Build with one that links it dynamically (the system's g++ there).
links_shared_libstdcxx() {  # links_shared_libstdcxx CXX
  local d rc
  d=$(mktemp -d)
  printf '#include <string>\nstd::string f(int n) { return std::to_string(n); }\n' > "$d/t.cpp"
  "$1" -shared -fPIC "$d/t.cpp" -o "$d/t.so" > /dev/null 2>&1 && readelf -d "$d/t.so" | grep -q 'libstdc++'
  rc=$?
  rm -rf "$d"
  return $rc
}
if ! links_shared_libstdcxx "${CXX:-c++}"; then
  for cxx in /usr/bin/g++ /usr/bin/c++; do
    if links_shared_libstdcxx "$cxx"; then
      echo "compiler: ${CXX:-c++} links libstdc++ statically; using $cxx" | tee -a "$SUMMARY"
      export CXX=$cxx CC=/usr/bin/gcc
      break
    fi
  done
fi

echo "=== env" >> "$SUMMARY"
timeout 20 bash -c "nvidia-smi || true; $CUDA_HOME/bin/nvcc --version || true; $PY -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())'; nproc; git log -1 --oneline || true" >> "$SUMMARY" 2>&1

# The sweep includes csrc/cuda/activation_kernels.cuh, which needs torch's headers
# (their inline code only: nothing of torch's libraries is linked), and is
# compiled with the library build's nvcc flags.
SWEEP=$(mktemp -d)/cuda_launch_sweep
SWEEP_BUILD="$CUDA_HOME/bin/nvcc -O3 -std=c++20 -gencode=arch=compute_90,code=sm_90 -Icsrc \
$("$PY" -c "from torch.utils import cpp_extension as c; print(*('-I' + p for p in c.include_paths()), *c.COMMON_NVCC_FLAGS)" 2> /dev/null) \
benchmarks/cuda_launch_sweep.cu -o $SWEEP"

if [ "$DRY" = 1 ]; then
  stage build 600 "$PY" setup.py build_ext --inplace
  stage tests 900 "$PY" -m pytest -q tests -x
  stage memcheck 60 bash -c "command -v compute-sanitizer || echo 'dry run: compute-sanitizer skipped'"
  stage bench 300 "$PY" benchmarks/bench.py --quick --out "$OUT/bench" ||
    stage bench_partial 20 "$PY" benchmarks/bench.py --summarize "$OUT/bench/rows_kernel.jsonl"
  stage sweep 150 bash -c "$SWEEP_BUILD"
else
  # The sweep (stage 6) compiles beside the build, which leaves most cores idle:
  # one nvcc job compiles the library's .cu file (about 1.5 min), the CPU ISA
  # builds run beside it.
  SWEEP_COMPILE_LOG=$(mktemp)
  timeout 240 bash -c "$SWEEP_BUILD" > "$SWEEP_COMPILE_LOG" 2>&1 &
  SWEEP_COMPILE=$!
  stage build 260 "$PY" setup.py build_ext --inplace || { echo "build failed: see $OUT/build.log" | tee -a "$SUMMARY"; exit 1; }
  # Every device-parametrised test on CUDA; the whole suite's CPU side is CI's job,
  # and so are the CPU emulation of the CUDA code (test_cuda_emulation.py: two
  # host compiles, minutes this run does not have) and the ptxas report
  # (test_cuda_codegen.py: one more nvcc compile).
  stage tests 60 "$PY" -m pytest -q tests -k "cuda and not emulat and not codegen" -p no:cacheprovider -rfE
  # compute-sanitizer from PATH, else from the toolkit that builds the kernels
  SANITIZER=$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")
  stage memcheck 40 "$SANITIZER" --tool memcheck --error-exitcode 1 \
    "$PY" -m pytest -q tests/test_cuda.py -k "memcheck" -p no:cacheprovider
  # The GPU targets' size only (2^28): torch.compile of each recipe takes seconds.
  # The device tool returns at most 8 files: the benchmark writes elsewhere, and
  # its JSON and plot (or, stopped early, its rows) are copied next to the logs.
  BENCH=$(mktemp -d)
  if stage bench 150 "$PY" benchmarks/bench.py --device cuda --sizes 28 --dtypes float32,bfloat16 \
      --cases relu:sigmoid,sigmoid:exact_plus,step:atan --rounds 5 --out "$BENCH"; then
    cp "$BENCH/results.json" "$OUT/bench_results.json"
    cp "$BENCH/bandwidth.png" "$OUT/bench_bandwidth.png" 2> /dev/null
  else
    cp "$BENCH/rows_cuda.jsonl" "$OUT/bench_rows.jsonl" 2> /dev/null
    stage bench_partial 20 "$PY" benchmarks/bench.py --summarize "$BENCH/rows_cuda.jsonl"
  fi
  # For #6: the library's kernels in other launch shapes, outputs compared bit
  # for bit with its own launch (about 15 s). Its log starts with the compile's.
  wait "$SWEEP_COMPILE"
  stage sweep 40 bash -c "cat $SWEEP_COMPILE_LOG; $SWEEP 28 9"
fi
echo "done; logs in $OUT" | tee -a "$SUMMARY"
