"""``csnet train``, ``csnet eval``, ``csnet restore``, ``csnet runs``: the run store from a shell."""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

# Tiled restoration of large photos. Measured at the paper config (28.6 M parameters, fp32, CPU): one
# 128² tile adds 0.33 GB to the peak, one 256² tile 0.87 GB, so a 4000×3000 photo (0.34 GB of image
# and accumulators) stays near 2 GB with 256² tiles; 512² tiles would approach 4 GB.
DEFAULT_TILE = 256
DEFAULT_TILE_ABOVE_MP = 0.25


def add_parser(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train a model (or reuse the finished run of the same config)",
        description="Train one model at a profile's scale, or reuse its finished run; resumes an "
                    "interrupted run. Under torchrun (WORLD_SIZE > 1) every rank trains its slice of "
                    "each batch with DistributedDataParallel. Prints the run folder.")
    _run_arguments(train)
    train.add_argument("--timeout", type=float, default=None, metavar="S",
                       help="seconds to wait for another process training the same run (default: wait)")
    train.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available)")
    train.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    train.set_defaults(func=_train)

    evaluate = subparsers.add_parser(
        "eval", help="evaluate a trained run: per-image PSNR/SSIM CSV and per-task means",
        description="Evaluate the run of a profile/fusion/seed (trained first if needed) on the "
                    "profile's test images, or with --test-root on your standard test sets (BSD68, "
                    "Rain100L, SOTS-outdoor … in PromptIR's layout), whole images, per image; writes one "
                    "row per (task, image) to -o and prints the per-task means.")
    _run_arguments(evaluate)
    evaluate.add_argument("--prompt", choices=("text", "image"), default="image",
                          help="prompt given to the network: text anchor P_t or image prompt P_v (default: "
                               "image, the paper's test-time choice)")
    evaluate.add_argument("--tasks", default=None, help="comma-separated task keys (default: the run's)")
    evaluate.add_argument("--force", default=None,
                          help="force the kept channels: all, all_scaled or a degradation label (noise, rain …)")
    evaluate.add_argument("--max-images", type=int, default=None, help="per task (default: the profile's)")
    evaluate.add_argument("--max-side", type=int, default=None, help="(default: the profile's)")
    evaluate.add_argument("--tile", type=int, default=None, help="tiled inference with this tile side")
    evaluate.add_argument("--test-root", default=None, metavar="DIR",
                          help="a folder in PromptIR's layout (test/denoise/bsd68, test/derain/Rain100L, "
                               "test/dehaze …): score the run on the standard test sets it holds, whole "
                               "images, with the field's metric protocol (any profile)")
    evaluate.add_argument("-o", "--output", default=None, metavar="CSV", help="per-image table (CSV)")
    evaluate.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    evaluate.set_defaults(func=_eval)

    restore = subparsers.add_parser(
        "restore", help="restore your own photo with a trained run",
        description="Restore IMAGE with a trained run (by profile/fusion/seed, or --run DIR) using the "
                    "prompt the image encoder derives from the photo itself; prints the degradation it "
                    "recognised and its confidence.")
    restore.add_argument("image", metavar="IMAGE", help="the photo to restore (PNG, JPEG, …)")
    restore.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write the PNG")
    restore.add_argument("--run", default=None, metavar="DIR", help="a finished run folder")
    _run_arguments(restore, required=False)
    restore.add_argument("--tile", type=int, default=None,
                         help=f"tile side; 0 = whole photo at once (default: {DEFAULT_TILE} for photos over "
                              f"{DEFAULT_TILE_ABOVE_MP} MP, so memory stays bounded: at the paper config one "
                              "256² tile adds about 0.9 GB)")
    restore.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    restore.add_argument("--prompt-label", default=None,
                         help="use this degradation label's text prompt instead of the recognised one")
    restore.set_defaults(func=_restore)

    runs = subparsers.add_parser(
        "runs", help="list (or remove) runs in the store",
        description="One line per run: fusion, config, steps done, metrics, size, and whether it is stale "
                    "(no config reaches it any more: an older training version or hash scheme). The store "
                    "is CSNET_RUNS, else <CSNET_CACHE>/runs, else $XDG_CACHE_HOME/csnet/runs or "
                    "~/.cache/csnet/runs.")
    runs.add_argument("--root", default=None,
                      help="store root (default: CSNET_RUNS, else the user cache's csnet/runs)")
    runs.add_argument("--remove", nargs="+", default=None, metavar="RUN",
                      help="delete these runs (ids as listed, or run folders)")
    runs.add_argument("--remove-stale", action="store_true", help="delete every stale run")
    runs.add_argument("-o", "--output", default=None, metavar="CSV", help="also write the table as CSV")
    runs.set_defaults(func=_runs)


