"""Table I of the CSNet paper: the channel-misallocation study, and the controls it needs.

The paper derives the channels "dedicated" to each task from that task's text prompt and evaluates every
task with every task's channels (CSNet, Table I). Our reading of the protocol, where the paper is silent:

- every evaluation gives the network the *evaluated* task's own text prompt (P_t); only the kept channel
  set is replaced, at every fusion site at once;
- "all channels" keeps every expanded channel of the *same* network; "all channels, scaled" keeps them all
  multiplied by K/κĈ, so the contraction sees its usual total weight; the plain Restormer (`none`) is the
  "baseline without selection" — both readings of the paper's last row are reported, each named;
- the controls the paper lacks: random channel sets of the same size per site (several draws), and a
  variant trained with mask noise (now and then another task's or a random set), which has seen more
  than three masks; *specificity* is own − random and other − random, per task.

Functions here take evaluation tables (one row per image, from ``csnet.evaluate.evaluate``) and return
tables and figures; the notebook only wires them together.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import stats

if TYPE_CHECKING:  # torch only where a trained run is read, so reading result tables needs no torch
    import torch

# Published Table I (CSNet paper, Table I; PSNR dB / SSIM; 3-task setting, denoising at σ = 25).
PAPER_TABLE1 = pd.DataFrame(
    [
        ("channels for noise", 31.49, 0.893, 25.38, 0.783, 16.32, 0.780),
        ("channels for rain", 20.47, 0.421, 38.10, 0.982, 15.92, 0.810),
        ("channels for haze", 20.94, 0.454, 24.34, 0.792, 31.94, 0.980),
        ("all channels", 31.18, 0.885, 36.55, 0.975, 30.43, 0.975),
    ],
    columns=["channels", "denoise_25_psnr", "denoise_25_ssim", "derain_psnr", "derain_ssim",
             "dehaze_psnr", "dehaze_ssim"],
)
PAPER_SOURCE = "CSNet paper, Table I (published; their data and models, not ours)"

ALL = "all channels (same network)"
ALL_SCALED = "all channels scaled to K/κĈ (same network)"
RANDOM = "random sets of the same size"
BASELINE = "baseline without selection (Restormer, fusion none)"


def own_condition(label: str) -> str:
    """The row name of the channel set a label's text prompt selects."""
    return f"channels for {label}"


# ----------------------------------------------------------------------------- the runs


def run_configs(prof, seeds: Sequence[int], headline: Sequence[int], tasks: Sequence[str] | None,
                text_encoder: str | None, kappa: float, keep_ratio: float, mask_noise: float) -> dict:
    """(variant, seed) → ``RunConfig`` of every model the study trains, in training order: ``hard_select``
    and the baseline ``none`` at the headline seeds and the study's seeds, and ``hard_select+mask_noise``
    (the control trained with mask noise) at the study's seeds. ``tasks``/``text_encoder`` None: the
    profile's. Built by ``fusion_comparison.configure``, so notebooks 02–05 share these runs."""
    from analysis.fusion_comparison import configure

    tasks = tuple(tasks if tasks is not None else prof.tasks)
    encoder = text_encoder or prof.text_encoder
    common = dict(tasks=tasks, text_encoder=encoder, kappa=kappa, omega=keep_ratio)
    configs = {}
    for seed in dict.fromkeys([*headline, *seeds]):
        configs[("hard_select", seed)] = configure(prof, "hard_select", seed, **common)
        configs[("none", seed)] = configure(prof, "none", seed, **common)
        if seed in seeds:
            configs[("hard_select+mask_noise", seed)] = configure(prof, "hard_select", seed, mask_noise=mask_noise,
                                                                 **common)
    return configs


# ----------------------------------------------------------------------------- channel sets


def channel_sets(run, labels: Sequence[str]) -> dict[str, dict[str, torch.Tensor]]:
    """label → site → (K,) sorted indices the run's text prompt for ``label`` keeps."""
    import torch

    with torch.inference_mode():
        return {label: {site: idx[0] for site, idx in run.model.selected_channels(run.anchor(label)[None]).items()}
                for label in labels}


