"""``csnet bench``: what each fusion mechanism costs to train and run, and which ways of running a step pay."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from csnet import recipe as recipe_defaults


def add_parser(subparsers) -> None:
    bench = subparsers.add_parser(
        "bench", help="training throughput, inference time, peak memory and GFLOP/s per fusion mechanism",
        description="For each fusion mechanism at each profile's model config: training throughput "
                    "(patches/s), inference time per megapixel, peak memory, and achieved GFLOP/s as a "
                    "fraction of a matrix-multiply peak measured in the same process; with the paper "
                    "config, the peak memory of tiled inference on a 4000×3000 photo. Timings are "
                    "interleaved over the mechanisms (medians of rounds): compare ratios within a table. "
                    "Writes CSVs and a manifest under results/bench/ and prints the tables.")
    bench.add_argument("--configs", default="quick,paper",
                       help="comma-separated profiles whose model config to measure (default quick,paper)")
    bench.add_argument("--fusions", default="all", help="comma-separated mechanisms, or all (default)")
    bench.add_argument("--steps", type=int, default=5, help="timed training steps per mechanism (default 5)")
    bench.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    bench.add_argument("--amp", action="store_true", help="mixed precision (bf16 autocast; fp16 where no bf16)")
    bench.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    bench.add_argument("--paper-cpu-batch", type=int, default=2,
                       help="batch of the paper config on a CPU (default 2; the profile's 32 on CUDA)")
    bench.add_argument("--infer-side", type=int, default=None,
                       help="side of the inference image (default 256; 128 for the paper config on a CPU)")
    bench.add_argument("--matmul-size", type=int, default=2048,
                       help="side of the matrix product that sets the peak GFLOP/s (default 2048)")
    bench.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory columns")
    bench.add_argument("--no-tiled", dest="tiled", action="store_false",
                       help="skip the tiled-inference memory run (paper config only)")
    bench.add_argument("--tiled-size", default="4000x3000", metavar="WxH", help="photo size (default 4000x3000)")
    bench.add_argument("--tile", type=int, default=512, help="tile side for tiled inference (default 512)")
    bench.add_argument("--tiled-max-tiles", type=int, default=None,
                       help="stop after this many tiles (default: 2 on a CPU, all on CUDA); 0 = all")
    bench.add_argument("--tiled-timeout", type=float, default=1800, help="seconds before the run is stopped")
    bench.add_argument("--tuning", action="store_true",
                       help="instead: time a training step at --base-threads, channels-last and with torch.compile "
                            "against the code as it stands (csnet.bench.TUNINGS) at --tuning-config; the fused "
                            "LayerNorm, folded selection and fused AdamW it measured before are applied")
    bench.add_argument("--tuning-config", default="quick", help="profile for --tuning (default quick)")
    bench.add_argument("--tuning-fusions", default="none,hard_select", help="mechanisms for --tuning")
    bench.add_argument("--tuning-variants", default=None,
                       help="comma-separated names from csnet.bench.TUNINGS: baseline, threads=1, channels_last, "
                            "compile (default: all)")
    bench.add_argument("--rounds", type=int, default=7, help="interleaved rounds for --tuning (default 7)")
    bench.add_argument("--base-threads", type=int, default=1,
                       help="threads of the single-change --tuning variants (default 1; 0 = torch's)")
    bench.add_argument("--no-trainer", dest="trainer", action="store_false",
                       help="--tuning without timing Trainer.train_step")
    bench.add_argument("--allow-load", action="store_true",
                       help="measure even when the load average shows other work (rows marked load_override)")
    recipe = bench.add_argument_group(
        "recipe sweep (--recipe)",
        "train and validate models one factor at a time around the best peak lr (csnet.recipe); resumable")
    recipe.add_argument("--recipe", action="store_true",
                        help="instead: the recipe sweep, writing results/bench/recipe_<profile>*.csv and a figure")
    recipe.add_argument("--profile", default="cpu", help="profile whose config the sweep trains (default cpu)")
    recipe.add_argument("--stages", default=",".join(recipe_defaults.STAGES),
                        help=f"comma-separated stages, in order (default {','.join(recipe_defaults.STAGES)})")
    recipe.add_argument("--lrs", default=",".join(f"{v:g}" for v in recipe_defaults.DEFAULT_LRS),
                        help="peak learning rates of the lr stage")
    recipe.add_argument("--recipe-fusions", default=",".join(recipe_defaults.LR_FUSIONS),
                        help="mechanisms of the lr, schedule and patch stages (default none,hard_select)")
    recipe.add_argument("--selection-fusions", default=",".join(recipe_defaults.SELECTION_FUSIONS),
                        help="mechanisms of the selection_start stage")
    recipe.add_argument("--seeds", default="0,1", help="training seeds (default 0,1)")
    recipe.add_argument("--schedules", default=",".join(recipe_defaults.SCHEDULES), help="schedules compared")
    recipe.add_argument("--patches", default=None, metavar="SxB,...",
                        help="patch side × batch shapes (default: equal pixels around the profile's, e.g. "
                             "32x18,48x8,96x2 at cpu)")
    recipe.add_argument("--selection-starts", default=",".join(recipe_defaults.SELECTION_STARTS),
                        help="selection-block starts compared")
    recipe.add_argument("--milestones", default=",".join(f"{v:g}" for v in recipe_defaults.MILESTONE_FRACTIONS),
                        help="fractions of the steps at which weights are validated (default 0.25,0.5,1)")
    recipe.add_argument("--recipe-steps", type=int, default=None, help="training steps (default the profile's)")
    recipe.add_argument("--lr", type=float, default=None, help="use this peak lr instead of the lr stage's choice")
    recipe.add_argument("--schedule", default=None, help="use this schedule instead of the schedule stage's choice")
    recipe.add_argument("--patch", default=None, metavar="SxB", help="use this patch shape instead of the choice")
    recipe.add_argument("--selection-start", default=None, help="use this start instead of the choice")
    recipe.add_argument("--val-max-images", type=int, default=None,
                        help="validation photos per task (default: the profile's test_max_images)")
    recipe.add_argument("--jobs", type=int, default=2, help="models trained at once, 1 thread each (default 2)")
    recipe.add_argument("--dry-run", action="store_true", help="print the plan (with measured s/step) and stop")
    recipe.add_argument("--before-after", action="store_true",
                        help="instead: the recipe sweep's before/after table on validation (analysis.before_after): "
                             "the first studies' recipe and whole-image P_v against the profile's recipe and tiled P_v, "
                             "for --before-after-fusions at --seeds, --jobs at a time")
    recipe.add_argument("--before-after-fusions", default=",".join(("none", "hard_select", "soft_gate",
                                                                     "channel_attention", "cross_attention")),
                        help="mechanisms of --before-after (default the core five)")
    bench.add_argument("-o", "--output-dir", default=None, help="where the CSVs go (default results/bench)")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    import torch

    from csnet import bench
    from csnet.io import atomic_write
    from csnet.paths import results_dir

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("csnet bench: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    out = results_dir("bench") if args.output_dir is None else Path(args.output_dir)
    device = torch.device(args.device)
    tag = f"{device.type}{'-amp' if args.amp else ''}"
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    manifest = {"command": "csnet bench", "arguments": vars(args) | {"func": None}, "environment": bench.environment()}
    if args.before_after or args.recipe:
        try:
            return (_before_after if args.before_after else _recipe)(args, out, say)
        except ValueError as err:
            print(f"csnet bench: {err}", file=sys.stderr)
            return 2
    try:
        if args.tuning:
            variants = args.tuning_variants.split(",") if args.tuning_variants else None
            rows = bench.run_tuning(args.tuning_config, [f.strip() for f in args.tuning_fusions.split(",")],
                                    variants, rounds=args.rounds, device=device, amp=args.amp,
                                    base_threads=args.base_threads or None, trainer=args.trainer, progress=say,
                                    allow_load=args.allow_load)
            path = bench.write_csv(rows, bench.TUNING_COLUMNS, out / f"tuning-{args.tuning_config}-{tag}.csv")
            shown = ("scope", "fusion", "variant", "threads", "s_per_step", "patches_per_s", "ratio_to_baseline",
                     "ratio_to_reference", "cpu_s_per_step", "cpu_ratio_to_reference", "compile_s", "max_abs_diff")
            print(bench.format_table(rows, shown))
            print(f"\nwritten: {path}")
            manifest["tables"] = [path.name]
        else:
            configs = [c.strip() for c in args.configs.split(",") if c.strip()]
            rows = bench.run_bench(configs, args.fusions, steps=args.steps, warmup=args.warmup, device=device,
                                   amp=args.amp, paper_cpu_batch=args.paper_cpu_batch, infer_side=args.infer_side,
                                   memory=args.memory, matmul_size=args.matmul_size, progress=say,
                                   allow_load=args.allow_load)
            path = bench.write_csv(rows, bench.BENCH_COLUMNS, out / f"bench-{tag}.csv")
            shown = ("config", "fusion", "batch", "train_patches_per_s", "train_gflops", "peak_fraction",
                     "infer_s_per_mp", "train_peak_mib", "infer_peak_mib")
            print(bench.format_table(rows, shown))
            manifest["tables"] = [path.name]
            if args.tiled and "paper" in configs:
                width, height = (int(v) for v in args.tiled_size.lower().split("x"))
                limit = args.tiled_max_tiles
                limit = (None if device.type == "cuda" else 2) if limit is None else (limit or None)
                say(f"tiled inference {width}×{height}, tile {args.tile}, "
                    f"{'all tiles' if limit is None else f'first {limit} tiles'} …")
                config = bench.bench_config("paper", device, args.paper_cpu_batch)
                tiled = bench.tiled_memory(config, "hard_select", height, width, args.tile, max_tiles=limit,
                                           device=device, amp=args.amp, timeout=args.tiled_timeout)
                tiled_path = bench.write_csv([tiled], bench.TILED_COLUMNS, out / f"tiled-{tag}.csv")
                print()
                print(bench.format_table([tiled], ("config", "width", "height", "tile", "tiles_run", "tiles_total",
                                                   "peak_mib", "cuda_peak_mib", "s_per_tile",
                                                   "estimated_total_s")))
                manifest["tables"].append(tiled_path.name)
            print(f"\nwritten: {path}")
    except ValueError as err:
        print(f"csnet bench: {err}", file=sys.stderr)
        return 2
    with atomic_write(out / f"manifest-{'tuning-' if args.tuning else ''}{tag}.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return 0


def _items(text: str, kind=str) -> tuple:
    return tuple(kind(item.strip()) for item in text.split(",") if item.strip())


def _recipe(args: argparse.Namespace, out: Path, say) -> int:
    """``csnet bench --recipe``: print the plan, then (unless --dry-run) run the sweep and write its
    tables and figure."""
    import time

    from analysis import recipe as reading
    from csnet import bench, recipe
    from csnet.io import atomic_write

    settings = recipe.Settings(
        profile=args.profile, stages=_items(args.stages), lrs=_items(args.lrs, float),
        lr_fusions=_items(args.recipe_fusions), selection_fusions=_items(args.selection_fusions),
        seeds=_items(args.seeds, int), schedules=_items(args.schedules),
        patch_shapes=recipe.parse_shapes(args.patches) if args.patches else None,
        selection_starts=_items(args.selection_starts), milestone_fractions=_items(args.milestones, float),
        steps=args.recipe_steps, lr=args.lr, schedule=args.schedule,
        patch=recipe.parse_shapes(args.patch)[0] if args.patch else None, selection_start=args.selection_start,
        max_images=args.val_max_images)
    bench._fusion_list(recipe.fusions_of(settings))  # names the unknown ones
    load = bench.check_load(1, args.allow_load)
    say(f"measuring CPU seconds per training step at {args.profile} (1 thread; load average "
        f"{load['load_average']:g}) …")
    per_step = recipe.measure_seconds_per_step(settings, recipe.fusions_of(settings))
    name = f"recipe_{args.profile}"
    plan = recipe.plan(settings, per_step, jobs=args.jobs, table=recipe.read_table(out / f"{name}.csv"))
    print(f"recipe sweep at {args.profile}: models × steps × measured CPU s/step = CPU minutes "
          f"(wall at --jobs {args.jobs}; evaluation of {len(settings.milestones())} milestones per model not "
          "included)")
    print(bench.format_table(plan.to_dict("records"), list(plan.columns)))
    if args.dry_run:
        return 0
    began = time.time()
    table, summary, choice = recipe.run_sweep(settings, out / f"{name}.csv", jobs=args.jobs,
                                              allow_load=args.allow_load, progress=say)
    profile = settings.profile_object()
    references = reading.reference_scores(
        list(profile.tasks), split=settings.split, max_images=settings.max_images or profile.test_max_images,
        max_side=settings.max_side or profile.test_max_side)
    ttq = reading.time_to_quality(recipe.chosen_rows(table, choice), references)
    paths = reading.write_outputs(table, summary, ttq, out, name, title=profile.label())
    chosen = reading.summarise_choice(choice)
    print(f"\nchosen recipe at {args.profile}: {chosen}")
    if not summary.empty:
        print(bench.format_table(summary.to_dict("records"), list(summary.columns)))
    if not ttq.empty:
        print()
        print(bench.format_table(ttq.to_dict("records"), ["fusion", "seed", "task", "target_psnr", "reached", "step",
                                                          "cpu_minutes", "last_psnr", "how"]))
    manifest = {"command": "csnet bench --recipe", "arguments": vars(args) | {"func": None},
                "environment": bench.environment(), "seconds_per_step": per_step, "plan": plan.to_dict("records"),
                "measured_at_load_average": load["load_average"], "chosen": chosen,
                "references": references.to_dict("records"), "wall_seconds": time.time() - began,
                "tables": [f"{name}.csv", *(Path(p).name for k, p in paths.items() if k != "figure")]}
    with atomic_write(out / f"manifest-{name}.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    print(f"\nwritten: {out / (name + '.csv')} and its summary, time to quality and figure")
    return 0


def _before_after(args: argparse.Namespace, out: Path, say) -> int:
    """``csnet bench --before-after``: train (through the store) and validate both arms, then write the
    table, its tests and figure as ``results/bench/recipe_before_after_<profile>*``."""
    import time

    from analysis import before_after
    from analysis.classical import evaluate_references
    from csnet import bench
    from csnet.io import atomic_write
    from csnet.profiles import get_profile, run_id

    profile = get_profile(args.profile)
    fusions, seeds = _items(args.before_after_fusions), _items(args.seeds, int)
    bench._fusion_list(fusions)  # names the unknown ones
    import os

    planned = before_after.configs(profile, fusions, seeds)
    say(f"before/after at {args.profile}: {len(planned)} models ({len(fusions)} mechanisms × {len(seeds)} seeds × "
        f"2 arms), {profile.steps} steps each, {args.jobs} at a time; every model is validated under "
        f"{len(before_after.CONDITIONS)} prompts")
    began = time.time()
    scores = before_after.train_and_evaluate(profile, fusions, seeds, jobs=args.jobs, progress=say)
    references = evaluate_references(list(profile.tasks), split="val", max_images=profile.test_max_images,
                                     max_side=profile.test_max_side)
    name = f"recipe_before_after_{args.profile}"
    written = before_after.write_outputs(scores, references, out, name, title=profile.label())
    print(bench.format_table(written["headline"].to_dict("records"), list(written["headline"].columns)))
    manifest = {"command": "csnet bench --before-after", "arguments": vars(args) | {"func": None},
                "environment": bench.environment(), "before": before_after.BEFORE,
                "runs": {"/".join(map(str, key)): run_id(cfg) for key, cfg in planned.items()},
                "load_average_at_end": os.getloadavg()[0], "wall_seconds": time.time() - began,
                "references": references.groupby(["task", "method"])["psnr"].mean().reset_index().to_dict("records")}
    with atomic_write(out / f"manifest-{name}.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    print(f"\nwritten: {out / name}.* (per-image scores, summary, tests, recognition, figure)")
    return 0