def _run_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--profile", required=required, default=None, help="smoke, quick, cpu or paper")
    parser.add_argument("--fusion", required=required, default=None,
                        help="fusion mechanism (none, implicit_prompt, channel_attention, cross_attention, "
                             "hard_select, soft_gate, random_select …)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the profile's)")
    parser.add_argument("--data-root", default=None,
                        help="PromptIR-layout data root for the paper profile (default: env CSNET_DATA)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a RunConfig field (model.dim=16, image_encoder.width=8, mask_noise=0.2, "
                             "tasks=derain,dehaze); repeatable")


def _fail(command: str, err: Exception | str) -> int:
    print(f"csnet {command}: {err}", file=sys.stderr)
    return 2


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(pairs: list[str]) -> dict:
    """``["model.dim=16", "tasks=derain,dehaze"]`` → RunConfig overrides (``model.*`` merged)."""
    overrides: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        key, text = pair.split("=", 1)
        value = _parse_value(text)
        if key in ("tasks",) and isinstance(value, str):
            value = tuple(t.strip() for t in value.split(",") if t.strip())
        if isinstance(value, list):
            value = tuple(value)
        group, _, name = key.partition(".")
        if name and group in ("model", "image_encoder"):
            overrides.setdefault(group, {})[name] = value
        else:
            overrides[key] = value
    return overrides


def _config(args: argparse.Namespace):
    """The study's config of (profile, fusion, seed): the very run notebooks 01–04 train and reuse."""
    from csnet.profiles import fitting_warmup, get_profile, study_config

    profile = get_profile(args.profile, data_root=args.data_root)
    overrides = parse_overrides(args.overrides)
    if getattr(args, "steps", None) is not None:
        overrides["steps"] = args.steps
        overrides.setdefault("warmup_steps", fitting_warmup(
            profile.warmup_steps, args.steps, overrides.get("schedule", profile.schedule),
            float(overrides.get("decay_fraction", profile.decay_fraction))))
    return profile, study_config(profile, args.fusion, args.seed, **overrides)


