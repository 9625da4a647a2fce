# Sourced by gpu_check.sh and gpu_profile.sh once they have set OUT (the output
# folder) and SUMMARY_NAME: the settings both run under, and `stage`.
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
DRY=${GPU_CHECK_DRY:-0}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
SUMMARY="$OUT/$SUMMARY_NAME"
: > "$SUMMARY"

stage() {  # stage NAME TIMEOUT_S CMD...: runs CMD with a timeout, logs to OUT/NAME.log
  local name=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  echo "=== $name (limit ${limit}s): $*" | tee -a "$SUMMARY"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "=== $name: rc=$rc in $(( $(date +%s) - t0 )) s" | tee -a "$SUMMARY"
  tail -n 5 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY"
  return $rc
}
