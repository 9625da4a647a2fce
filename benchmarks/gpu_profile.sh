#!/usr/bin/env bash
# Nsight Compute's view of the CUDA kernels, in one call on the GPU machine
# after benchmarks/gpu_check.sh has built the extension in this tree:
#   bash benchmarks/gpu_profile.sh OUTDIR
# Speed-of-light, memory, occupancy and launch sections for artderiv's kernels
# and torch's on the same tensors at 2^28 (a copy-like kernel, relu and sigmoid forwards,
# relu backwards; float32 and bfloat16), with the clocks left alone
# (--clock-control none). Skipped with a message where ncu is missing; where
# it cannot read the counters (not every runtime lets it) its log says why.
# About a minute; two files (profile_summary.txt, ncu.log).
#
# GPU_CHECK_DRY=1 (no GPU): runs the ncu driver's ops on the CPU.
set -u
OUT=${1:?usage: gpu_profile.sh OUTDIR}
SUMMARY_NAME=profile_summary.txt
source "$(dirname "$0")/gpu_stages.sh"

if ! "$PY" -c "import artderiv" > /dev/null 2>&1; then
  echo "artderiv does not import here: build it first (gpu_check.sh does, on the same machine)" | tee -a "$SUMMARY"
  exit 1
fi

# The ops under ncu, one kernel each, in this order (the driver prints it too):
# inputs are made before the profiled range, so only these kernels are captured.
DRIVER=$(mktemp --suffix .py)
cat > "$DRIVER" <<'EOF'
import sys
import torch
import artderiv

device = sys.argv[1]
n = 1 << int(sys.argv[2])
cases = []
for dtype in (torch.float32, torch.bfloat16):
    x = torch.randn(n, device=device, dtype=dtype)
    g = torch.randn(n, device=device, dtype=dtype)
    xr = x.clone().requires_grad_()
    art = artderiv.relu(xr, derivative="sigmoid")
    nat = torch.relu(xr)
    dst = torch.empty_like(x)
    name = str(dtype).removeprefix("torch.")
    cases += [
        # torch copies a dense tensor with cudaMemcpy, which ncu does not profile:
        # neg is torch's plainest elementwise kernel, the copy's stand-in.
        (f"torch.neg (copy-like) {name}", lambda x=x, dst=dst: torch.neg(x, out=dst)),
        (f"torch.relu {name}", lambda x=x: torch.relu(x)),
        (f"artderiv relu forward {name}", lambda x=x: artderiv.relu(x, derivative="sigmoid")),
        (f"torch.sigmoid {name}", lambda x=x: torch.sigmoid(x)),
        (f"artderiv sigmoid forward {name}", lambda x=x: artderiv.sigmoid(x)),
        (f"torch relu backward {name}", lambda nat=nat, xr=xr, g=g: torch.autograd.grad(nat, xr, g, retain_graph=True)),
        (f"artderiv relu:sigmoid backward {name}",
         lambda art=art, xr=xr, g=g: torch.autograd.grad(art, xr, g, retain_graph=True)),
    ]
with torch.no_grad():
    for _, run in cases:  # warm-up, outside the profiled range
        run()
if device == "cuda":
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
for i, (label, run) in enumerate(cases):
    run()
    print(f"kernel {i}: {label}")
if device == "cuda":
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
EOF
if [ "$DRY" = 1 ]; then
  stage ncu_driver 120 "$PY" "$DRIVER" cpu 16
else
  NCU=$(command -v ncu || ls "$CUDA_HOME"/bin/ncu /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/nsight-compute*/ncu 2> /dev/null | head -n 1)
  if [ -n "$NCU" ]; then
    stage ncu 150 "$NCU" --clock-control none --profile-from-start off --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section Occupancy --section LaunchStats --csv --page details "$PY" "$DRIVER" cuda 28
  else
    echo "ncu: not found on this machine; skipped" | tee -a "$SUMMARY"
  fi
fi
rm -f "$DRIVER"
echo "done; logs in $OUT" | tee -a "$SUMMARY"