def _train(args: argparse.Namespace) -> int:
    from csnet.distributed import env_info
    from csnet.store import RunLockedError, get_or_train, run_path

    try:
        _, cfg = _config(args)
    except ValueError as err:
        return _fail("train", err)
    main = env_info().is_main
    already = (run_path(cfg) / "DONE").exists()
    try:
        run = get_or_train(cfg, progress=args.progress, timeout=args.timeout, device=args.device)
    except RunLockedError as err:
        return _fail("train", err)
    except (ValueError, FileNotFoundError) as err:
        return _fail("train", err)
    if main:
        status = "reusing finished run" if already or not run.trained_now else "trained"
        print(f"{status}: {run.dir}")
        loss = run.metrics.get("final_loss")
        if loss is not None:
            info = run.text_encoder_info
            encoder = ":".join(str(info[k]) for k in ("kind", "model") if k in info) or cfg.text_encoder
            print(f"  steps {run.metrics.get('steps_done')}, final loss {loss:.4f}, text encoder {encoder}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from csnet.evaluate import evaluate, summarise
    from csnet.store import RunLockedError, get_or_train

    try:
        profile, cfg = _config(args)
        tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else list(cfg.tasks)
        if args.test_root:
            from csnet.benchmarks import tasks_to_score

            if args.force or args.max_images is not None or args.max_side is not None:
                return _fail("eval", "--test-root scores whole standard test sets; drop --force, "
                                     "--max-images and --max-side")
            scored = tasks_to_score(args.test_root, tasks)  # checked before any training
            skipped = [t for t in tasks if t not in scored]
        run = get_or_train(cfg, progress=args.progress)
        if args.test_root:
            from csnet.benchmarks import evaluate_test_root

            table = evaluate_test_root(run, args.test_root, scored, prompt_source=args.prompt, tile=args.tile,
                                       progress=args.progress)
        else:
            table = evaluate(
                run, tasks, prompt_source=args.prompt, force=args.force, test_source=profile.test_source,
                max_images=args.max_images if args.max_images is not None else profile.test_max_images,
                max_side=args.max_side if args.max_side is not None else profile.test_max_side,
                tile=args.tile, progress=args.progress)
    except (ValueError, FileNotFoundError, RunLockedError) as err:
        return _fail("eval", err)
    if args.output:
        from csnet.io import atomic_write

        with atomic_write(args.output) as tmp:
            table.to_csv(tmp, index=False)
        print(f"per-image table: {args.output}")
    summary = summarise(table, by=("benchmark", "task") if args.test_root else ("task",))
    note = "" if profile.meaningful else f"  ({profile.name} profile: numbers not meaningful)"
    print(f"run {run.dir.name} ({run.fusion}, seed {run.seed}, profile {profile.name}), "
          f"prompt {args.prompt}{note}")
    if args.test_root:
        print(f"standard test sets under {args.test_root}, whole images"
              + (f"; not in the tree, skipped: {', '.join(skipped)}" if skipped else ""))
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _restore(args: argparse.Namespace) -> int:
    import torch

    from csnet.evaluate import restore_image
    from csnet.io import read_image, write_image
    from csnet.prompts import recognise
    from csnet.store import Run, RunLockedError, get_or_train

    try:
        if args.run:
            if not (Path(args.run) / "DONE").exists():
                return _fail("restore", f"{args.run} is not a finished run folder (no DONE marker)")
            run = Run.load(args.run)
        elif args.profile and args.fusion:
            _, cfg = _config(args)
            run = get_or_train(cfg)
        else:
            return _fail("restore", "name a run: --run DIR, or --profile and --fusion")
        image = read_image(args.image)
    except (ValueError, FileNotFoundError, RunLockedError) as err:
        return _fail("restore", err)
    height, width = image.shape[:2]
    if args.tile is None:
        tile = DEFAULT_TILE if height * width > DEFAULT_TILE_ABOVE_MP * 1e6 else None
    else:
        tile = args.tile or None
    visual = run.prompts([], source="image", images=[image])  # P_v over training-size tiles
    pred, confidence = recognise(visual, run.anchors)
    recognised = run.labels[int(pred[0])]
    if args.prompt_label:
        prompt = run.anchor(args.prompt_label)[None]
    else:
        prompt = visual
    with torch.inference_mode():
        restored = restore_image(run.model, image, prompt, tile=tile, overlap=args.overlap)
    write_image(args.output, restored)
    print(f"recognised degradation: {recognised} (confidence {float(confidence[0]):.3f})")
    print(f"restored {width}×{height} with run {run.dir.name} → {args.output}")
    print(describe_run(run))
    return 0


def describe_run(run) -> str:
    """What a restoration used: the run, its profile, how long it was trained, and whether its output
    is only a pipeline check (``csnet.profiles.restoration_is_pipeline_check``)."""
    from csnet.profiles import restoration_is_pipeline_check

    cfg = run.config
    done = run.metrics.get("steps_done", cfg.steps)
    seconds = run.metrics.get("train_seconds")
    trained = f"{done} of {cfg.steps} steps" + (f" ({seconds:.0f} s)" if seconds is not None else "")
    line = (f"run {run.id}: profile {cfg.profile or '(not recorded)'}, fusion {cfg.fusion}, seed {cfg.seed}, "
            f"trained {trained}, {'trained just now' if run.trained_now else 'reused from the store'}; "
            f"folder {run.dir}")
    if restoration_is_pipeline_check(cfg.profile):
        line += (f"\nnote: {cfg.profile or 'this'} models are too small or too briefly trained for real "
                 "restoration: this output is a pipeline check, not a result (use --profile cpu or paper)")
    return line


def _runs(args: argparse.Namespace) -> int:
    from csnet import paths
    from csnet.store import find_run, list_runs, remove_run

    root = Path(args.root) if args.root else paths.runs_root()
    if args.remove or args.remove_stale:
        try:
            targets = [find_run(name, root) for name in args.remove or []]
        except FileNotFoundError as err:
            return _fail("runs", err)
        if args.remove_stale:
            table = list_runs(root)
            targets += [Path(p) for p in table.loc[table["stale"] != "", "path"]]
        for folder in dict.fromkeys(targets):
            remove_run(folder)
            print(f"removed {folder}")
        if not targets:
            print("nothing to remove")
        return 0
    table = list_runs(root)
    if table.empty:
        print(f"no runs in the store {root}")
        return 0
    if args.output:
        from csnet.io import atomic_write

        with atomic_write(args.output) as tmp:
            table.to_csv(tmp, index=False)
    shown = table.drop(columns=["path"]).assign(stale=table["stale"].map(lambda r: "STALE" if r else ""))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"store: {root}")
    stale = table[table["stale"] != ""]
    if len(stale):
        print(f"{len(stale)} stale run(s), no config reaches them any more:")
        for _, row in stale.iterrows():
            print(f"  {row['run']}: {row['stale']}")
        print("remove them with `csnet runs --remove-stale` (or `csnet runs --remove RUN …`)")
    return 0
