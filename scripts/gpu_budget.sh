#!/usr/bin/env bash
# Notebook 05's training on one lent GPU within 10 minutes (issue 14, item 5): the `gpu` profile's
# 5 mechanisms x 3 seeds, each a trunk of 5,000 steps (10x the cpu profile's largest budget) and its
# warm-up-stable-decay branches at 625, 1250 and 2500 steps, as (mechanism, seed) chains in worker processes
# that share the device (analysis.budget.train_curves, jobs = every chain at once by default); then the
# per-image test scores of every model and the classical references, written as notebook 05 writes them
# to results/gpu/05_training_budget/ (per_image.csv, references_per_image.csv, runs.csv, manifest.json).
# The statistics and figures come from the notebook itself, on any machine with papermill:
#   papermill notebooks/05_training_budget.ipynb out.ipynb -p profile gpu -p reuse_tables True \
#       -p output_dir results/gpu/05_training_budget
#
# NOT YET RUN ON A GPU: the step time of the gpu profile on an H200 is a guess (see csnet/profiles.py).
# Training is resumable: a run cut by the time limit continues where it stopped when the script runs again.
#
# Usage: bash scripts/gpu_budget.sh [--dry-run] [--profile gpu] [--device cuda] [--jobs N] [--limit SECONDS]
#                                   [--mechanisms a,b] [--seeds 0,1] [--tasks t1,t2] [--out DIR]
#   --dry-run   print the plan (models, steps each chain trains, the commands) and train nothing
#   --limit     seconds the training may take before it is stopped (default 420: evaluation needs the rest)
# The machine's own python3 holds PyTorch (as in scripts/gpu_check.sh); wordllama missing there means the
# one-hot text encoder, which the manifest records.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=gpu DEVICE=cuda JOBS=0 LIMIT=420 DRY=0 MECHANISMS="" SEEDS="" TASKS="" OUT_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --profile) PROFILE="$2"; shift ;;
    --device) DEVICE="$2"; shift ;;
    --jobs) JOBS="$2"; shift ;;
    --limit) LIMIT="$2"; shift ;;
    --mechanisms) MECHANISMS="$2"; shift ;;
    --seeds) SEEDS="$2"; shift ;;
    --tasks) TASKS="$2"; shift ;;
    --out) OUT_DIR="$2"; shift ;;
    *) echo "unknown option $1 (allowed: --dry-run --profile --device --jobs --limit --mechanisms --seeds --tasks --out)" >&2
       exit 2 ;;
  esac
  shift
done
PY="${PYTHON:-$(command -v python3)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export BUDGET_PROFILE="$PROFILE" BUDGET_DEVICE="$DEVICE" BUDGET_JOBS="$JOBS" BUDGET_MECHANISMS="$MECHANISMS"
export BUDGET_SEEDS="$SEEDS" BUDGET_TASKS="$TASKS" BUDGET_OUT="${OUT_DIR:-results/$PROFILE/05_training_budget}"

# The design, shared by every step below: profile, mechanisms, seeds, budgets, text encoder, jobs.
DESIGN='
import importlib.util, os
from analysis import budget
from csnet.profiles import get_profile
prof = get_profile(os.environ["BUDGET_PROFILE"])
split = lambda name, cast, default: [cast(v) for v in os.environ[name].split(",")] if os.environ[name] else list(default)
mechanisms = budget.check_mechanisms(split("BUDGET_MECHANISMS", str, budget.MECHANISMS))
seeds = split("BUDGET_SEEDS", int, prof.seeds)
tasks = split("BUDGET_TASKS", str, prof.tasks)
budgets = budget.check_budgets(budget.default_budgets(prof.steps, prof.warmup_steps, prof.decay_fraction),
                               prof.warmup_steps, prof.decay_fraction)
overrides = {} if importlib.util.find_spec("wordllama") or prof.text_encoder != "wordllama" else {"text_encoder": "onehot"}
jobs = int(os.environ["BUDGET_JOBS"]) or len(mechanisms) * len(seeds)
'

echo "=== plan ($(date +%T))"
"$PY" - <<PY
$DESIGN
plan = budget.plan(prof, mechanisms, seeds, budgets, **overrides)
chains = plan.groupby(["mechanism", "seed"], sort=False)["steps_trained"].sum()
print(f"profile {prof.name}: budgets {budgets}, {len(mechanisms)} mechanisms x {len(seeds)} seeds = {len(chains)} chains, "
      f"{len(plan)} models, {int(plan['steps_trained'].sum())} optimiser steps with an empty store")
print(f"each chain trains {int(chains.max())} steps (trunk {max(budgets)} + decay branches); {jobs} chains at once "
      f"on {os.environ['BUDGET_DEVICE']}; text encoder overrides: {overrides or 'none'}")
print(plan.to_string(index=False))
PY
TRAIN="$DESIGN
import torch
if os.environ['BUDGET_DEVICE'] == 'cuda' and not torch.cuda.is_available():
    raise SystemExit('--device cuda, but torch sees no GPU (use --device cpu to run the logic on a CPU)')
budget.train_curves(prof, mechanisms, seeds, budgets, jobs=jobs, **overrides)
"
EVALUATE="$DESIGN
from analysis import classical
from analysis.outputs import OutputDir
out = OutputDir(os.environ['BUDGET_OUT'])
runs = budget.train_curves(prof, mechanisms, seeds, budgets, jobs=1, **overrides)  # all finished: loads them
kwargs = dict(test_source=prof.test_source, max_images=prof.test_max_images, max_side=prof.test_max_side)
out.table(budget.run_table(runs), 'runs', float_format='{:.4g}')
out.table(budget.evaluate_curves(runs, tasks, evaluate_kwargs=kwargs, device=os.environ['BUDGET_DEVICE']),
          'per_image', formats=('csv',))
out.table(classical.evaluate_references(tasks, **kwargs), 'references_per_image', formats=('csv',))
out.manifest({'profile': prof.name, 'seeds': seeds, 'mechanisms': mechanisms, 'budgets': budgets, 'eval_tasks': tasks},
             seeds=seeds, text_encoder=next(iter(runs.values())).text_encoder_info, device=os.environ['BUDGET_DEVICE'],
             extra={'runs': {f'{m}/seed{s}/{b}': r.id for (m, s, b), r in runs.items()}, 'written_by': 'scripts/gpu_budget.sh'})
print('wrote', out.path)
"
if [ "$DRY" = 1 ]; then
  echo "=== dry run: would train with a ${LIMIT}s limit, then evaluate into $BUDGET_OUT:"
  echo "timeout $LIMIT $PY -c <train_curves of the plan above, jobs as shown>"
  echo "$PY -c <evaluate every run and the references; write runs.csv, per_image.csv, references_per_image.csv, manifest.json>"
  exit 0
fi
[ "$DEVICE" = cuda ] && { nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true; }
echo "=== train ($(date +%T), limit ${LIMIT}s)"
status=0
timeout "$LIMIT" "$PY" -c "$TRAIN" || status=$?
if [ "$status" != 0 ]; then
  echo "training stopped with status $status (124: the ${LIMIT}s limit); run the script again to resume" >&2
  exit "$status"
fi
echo "=== evaluate ($(date +%T))"
"$PY" -c "$EVALUATE"
echo "=== done ($(date +%T)); analyse with notebook 05 at profile $PROFILE with reuse_tables=True"
