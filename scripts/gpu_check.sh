#!/usr/bin/env bash
# The CUDA path, proved in one run on a fresh GPU machine (about 3–5 minutes on an H100/H200; every
# step has a time cap, together under 8 minutes):
#   1. the machine's own python3 (it holds PyTorch) with this checkout on PYTHONPATH (nothing to install);
#   2. nvidia-smi;
#   3. `csnet train --profile smoke --fusion hard_select --device cuda` in bf16 mixed precision
#      (channels-last on CUDA, as csnet.train does), then `csnet eval` of that run and a second
#      `csnet train` that must reuse the run without training;
#   4. `csnet bench --configs paper --device cuda --amp`, including tiled inference of a whole
#      4000×3000 photo at the paper config.
# Everything that comes back is written flat into $OUT (default results/gpu_check): gpu_check.log, the
# bench CSVs and manifest, the smoke run's train_log.csv and metrics.json.
#
# Packages this suite names that the GPU image lacks (wordllama, open_clip_torch, captum, papermill,
# sporco, foolbox, mahotas …) are not needed here: when wordllama is missing the smoke run uses the
# one-hot text encoder (--set text_encoder=onehot) and says so; the corpus then has the photos of the
# installed packages (scikit-image, scikit-learn, matplotlib).
#
# Run from anywhere: bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/results/gpu_check}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1
WORK="${TMPDIR:-/tmp}/csnet-gpu-check"  # store, caches: fresh each time, so the first train trains
rm -rf "$WORK"
export CSNET_CACHE="$WORK/cache" CSNET_RESULTS="$WORK/results" CSNET_RUNS="$WORK/runs"
failures=()
step() { echo; echo "=== $* ($(date +%T))"; }

step "machine"
nvidia-smi || failures+=("nvidia-smi")
python3 --version

step "interpreter (the machine's own python3 holds PyTorch; a venv made from it would not see it)"
PY=$(command -v python3)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PY' || failures+=("torch sees no GPU")
import importlib.util, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0),
      "bf16", torch.cuda.is_bf16_supported())
for name in ("wordllama", "open_clip", "captum", "papermill", "skimage", "sklearn", "pandas", "filelock",
             "safetensors", "tqdm"):
    print(f"  {name:12s}", "present" if importlib.util.find_spec(name) else "MISSING")
PY
mkdir -p "$WORK"
PY_ABS=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
CSNET="$WORK/csnet"  # the csnet command as a file, so that timeout can run it
printf '#!/bin/sh\nexec "%s" -c "import sys; from csnet.cli import main; sys.exit(main(sys.argv[1:]))" "$@"\n' \
  "$PY_ABS" > "$CSNET"
chmod +x "$CSNET"

RUN=(--profile smoke --fusion hard_select --set precision=bf16)
if ! "$PY" -c 'import wordllama' 2>/dev/null; then
  echo "wordllama is not installed here: the smoke run uses the one-hot text encoder"
  RUN+=(--set text_encoder=onehot)
fi
if ! "$PY" -c 'import sys, warnings; warnings.simplefilter("ignore"); from csnet.corpus import photos
sys.exit(0 if photos("train") else 1)' 2>/dev/null; then
  echo "no corpus training photo is installed here: the smoke run trains on dead-leaves images"
  RUN+=(--set data_source=dead_leaves)
fi
echo "smoke run: ${RUN[*]}"

step "smoke training on cuda, bf16 autocast"
start=$SECONDS
timeout 120 "$CSNET" train "${RUN[@]}" --device cuda --no-progress || failures+=("smoke training")
echo "smoke training took $((SECONDS - start)) s (first CUDA use and data preparation included)"
run_dir=$(ls -d "$CSNET_RUNS"/hard_select-* 2>/dev/null | head -1)
if [ -n "$run_dir" ]; then
  ls -la "$run_dir"
  cp "$run_dir/train_log.csv" "$OUT/smoke_train_log.csv" 2>/dev/null
  cp "$run_dir/metrics.json" "$OUT/smoke_metrics.json" 2>/dev/null
  "$PY" - "$run_dir/metrics.json" <<'PY' || failures+=("smoke run not on cuda in mixed precision")
import json, sys
m = json.load(open(sys.argv[1]))
print({k: m.get(k) for k in ("device", "precision", "channels_last", "steps_done", "final_loss",
                             "seconds_per_step", "patches_per_s", "torch_version")})
assert m["device"].startswith("cuda") and m["precision"] in ("bfloat16", "float16"), m
PY
fi

step "reuse: asking again must not train"
timeout 45 "$CSNET" train "${RUN[@]}" --device cuda --no-progress | tee "$WORK/reuse.txt"
grep -q "reusing finished run" "$WORK/reuse.txt" || failures+=("second train did not reuse the run")

step "eval of the smoke run"
timeout 60 "$CSNET" eval "${RUN[@]}" --no-progress -o "$WORK/eval.csv" || failures+=("smoke eval")

step "csnet bench --configs paper --device cuda --amp (whole 4000x3000 photo tiled)"
start=$SECONDS
timeout 240 "$CSNET" bench --configs paper --device cuda --amp --steps 5 --matmul-size 8192 \
  --tiled-max-tiles 0 -o "$OUT" || failures+=("bench")
echo "bench took $((SECONDS - start)) s"

step "done"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true
if [ ${#failures[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "all checks passed"