def random_channel_sets(run, n_draws: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """``n_draws`` random keep-sets, each K of the κĈ expanded channels per site, from ``seed``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    sites = {name: site.fusion for name, site in run.model.fusion_sites.items() if hasattr(site.fusion, "keep")}
    return [{name: torch.randperm(f.expanded, generator=generator)[: f.keep].sort().values for name, f in sites.items()}
            for _ in range(n_draws)]


def jaccard_by_site(sets: Mapping[str, Mapping[str, torch.Tensor]]) -> pd.DataFrame:
    """Tidy overlap (Jaccard index) of every pair of labels' channel sets, per site."""
    labels = list(sets)
    rows = []
    for site in next(iter(sets.values())):
        for a in labels:
            for b in labels:
                sa, sb = set(sets[a][site].tolist()), set(sets[b][site].tolist())
                rows.append({"site": site, "a": a, "b": b, "jaccard": len(sa & sb) / max(1, len(sa | sb))})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- evaluation


def evaluate_conditions(run, tasks: Sequence[str], labels: Sequence[str], *, n_random: int, random_seed: int,
                        variant: str, evaluate_kwargs: Mapping) -> pd.DataFrame:
    """Every task with every label's channel set, all channels, all channels scaled and random sets.

    Returns the evaluation rows with ``variant``, ``condition`` and ``draw`` columns added."""
    from csnet.evaluate import evaluate

    conditions: list[tuple[str, object, int]] = [(own_condition(lab), lab, 0) for lab in labels]
    conditions += [(ALL, "all", 0), (ALL_SCALED, "all_scaled", 0)]
    conditions += [(RANDOM, draw, i) for i, draw in enumerate(random_channel_sets(run, n_random, random_seed))]
    frames = []
    for name, force, draw in conditions:
        frame = evaluate(run, tasks, prompt_source="text", force=force, **evaluate_kwargs)
        frames.append(frame.assign(variant=variant, condition=name, draw=draw))
    return pd.concat(frames, ignore_index=True)


def evaluate_baseline(run, tasks: Sequence[str], *, evaluate_kwargs: Mapping) -> pd.DataFrame:
    """The plain Restormer (`none`) on the same test images, as the baseline row."""
    from csnet.evaluate import evaluate

    return evaluate(run, tasks, prompt_source="text", **evaluate_kwargs).assign(
        variant="none", condition=BASELINE, draw=0)


def evaluate_runs(runs: Mapping[tuple[str, int], object], tasks: Sequence[str], labels: Sequence[str], *,
                  n_random: int, evaluate_kwargs: Mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run of the study: ``runs`` maps ``(variant, seed)`` to a trained run; variant ``"none"`` is
    the baseline, every other variant gets all channel conditions (random draws seeded by 1000 + seed).

    Returns ``(evaluations, overlap)``: the per-image rows and the Jaccard overlap of the labels'
    channel sets per site, variant and seed."""
    from tqdm.auto import tqdm

    frames, overlaps = [], []
    for (variant, seed), run in tqdm(list(runs.items()), desc="evaluating"):
        if variant == "none":
            frames.append(evaluate_baseline(run, tasks, evaluate_kwargs=evaluate_kwargs))
            continue
        frames.append(evaluate_conditions(run, tasks, labels, n_random=n_random, random_seed=1000 + seed,
                                          variant=variant, evaluate_kwargs=evaluate_kwargs))
        overlaps.append(jaccard_by_site(channel_sets(run, labels)).assign(variant=variant, seed=seed))
    return pd.concat(frames, ignore_index=True), pd.concat(overlaps, ignore_index=True)


def per_image(df: pd.DataFrame) -> pd.DataFrame:
    """One value per (variant, condition, task, seed, image): random draws averaged per image."""
    keys = ["variant", "condition", "task", "label", "seed", "image"]
    return df.groupby(keys, sort=False)[["psnr", "ssim"]].mean().reset_index()


# ----------------------------------------------------------------------------- tables


def condition_order(labels: Sequence[str]) -> list[str]:
    return [own_condition(lab) for lab in labels] + [ALL, ALL_SCALED, RANDOM, BASELINE]


def summary_table(df: pd.DataFrame, labels: Sequence[str], variant: str) -> pd.DataFrame:
    """Table I laid out as the paper's (rows: channel sets, columns: tasks), mean ± std over seeds.

    The baseline row comes from the `none` model; every other row from ``variant``."""
    images = per_image(df)
    images = images[(images["variant"] == variant) | (images["condition"] == BASELINE)]
    summary = stats.mean_std_over_seeds(images, ["condition", "task"], ["psnr", "ssim"])
    tasks = list(dict.fromkeys(df["task"]))
    rows = []
    for condition in condition_order(labels):
        row = {"channels": condition}
        for task in tasks:
            cell = summary[(summary["condition"] == condition) & (summary["task"] == task)]
            if cell.empty:
                continue
            cell = cell.iloc[0]
            row[f"{task}_psnr"] = cell["psnr_mean"]
            row[f"{task}_psnr_std"] = cell["psnr_std"]
            row[f"{task}_ssim"] = cell["ssim_mean"]
            row[f"{task}_ssim_std"] = cell["ssim_std"]
        row["n_seeds"] = int(summary[summary["condition"] == condition]["n_seeds"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def formatted_table(summary: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """``PSNR ± std / SSIM ± std`` strings per cell, for LaTeX and Markdown."""
    out = pd.DataFrame({"channels": summary["channels"]})
    for task in tasks:
        out[task] = [
            f"{stats.format_mean_std(p, ps)} / {stats.format_mean_std(s, ss, 3)}"
            for p, ps, s, ss in zip(summary[f"{task}_psnr"], summary[f"{task}_psnr_std"],
                                    summary[f"{task}_ssim"], summary[f"{task}_ssim_std"])
        ]
    return out


def paper_value(channels: str, task: str, metric: str = "psnr") -> float:
    """The published Table I value of row ``channels`` (one of our condition names, e.g.
    ``own_condition("noise")``, :data:`ALL`, :data:`BASELINE`) and column ``task`` (our task key), looked
    up by name, never by position; NaN where the paper has no such row or column (it reports σ = 25,
    derain and dehaze only). Both of our "all channels" readings are matched to the paper's one row."""
    rows = {own_condition(lab): f"channels for {lab}" for lab in ("noise", "rain", "haze")}
    rows.update({ALL: "all channels", BASELINE: "all channels"})
    column = f"{task}_{metric}"
    paper = PAPER_TABLE1.set_index("channels")
    if channels not in rows or column not in paper.columns:
        return float("nan")
    return float(paper.loc[rows[channels], column])


def side_by_side(summary: pd.DataFrame, tasks: Sequence[str],
                 paper_task_of: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Ours (measured) beside the paper's Table I (published), PSNR only, matched by row name and task
    key (:func:`paper_value`), so the order of ``tasks`` does not matter. ``paper_task_of`` maps a task
    key of ours to a differently named paper column, when there is one (default: the same key)."""
    rows = []
    for _, row in summary.iterrows():
        record = {"channels": row["channels"]}
        for task in tasks:
            record[f"{task} ours"] = row.get(f"{task}_psnr", np.nan)
            record[f"{task} paper (published)"] = paper_value(row["channels"], (paper_task_of or {}).get(task, task))
        rows.append(record)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- statistics
WITHIN = "own vs the network's other channel sets"  # family: every other row of the same network
HEADLINE = "own vs the baseline without selection"  # family: the separately trained Restormer


def _condition(images: pd.DataFrame, condition: str, variant: str) -> pd.DataFrame:
    rows = images[images["condition"] == condition]
    return rows if condition == BASELINE else rows[rows["variant"] == variant]


def paired_comparisons(df: pd.DataFrame, labels: Sequence[str], variant: str, *, n_boot: int = 2000,
                       seed: int = 0, alpha: float = 0.05, margin: float = stats.MARGINS["psnr"],
                       mixed: bool = True) -> pd.DataFrame:
    """Per task: own channels against every other set, random, all channels (one network: seeds pair,
    paired t over seeds) and against the baseline (a separately trained model: Welch t over seeds).

    ``estimate`` is own − other in PSNR dB over per-seed means (random draws averaged per image), with a
    crossed seed × image bootstrap interval; two Holm families (``family``): the within-network rows,
    and the headline own-vs-baseline rows. Each row ends with a three-way verdict (margin ±``margin`` dB)."""
    images = per_image(df)
    rows = []
    for task, label in images[["task", "label"]].drop_duplicates().itertuples(index=False):
        own = own_condition(label)
        column = images[images["task"] == task]
        ref = _condition(column, own, variant)
        for other in [c for c in condition_order(labels) if c != own]:
            pool = _condition(column, other, variant)
            if ref.empty or pool.empty:
                continue
            headline = other == BASELINE
            result = stats.compare(ref, pool, "psnr", paired=not headline, margin=margin, n_boot=n_boot,
                                   seed=seed, mixed=mixed)
            rows.append({"variant": variant, "family": HEADLINE if headline else WITHIN, "task": task,
                         "own": own, "other": other, **result})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, family="family", unit="dB")


def specificity(df: pd.DataFrame, labels: Sequence[str], variant: str, *, n_boot: int = 2000, seed: int = 0,
                alpha: float = 0.05, margin: float = stats.MARGINS["psnr"], mixed: bool = True) -> pd.DataFrame:
    """own − random and other − random per task (PSNR dB; one network, so seeds pair), with the same
    Holm rule as every comparison: one family per kind.

    Positive own − random with negative other − random is what channel specialisation predicts; both
    near zero says the channel sets are interchangeable; all sets far below "all channels" with random
    as bad as another task's set says the decoder only fits the masks it was trained with."""
    images = per_image(df)
    images = images[images["variant"] == variant]
    rows = []
    for task, label in images[["task", "label"]].drop_duplicates().itertuples(index=False):
        column = images[images["task"] == task]
        random = column[column["condition"] == RANDOM]
        for lab in labels:
            channel = column[column["condition"] == own_condition(lab)]
            if channel.empty or random.empty:
                continue
            result = stats.compare(channel, random, "psnr", paired=True, margin=margin, n_boot=n_boot, seed=seed,
                                   mixed=mixed)
            rows.append({"variant": variant, "task": task, "channels": own_condition(lab),
                         "kind": "own − random" if lab == label else "other − random", **result})
    return stats.add_verdicts(pd.DataFrame(rows), alpha=alpha, family="kind", unit="dB")


def verdict(comparisons: pd.DataFrame, spec: pd.DataFrame) -> str:
    """One sentence computed from the comparison and specificity tables (never written by hand): the
    three-way verdict counts per family, the headline rows one by one, and what the design detects."""
    if comparisons.empty:
        return "No comparisons could be made (no seed and image in common)."
    within = comparisons[comparisons["family"] == WITHIN]
    parts = []
    if not within.empty:
        best = [bool((g["verdict"] == "different").all() and (g["estimate"] > 0).all())
                for _, g in within.groupby("task", sort=False)]
        parts.append(stats.summarise_verdicts(f"own channels against the network's other channel sets "
                                              f"({within['test'].iloc[0]}, Holm over {len(within)})", within))
        parts.append(f"own channels above every other set, each different, in {sum(best)} of {len(best)} columns")
    headline = comparisons[comparisons["family"] == HEADLINE]
    for row in headline.itertuples():
        parts.append(stats.verdict_sentence(f"own channels − baseline without selection on {row.task}", row._asdict()))
    if not headline.empty:
        parts.append(stats.design_sentence(int(headline["n_seeds"].min()), float(headline["seed_sd"].median()),
                                           family_size=len(headline), paired=False))
    others = spec[spec["kind"] == "other − random"] if not spec.empty else spec
    if not others.empty:
        parts.append(stats.summarise_verdicts("another task's set − random sets", others, unit="cells"))
    return stats.join_verdicts(parts)
