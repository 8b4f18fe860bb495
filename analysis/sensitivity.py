"""Which channels does each degradation actually *use*? Per-channel sensitivity at the fusion sites,
measured from outside the model with captum, and what it says about channel specialisation.

Table I (notebook 01) reads the channels a task is *given* from its prompt. This module measures, per
task, how much the restoration depends on every channel of every fusion site, by three methods:

- **ablation** (captum ``LayerFeatureAblation``, one group per channel: ``layer_mask`` is
  ``arange(C).view(1, C, 1, 1)``): the drop in the per-image score when the channel is zeroed;
- **gradient** (``LayerGradientXActivation``, or ``LayerConductance``): Σ over H, W of
  |gradient × activation| per channel (a magnitude of involvement; the signed sum would be the
  first-order estimate of the ablation effect), mean over images;
- **activation**: mean |activation| per channel (no model output involved: a baseline the others
  should beat).

The score is per image and higher is better: the PSNR in dB (``metric="psnr"``, so ablation gives the
PSNR drop) or −L1 (``metric="l1"``, so ablation gives the rise in L1). Following captum's contract, the
forward function returns one scalar per image and the clean target and the prompt travel through
``additional_forward_args`` (a closure over the target would break when captum expands the batch).

Sites and spaces: every fusion site's ``probe`` (the site output, Ĉ channels, the same in every
mechanism) is the ``output`` space; the channel-selection mechanisms also expose
``fusion.selection_probe`` (the κĈ expanded channels after selection), the ``selection`` space, where
the model's own choice of channels can be compared with captum's.

Channels are not aligned across seeds (each seed is a different network), so stability across seeds is
judged from statistics of the importance *distribution* (specificity index, top-k share, between-task
overlap), never from raw channel ids.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from analysis import stats

METRICS = ("psnr", "l1")
GRADIENT_METHODS = ("gradient_x_activation", "conductance")
METHODS = ("ablation", "gradient", "activation")
SPACES = ("output", "selection")
PROMPT_SOURCES = ("text", "image")
MSE_FLOOR = 1e-10  # a perfect restoration scores 100 dB instead of infinity

# Default sizes per profile; every one can be overridden by a notebook parameter.
SCALES: dict[str, dict[str, int]] = {
    "smoke": dict(patches_per_task=2, readout_patches_per_task=6, patch_size=16),
    "quick": dict(patches_per_task=4, readout_patches_per_task=24, patch_size=32),
    "cpu": dict(patches_per_task=8, readout_patches_per_task=48, patch_size=32),
    "paper": dict(patches_per_task=32, readout_patches_per_task=128, patch_size=128),
}

IMPORTANCE_COLUMNS = ["site", "space", "task", "label", "method", "channel", "importance", "n_images"]


def run_configs(prof, seeds: Sequence[int], mechanisms: Sequence[str], tasks: Sequence[str] | None,
                text_encoder: str | None, kappa: float, keep_ratio: float) -> dict:
    """(mechanism, seed) → ``RunConfig`` of every model the study probes, seed by seed: the very runs
    notebook 01 trains (``fusion_comparison.configure``), so the store shares them. ``tasks`` and
    ``text_encoder`` None: the profile's."""
    from analysis.fusion_comparison import configure

    tasks = tuple(tasks if tasks is not None else prof.tasks)
    encoder = text_encoder or prof.text_encoder
    return {(mechanism, seed): configure(prof, mechanism, seed, tasks=tasks, text_encoder=encoder, kappa=kappa,
                                         omega=keep_ratio)
            for seed in seeds for mechanism in mechanisms}


def scale(profile: str, **given: int | None) -> dict[str, int]:
    """The sizes for ``profile`` (:data:`SCALES`), with every ``given`` value that is not None kept."""
    if profile not in SCALES:
        raise ValueError(f"unknown profile {profile!r}; sizes exist for {', '.join(SCALES)}")
    unknown = sorted(set(given) - set(SCALES[profile]))
    if unknown:
        raise ValueError(f"unknown size(s) {unknown}; the sizes are {sorted(SCALES[profile])}")
    sizes = {**SCALES[profile], **{k: v for k, v in given.items() if v is not None}}
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return {k: int(v) for k, v in sizes.items()}


def _check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {tuple(allowed)}")
    return value


# ----------------------------------------------------------------------------- test patches


@dataclass
class Patches:
    """Degraded/clean test patches with their task, label and source photo (the same photos and crop
    positions in every task, so tasks differ only by the degradation)."""

    degraded: torch.Tensor  # (N, 3, P, P)
    clean: torch.Tensor  # (N, 3, P, P)
    tasks: list[str]
    labels: list[str]
    images: list[str]

    def __len__(self) -> int:
        return len(self.tasks)

    def of_task(self, task: str) -> "Patches":
        """The patches of one task."""
        keep = [i for i, t in enumerate(self.tasks) if t == task]
        if not keep:
            raise ValueError(f"no patches of task {task!r}; the patches hold {sorted(set(self.tasks))}")
        index = torch.tensor(keep)
        return Patches(self.degraded[index], self.clean[index], [self.tasks[i] for i in keep],
                       [self.labels[i] for i in keep], [self.images[i] for i in keep])


def crop_test_patches(tasks: Sequence[str], per_task: int, patch_size: int, *, seed: int = 0,
                      source: str = "corpus", max_images: int | None = None,
                      max_side: int | None = None) -> Patches:
    """``per_task`` square crops of side ``patch_size`` from ``csnet.data.test_set(task, ...)`` (the test
    photos, degraded with the fixed test seeds), cycling over the photos. Crop ``k`` sits at the same
    position of the same photo in every task; positions come from ``seed``."""
    from csnet.data import test_set
    from csnet.degrade import label_of

    degraded, clean, task_of, label_list, names = [], [], [], [], []
    for task in tasks:
        images = test_set(task, source=source, max_images=max_images, max_side=max_side)
        if not images:
            raise ValueError(f"the test set of {task!r} (source {source!r}) is empty")
        for k in range(per_task):
            image = images[k % len(images)]
            height, width = image.clean.shape[:2]
            if min(height, width) < patch_size:
                raise ValueError(f"patch_size {patch_size} exceeds test image {image.name} of task {task!r} "
                                 f"({height}×{width} after the test crop); use a smaller patch_size")
            rng = np.random.default_rng([seed, k])
            top, left = int(rng.integers(height - patch_size + 1)), int(rng.integers(width - patch_size + 1))
            for target, array in ((degraded, image.degraded), (clean, image.clean)):
                crop = np.ascontiguousarray(array[top:top + patch_size, left:left + patch_size], dtype=np.float32)
                target.append(torch.from_numpy(crop).permute(2, 0, 1))
            task_of.append(task)
            label_list.append(label_of(task))
            names.append(image.name)
    return Patches(torch.stack(degraded), torch.stack(clean), task_of, label_list, names)




def patch_prompts(run, patches: Patches, source: str = "text") -> torch.Tensor:
    """(N, 512) prompts for the patches: ``text`` = the text anchor of each patch's true label (P_t, as
    in Table I), ``image`` = the run's image encoder on the degraded patch (P_v, the paper's test time)."""
    _check_choice(source, PROMPT_SOURCES, "prompt source")
    with torch.no_grad():
        if source == "text":
            return torch.stack([run.anchor(label) for label in patches.labels]).float().cpu()
        return run.prompts([], source="image", images=patches.degraded).float().cpu()


# ----------------------------------------------------------------------------- the score captum reads


def image_scores(restored: torch.Tensor, clean: torch.Tensor, metric: str = "psnr") -> torch.Tensor:
    """(B,) per-image score, higher is better: PSNR in dB (``psnr``) or −mean |error| (``l1``), both on
    the output clipped to [0, 1] as the metrics of the suite are."""
    _check_choice(metric, METRICS, "metric")
    error = restored.clamp(0, 1) - clean  # (B, 3, H, W)
    if metric == "psnr":
        mse = error.pow(2).flatten(1).mean(dim=1)
        return -10.0 * torch.log10(mse.clamp_min(MSE_FLOOR))
    return -error.abs().flatten(1).mean(dim=1)


class RestorationScore:
    """captum's forward function: ``score(degraded, clean, prompt) -> (B,)``, one scalar per image.

    ``clean`` and ``prompt`` are passed by captum as ``additional_forward_args`` (expanded with the batch
    when perturbations or integration steps are batched)."""

    def __init__(self, model: nn.Module, metric: str = "psnr"):
        self.model = model
        self.metric = _check_choice(metric, METRICS, "metric")

    def __call__(self, degraded: torch.Tensor, clean: torch.Tensor, prompt: torch.Tensor | None) -> torch.Tensor:
        return image_scores(self.model(degraded, prompt), clean, self.metric)


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _chunks(n: int, size: int | None) -> list[slice]:
    size = n if not size else max(1, int(size))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _move(device: torch.device, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    return [None if t is None else t.to(device) for t in tensors]


# ----------------------------------------------------------------------------- the three methods


def layer_activations(model: nn.Module, layers: Mapping[Any, nn.Module], degraded: torch.Tensor,
                      prompt: torch.Tensor | None, *, batch_size: int | None = None
                      ) -> dict[Any, dict[str, np.ndarray]]:
    """Per layer: ``{"mean_abs": (N, C), "mean": (N, C)}``, each image's mean |activation| and mean
    activation (global average pooling) per channel of the layer's output."""
    device = _device_of(model)
    collected: dict[Any, dict[str, list[np.ndarray]]] = {key: {"mean_abs": [], "mean": []} for key in layers}

    def hook_for(key):
        def hook(module, inputs, output):
            collected[key]["mean_abs"].append(output.detach().abs().mean(dim=(2, 3)).float().cpu().numpy())
            collected[key]["mean"].append(output.detach().mean(dim=(2, 3)).float().cpu().numpy())
        return hook

    handles = [layer.register_forward_hook(hook_for(key)) for key, layer in layers.items()]
    try:
        with torch.no_grad():
            for part in _chunks(degraded.shape[0], batch_size):
                x, p = _move(device, degraded[part], None if prompt is None else prompt[part])
                model(x, p)
    finally:
        for handle in handles:
            handle.remove()
    return {key: {name: np.concatenate(parts) for name, parts in values.items()}
            for key, values in collected.items()}


def channel_layer_mask(silent: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """captum ``layer_mask`` (1, C, 1, 1) with one group per channel. Channels flagged ``silent`` (zero on
    every image of the batch, e.g. those hard selection discards) share one last group: zeroing a zero
    channel cannot change the output, so they are ablated together once and each gets exactly 0."""
    silent = torch.as_tensor(np.asarray(silent, dtype=bool))
    groups = torch.empty(silent.numel(), dtype=torch.long)
    active = (~silent).nonzero().flatten()
    groups[active] = torch.arange(active.numel())
    groups[silent] = active.numel()
    return groups.view(1, -1, 1, 1).to(device)


def channel_ablation(score: Callable, layer: nn.Module, degraded: torch.Tensor, clean: torch.Tensor,
                     prompt: torch.Tensor | None, *, perturbations_per_eval: int = 1,
                     batch_size: int | None = None, group_silent: bool = True,
                     silent: np.ndarray | None = None) -> np.ndarray:
    """(N, C): per image, ``score(intact) − score(channel c of layer's output zeroed)``, by captum's
    ``LayerFeatureAblation`` with one mask group per channel. Positive = the channel helps the image.

    ``score`` is a :class:`RestorationScore` (or any ``f(degraded, clean, prompt) -> (B,)``);
    ``perturbations_per_eval`` channels are ablated per forward pass; ``batch_size`` images per call.
    With ``group_silent``, channels that are exactly zero on every image of a call are one group
    (:func:`channel_layer_mask`), which halves the cost at hard selection's expanded channels; ``silent``
    (C,) names them when already known (zero on every image), else one extra forward pass finds them."""
    from captum.attr import LayerFeatureAblation

    model = getattr(score, "model", None)
    device = _device_of(model) if isinstance(model, nn.Module) else degraded.device
    ablator = LayerFeatureAblation(score, layer)
    out = []
    for part in _chunks(degraded.shape[0], batch_size):
        x, y, p = _move(device, degraded[part], clean[part], None if prompt is None else prompt[part])
        if not group_silent:
            groups = np.zeros(_layer_output(layer, score, x, y, p).shape[1], dtype=bool)
        else:
            groups = silent if silent is not None else _silent_channels(layer, score, x, y, p)
        mask = channel_layer_mask(groups, device)
        attribution = ablator.attribute(x, additional_forward_args=(y, p), layer_mask=mask,
                                        perturbations_per_eval=perturbations_per_eval)
        out.append(attribution.flatten(2)[:, :, 0].detach().float().cpu().numpy())  # (B, C)
    return np.concatenate(out)


def _layer_output(layer: nn.Module, score: Callable, x, y, p) -> torch.Tensor:
    captured = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output.detach()))
    try:
        with torch.no_grad():
            score(x, y, p)
    finally:
        handle.remove()
    if len(captured) != 1:
        raise ValueError(f"the probed layer ran {len(captured)} times in one forward pass; captum attributes "
                         "only the last call: give every site its own probe module")
    return captured[0]


def _silent_channels(layer, score, x, y, p) -> np.ndarray:
    output = _layer_output(layer, score, x, y, p)  # (B, C, H, W)
    return (output.abs().amax(dim=(0, 2, 3)) == 0).cpu().numpy()


def gradient_importance(score: Callable, layers: Sequence[nn.Module], degraded: torch.Tensor,
                        clean: torch.Tensor, prompt: torch.Tensor | None, *,
                        method: str = "gradient_x_activation", batch_size: int | None = None,
                        n_steps: int = 8, internal_batch_size: int | None = None) -> list[np.ndarray]:
    """Per layer, (N, C): Σ over H, W of |attribution| per image and channel.

    ``gradient_x_activation``: captum ``LayerGradientXActivation`` on all layers in one backward pass.
    ``conductance``: captum ``LayerConductance`` per layer (``n_steps`` integration steps from a black
    image; ``internal_batch_size`` images per pass), costlier and closer to the ablation's question."""
    from captum.attr import LayerConductance, LayerGradientXActivation

    _check_choice(method, GRADIENT_METHODS, "gradient method")
    layers = list(layers)
    model = getattr(score, "model", None)
    device = _device_of(model) if isinstance(model, nn.Module) else degraded.device
    per_layer: list[list[np.ndarray]] = [[] for _ in layers]
    for part in _chunks(degraded.shape[0], batch_size):
        x, y, p = _move(device, degraded[part], clean[part], None if prompt is None else prompt[part])
        if method == "gradient_x_activation":
            attributions = LayerGradientXActivation(score, layers).attribute(x, additional_forward_args=(y, p))
            attributions = attributions if isinstance(attributions, (list, tuple)) else [attributions]
        else:
            # captum needs at least two integration steps of every image per internal batch
            internal = max(2 * x.shape[0], internal_batch_size or n_steps * x.shape[0])
            attributions = [LayerConductance(score, layer).attribute(
                x, additional_forward_args=(y, p), n_steps=n_steps, internal_batch_size=internal)
                for layer in layers]
        for bucket, attribution in zip(per_layer, attributions):
            bucket.append(attribution.detach().abs().sum(dim=(2, 3)).float().cpu().numpy())
    return [np.concatenate(bucket) for bucket in per_layer]


# ----------------------------------------------------------------------------- one run, all sites


def probe_layers(model: nn.Module, spaces: Sequence[str] = SPACES) -> dict[tuple[str, str], nn.Module]:
    """(site, space) → probe module: every site's ``probe`` (``output``) and, for channel-selection
    mechanisms, ``fusion.selection_probe`` (``selection``)."""
    layers = {}
    for site, fusion_site in model.fusion_sites.items():
        if "output" in spaces:
            layers[(site, "output")] = fusion_site.probe
        if "selection" in spaces and hasattr(fusion_site.fusion, "selection_probe"):
            layers[(site, "selection")] = fusion_site.fusion.selection_probe
    return layers


def _tidy(values: np.ndarray, site: str, space: str, task: str, label: str, method: str) -> pd.DataFrame:
    """(N, C) per-image importance → one row per channel (mean over images)."""
    return pd.DataFrame({"site": site, "space": space, "task": task, "label": label, "method": method,
                         "channel": np.arange(values.shape[1]), "importance": values.mean(axis=0),
                         "n_images": values.shape[0]})


def channel_importance(model: nn.Module, patches: Patches, prompts: torch.Tensor | None, *,
                       metric: str = "psnr", perturbations_per_eval: int = 8, batch_size: int | None = None,
                       gradient_method: str = "gradient_x_activation", n_steps: int = 8,
                       spaces: Sequence[str] = SPACES) -> pd.DataFrame:
    """Every channel's importance at every probe of ``model``, per task of ``patches``, by the three
    methods. One row per (site, space, task, method, channel): columns :data:`IMPORTANCE_COLUMNS`.

    Cost per task: one forward pass for the activations, one forward/backward pass for
    ``gradient_x_activation`` (``n_steps`` of them for ``conductance``), and per probe of C channels two
    forward passes plus ``ceil(G / perturbations_per_eval)`` passes of ``perturbations_per_eval × batch``
    images, G = the channels not silent on the task's patches (+1 group for the silent ones)."""
    score = RestorationScore(model, metric)
    layers = probe_layers(model, spaces)
    keys = list(layers)
    frames = []
    for task in dict.fromkeys(patches.tasks):
        subset = patches.of_task(task)
        index = torch.tensor([i for i, t in enumerate(patches.tasks) if t == task])
        prompt = None if prompts is None else prompts[index]
        label = subset.labels[0]
        activations = layer_activations(model, layers, subset.degraded, prompt, batch_size=batch_size)
        gradients = gradient_importance(score, [layers[k] for k in keys], subset.degraded, subset.clean, prompt,
                                        method=gradient_method, batch_size=batch_size, n_steps=n_steps,
                                        internal_batch_size=batch_size)
        for key, gradient in zip(keys, gradients):
            site, space = key
            silent = activations[key]["mean_abs"].max(axis=0) == 0  # zero on every image of the task
            ablation = channel_ablation(score, layers[key], subset.degraded, subset.clean, prompt,
                                        perturbations_per_eval=perturbations_per_eval, batch_size=batch_size,
                                        silent=silent)
            for method, values in (("ablation", ablation), ("gradient", gradient),
                                   ("activation", activations[key]["mean_abs"])):
                frames.append(_tidy(values, site, space, task, label, method))
    return pd.concat(frames, ignore_index=True)[IMPORTANCE_COLUMNS]


def pooled_activations(model: nn.Module, patches: Patches, prompts: torch.Tensor | None, *,
                       batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Site → (N, Ĉ) globally average-pooled site outputs (the linear readout's features)."""
    layers = {site: layer for (site, space), layer in probe_layers(model, ("output",)).items()}
    pooled = layer_activations(model, layers, patches.degraded, prompts, batch_size=batch_size)
    return {site: values["mean"] for site, values in pooled.items()}


def selected_channels(run, labels: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """label → site → the K expanded-channel indices the model keeps for that label's text prompt
    (``model.selected_channels``; exact for ``hard_select``, the K largest gates for ``soft_gate``)."""
    with torch.no_grad():
        return {label: {site: idx[0].cpu().numpy()
                        for site, idx in run.model.selected_channels(run.anchor(label)[None]).items()}
                for label in labels}


@dataclass
class RunProbe:
    """What one trained model gives: importance (tidy), pooled site outputs, its own channel choice."""

    mechanism: str
    seed: int
    importance: pd.DataFrame
    pooled: dict[str, np.ndarray]
    selected: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0


def probe_run(run, mechanism: str, probe: Patches, readout: Patches, *, prompt_source: str = "text",
              metric: str = "psnr", perturbations_per_eval: int = 8, batch_size: int | None = None,
              gradient_method: str = "gradient_x_activation", n_steps: int = 8) -> RunProbe:
    """:func:`channel_importance` on ``probe``, :func:`pooled_activations` on ``readout`` and (for
    channel-selection mechanisms) :func:`selected_channels` of the probe's labels, for one run."""
    import time

    started = time.perf_counter()
    model = run.model.eval()
    importance = channel_importance(model, probe, patch_prompts(run, probe, prompt_source), metric=metric,
                                    perturbations_per_eval=perturbations_per_eval, batch_size=batch_size,
                                    gradient_method=gradient_method, n_steps=n_steps)
    pooled = pooled_activations(model, readout, patch_prompts(run, readout, prompt_source), batch_size=batch_size)
    selecting = any(hasattr(site.fusion, "selection_probe") for site in model.fusion_sites.values())
    selected = selected_channels(run, list(dict.fromkeys(probe.labels))) if selecting else {}
    return RunProbe(mechanism, int(run.seed), importance.assign(mechanism=mechanism, seed=int(run.seed)),
                    pooled, selected, time.perf_counter() - started)


# ----------------------------------------------------------------------------- findings

GROUP = ["mechanism", "seed", "site", "space", "method"]


def top_k_count(channels: int, fraction: float) -> int:
    """k = round(fraction · channels), at least 1 and at most ``channels``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"top_k_fraction must lie in (0, 1], got {fraction}")
    return min(channels, max(1, int(math.floor(fraction * channels + 0.5))))


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values (ties to the lower index), sorted."""
    order = np.argsort(-np.asarray(values, dtype=float), kind="stable")
    return np.sort(order[:k])


def jaccard(a, b) -> float:
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return len(a & b) / max(1, len(a | b))


def chance_jaccard(channels: int, k: int) -> float:
    """Expected Jaccard index of two independent, uniformly random k-subsets of ``channels`` items
    (the overlap is hypergeometric)."""
    from scipy.stats import hypergeom

    overlap = np.arange(0, k + 1)
    probability = hypergeom(channels, k, k).pmf(overlap)
    return float(np.sum(probability * overlap / (2 * k - overlap)))


def importance_matrix(importance: pd.DataFrame, tasks: Sequence[str] | None = None) -> pd.DataFrame:
    """tasks × channels matrix of one group's importance (``importance`` holds one group only)."""
    matrix = importance.pivot_table(index="task", columns="channel", values="importance", sort=False)
    return matrix.loc[list(tasks)] if tasks is not None else matrix


def specificity_index(matrix: np.ndarray) -> float:
    """How task-specific a site's channels are, from a tasks × channels importance matrix (negative
    importance clipped to 0): per channel, its largest task share rescaled so that equal use by every
    task is 0 and use by one task only is 1; averaged over channels weighted by their total importance.
    Invariant to channel order, so comparable across seeds. NaN with < 2 tasks or no positive importance."""
    values = np.clip(np.asarray(matrix, dtype=float), 0, None)
    tasks = values.shape[0]
    total = values.sum(axis=0)
    if tasks < 2 or total.sum() <= 0:
        return float("nan")
    used = total > 0
    share = values[:, used].max(axis=0) / total[used]
    specific = (share - 1 / tasks) / (1 - 1 / tasks)
    return float(np.sum(specific * total[used]) / total[used].sum())


def top_k_share(values: np.ndarray, k: int) -> float:
    """Fraction of the positive importance held by the ``k`` most important channels (concentration)."""
    values = np.clip(np.asarray(values, dtype=float), 0, None)
    if values.sum() <= 0:
        return float("nan")
    return float(np.sort(values)[::-1][:k].sum() / values.sum())


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def method_correlations(importance: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of the channel importance between every pair of methods, per
    (mechanism, seed, site, space, task). NaN where one method gives every channel the same value."""
    rows = []
    keys = ["mechanism", "seed", "site", "space", "task"]
    for key, group in importance.groupby(keys, sort=False):
        by_method = {method: rows.sort_values("channel")["importance"].to_numpy()
                     for method, rows in group.groupby("method", sort=False)}
        for a, b in itertools.combinations([m for m in METHODS if m in by_method], 2):
            rows.append({**dict(zip(keys, key)), "method_a": a, "method_b": b,
                         "pair": f"{a} vs {b}", "spearman": _spearman(by_method[a], by_method[b])})
    return pd.DataFrame(rows)


def task_overlap(importance: pd.DataFrame, top_k_fraction: float) -> pd.DataFrame:
    """Jaccard of the top-k channels of every pair of tasks, per (mechanism, seed, site, space, method),
    with the chance level of random k-subsets."""
    rows = []
    for key, group in importance.groupby(GROUP, sort=False):
        matrix = importance_matrix(group)
        channels = matrix.shape[1]
        k = top_k_count(channels, top_k_fraction)
        tops = {task: top_k(matrix.loc[task].to_numpy(), k) for task in matrix.index}
        for a, b in itertools.combinations(matrix.index, 2):
            rows.append({**dict(zip(GROUP, key)), "task_a": a, "task_b": b, "channels": channels, "k": k,
                         "jaccard": jaccard(tops[a], tops[b]), "chance": chance_jaccard(channels, k)})
    return pd.DataFrame(rows)


def rank_statistics(importance: pd.DataFrame, top_k_fraction: float) -> pd.DataFrame:
    """Per (mechanism, seed, site, space, method): statistics of the importance *distribution* that do
    not depend on channel ids — ``specificity`` (:func:`specificity_index`), ``top_k_share`` (mean over
    tasks), ``between_task_jaccard`` (mean over task pairs), its ``chance`` and
    ``jaccard_above_chance`` (the difference, comparable across sites of different widths)."""
    overlap = task_overlap(importance, top_k_fraction)
    mean_overlap = overlap.groupby(GROUP, sort=False)[["jaccard", "chance"]].mean() if not overlap.empty else None
    rows = []
    for key, group in importance.groupby(GROUP, sort=False):
        matrix = importance_matrix(group)
        k = top_k_count(matrix.shape[1], top_k_fraction)
        shares = np.array([top_k_share(values, k) for values in matrix.to_numpy()])
        row = {**dict(zip(GROUP, key)), "channels": matrix.shape[1], "k": k, "tasks": matrix.shape[0],
               "specificity": specificity_index(matrix.to_numpy()),
               "top_k_share": float(shares[np.isfinite(shares)].mean()) if np.isfinite(shares).any() else float("nan"),
               "between_task_jaccard": float("nan"), "chance": float("nan")}
        if mean_overlap is not None and key in mean_overlap.index:
            row["between_task_jaccard"] = float(mean_overlap.loc[key, "jaccard"])
            row["chance"] = float(mean_overlap.loc[key, "chance"])
        # Sites have 16–128 channels, so raw Jaccard values are not comparable across sites: the excess
        # over the chance level of random k-subsets of the same site is.
        row["jaccard_above_chance"] = row["between_task_jaccard"] - row["chance"]
        rows.append(row)
    return pd.DataFrame(rows)


def seed_stability(rank_stats: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of the rank-distribution statistics per (mechanism, site, space, method).
    Channel ids are never compared across seeds: each seed is a different network."""
    values = ["specificity", "top_k_share", "between_task_jaccard"]
    return stats.mean_std_over_seeds(rank_stats, ["mechanism", "site", "space", "method"], values)


def selection_agreement(importance: pd.DataFrame,
                        selected: Mapping[tuple[str, int], Mapping[str, Mapping[str, np.ndarray]]]) -> pd.DataFrame:
    """How many of captum's K most sensitive expanded channels are among the K the model keeps.

    ``selected`` maps (mechanism, seed) → label → site → kept indices (:func:`selected_channels`).
    Per (mechanism, seed, site, task, method) of the ``selection`` space: ``precision`` = |top-K ∩ kept|/K
    against ``chance`` = K/κĈ. For ``hard_select`` the discarded channels are exactly zero (importance 0
    by every method), so a kept channel falls out of the top K only when zeroing it *helps* the image:
    the precision counts the kept channels that help. ``soft_gate`` keeps every channel, weighted, and
    is the case where captum and the model's own ranking can really disagree."""
    rows = []
    space = importance[importance["space"] == "selection"]
    for key, group in space.groupby(["mechanism", "seed", "site", "task", "label", "method"], sort=False):
        mechanism, seed, site, task, label, method = key
        kept = selected.get((mechanism, seed), {}).get(label, {}).get(site)
        if kept is None:
            continue
        values = group.sort_values("channel")["importance"].to_numpy()
        k = len(kept)
        hits = len(set(top_k(values, k).tolist()) & set(np.asarray(kept).tolist()))
        rows.append({"mechanism": mechanism, "seed": seed, "site": site, "task": task, "label": label,
                     "method": method, "K": k, "channels": values.size, "hits": hits,
                     "precision": hits / k, "chance": k / values.size})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- linear readout


def readout_accuracy(features: np.ndarray, labels: Sequence[str], *, seed: int = 0, max_folds: int = 5) -> dict:
    """Cross-validated accuracy of a logistic regression (standardised features) predicting the label.

    Stratified folds (at most ``max_folds``, at most the smallest class count), shuffled from ``seed``.
    The photos are the same in every class, so image content cannot give the label away.
    Returns ``accuracy`` (mean over folds), ``accuracy_sd``, ``chance`` (majority class), ``n``, ``folds``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    folds = int(min(max_folds, counts.min())) if counts.size > 1 else 0
    result = {"accuracy": float("nan"), "accuracy_sd": float("nan"), "chance": float(counts.max() / counts.sum()),
              "n": int(labels.size), "folds": folds}
    if folds < 2:
        return result
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(classifier, np.asarray(features, dtype=float), labels, cv=cv, scoring="accuracy")
    result.update(accuracy=float(scores.mean()), accuracy_sd=float(scores.std(ddof=1)) if folds > 1 else float("nan"))
    return result


def readout_table(probes: Sequence[RunProbe], labels: Sequence[str]) -> pd.DataFrame:
    """Readout accuracy per (mechanism, seed, site) from each probe's pooled site outputs."""
    rows = []
    for probe in probes:
        for site, features in probe.pooled.items():
            rows.append({"mechanism": probe.mechanism, "seed": probe.seed, "site": site,
                         **readout_accuracy(features, labels, seed=probe.seed)})
    return pd.DataFrame(rows)


def embeddings(probes: Sequence[RunProbe], labels: Sequence[str], method: str = "pca", seed: int = 0) -> pd.DataFrame:
    """2-D PCA or t-SNE of the standardised pooled site outputs, per (mechanism, seed, site): tidy
    ``x, y, label`` rows."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    _check_choice(method, ("pca", "tsne"), "embedding")
    frames = []
    for probe in probes:
        for site, features in probe.pooled.items():
            x = StandardScaler().fit_transform(np.asarray(features, dtype=float))
            if method == "pca":
                coords = PCA(n_components=2, random_state=seed).fit_transform(x)
            else:
                perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3)))
                coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
            frames.append(pd.DataFrame({"mechanism": probe.mechanism, "seed": probe.seed, "site": site,
                                        "x": coords[:, 0], "y": coords[:, 1], "label": list(labels)}))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- the one number each


def _units(rank_stats: pd.DataFrame, space: str, method: str) -> pd.DataFrame:
    return rank_stats[(rank_stats["space"] == space) & (rank_stats["method"] == method)]


MEASURES = ("jaccard_above_chance", "specificity")  # compared between mechanisms, both on a 0–1 scale
MEASURE_MARGIN = stats.MARGINS["jaccard"]  # equivalence margin of both measures


def mechanism_summary(rank_stats: pd.DataFrame, readout: pd.DataFrame | None, *, space: str = "output",
                      method: str = "ablation", reference: str = "hard_select", n_boot: int = 2000,
                      seed: int = 0, alpha: float = 0.05, margin: float = MEASURE_MARGIN,
                      mixed: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per mechanism and the comparisons between mechanisms, at the level of the seed.

    The unit is the seed (each seed is another network); the sites are a crossed factor that repeats
    in every seed. Per mechanism: the between-task Jaccard of the top-k ``method``-sensitive channels at
    the site outputs (lower = tasks use more distinct channels), its excess over each site's chance level,
    the specificity index, each the mean over per-seed means with a crossed seed × site interval; whether
    the overlap is above chance (t over seeds against 0, Holm over mechanisms, three-way verdict within
    ±``margin``); the readout accuracy. Comparisons: ``reference − other`` per measure (Welch t over
    seeds: the mechanisms are separately trained networks), Holm per measure, three-way verdicts."""
    units = _units(rank_stats, space, method)
    rows, above = [], []
    for mechanism, group in units.groupby("mechanism", sort=False):
        row = {"mechanism": mechanism, "space": space, "method": method, "units": len(group),
               "n_seeds": int(group["seed"].nunique())}
        for column in ("between_task_jaccard", "jaccard_above_chance", "specificity"):
            finite = group.dropna(subset=[column])
            ci = stats.mean_interval(finite, column, n_boot=n_boot, seed=seed, image_col="site") if len(finite) else None
            row[column] = ci["estimate"] if ci else float("nan")
            row[f"{column}_lo"] = ci["lo"] if ci else float("nan")
            row[f"{column}_hi"] = ci["hi"] if ci else float("nan")
        row["chance_jaccard"] = float(group["chance"].mean())
        finite = group.dropna(subset=["jaccard_above_chance"])
        if len(finite):
            above.append({"mechanism": mechanism, **stats.compare(finite, finite.assign(jaccard_above_chance=0.0),
                                                                  "jaccard_above_chance", paired=True, margin=margin,
                                                                  n_boot=n_boot, seed=seed, mixed=False,
                                                                  image_col="site")})
        if readout is not None and not readout.empty:
            accuracy = readout[readout["mechanism"] == mechanism]
            row["readout_accuracy"] = float(accuracy["accuracy"].mean())
            row["readout_chance"] = float(accuracy["chance"].mean())
        rows.append(row)
    summary = pd.DataFrame(rows)
    if above:
        tested = stats.add_verdicts(pd.DataFrame(above), alpha=alpha).set_index("mechanism")
        summary["above_chance_p_holm"] = summary["mechanism"].map(tested["p_holm"])
        summary["above_chance_verdict"] = summary["mechanism"].map(tested["verdict"])

    comparisons = []
    ref = units[units["mechanism"] == reference]
    for mechanism, other in units.groupby("mechanism", sort=False):
        if mechanism == reference or ref.empty:
            continue
        for column in MEASURES:
            ours, theirs = ref.dropna(subset=[column]), other.dropna(subset=[column])
            if ours.empty or theirs.empty:
                continue
            result = stats.compare(ours, theirs, column, paired=False, margin=margin, n_boot=n_boot, seed=seed,
                                   mixed=mixed, image_col="site")
            comparisons.append({"measure": column, "reference": reference, "other": mechanism, **result})
    return summary, stats.add_verdicts(pd.DataFrame(comparisons), alpha=alpha, family="measure")


def verdict(summary: pd.DataFrame, comparisons: pd.DataFrame, correlations: pd.DataFrame,
            agreement: pd.DataFrame, *, reference: str = "hard_select", top_k_fraction: float = 0.25) -> str:
    """Sentences computed from the tables (never written by hand); a comparison that is not significant
    is called inconclusive or equivalent within its margin, never "no difference"."""
    parts = []
    if not summary.empty:
        described = ", ".join(
            f"{r.mechanism} {r.jaccard_above_chance:+.2f} [{r.jaccard_above_chance_lo:+.2f}, "
            f"{r.jaccard_above_chance_hi:+.2f}]" + (f" {r.above_chance_verdict.split(' (')[0]}" if "above_chance_verdict" in summary else "")
            for r in summary.itertuples())
        parts.append(f"between-task Jaccard of the top {top_k_fraction:.0%} ablation-sensitive channels at the "
                     f"site outputs above each site's chance level (mean over seeds of the mean over sites, 95% CI "
                     f"over seeds and sites; t over seeds against 0): {described}")
    if not comparisons.empty:
        for measure, rows in comparisons.groupby("measure", sort=False):
            what = "overlap above chance" if measure == "jaccard_above_chance" else "specificity index"
            for r in rows.to_dict("records"):
                parts.append(stats.verdict_sentence(f"{what}, {reference} − {r['other']}", r, unit="", digits=3,
                                                    crossed="sites"))
        jaccard = comparisons[comparisons["measure"] == "jaccard_above_chance"]
        if not jaccard.empty:
            parts.append(stats.design_sentence(int(jaccard["n_seeds"].min()), float(jaccard["seed_sd"].median()),
                                               unit="", family_size=len(jaccard), paired=False))
    if "readout_accuracy" in summary:
        described = ", ".join(f"{r.mechanism} {r.readout_accuracy:.0%}" for r in summary.itertuples())
        parts.append(f"a linear readout of the degradation from pooled site outputs reaches {described} "
                     f"(chance {summary['readout_chance'].mean():.0%})")
    if not correlations.empty:
        medians = correlations.groupby("pair", sort=False)["spearman"].median().dropna()
        if not medians.empty:
            parts.append("methods agree with median Spearman ρ " + ", ".join(
                f"{value:.2f} ({pair})" for pair, value in medians.items()))
    if not agreement.empty:
        ablation = agreement[agreement["method"] == "ablation"]
        if not ablation.empty:
            by = ablation.groupby("mechanism", sort=False)[["precision", "chance"]].mean()
            parts.append("of the K most ablation-sensitive expanded channels, " + ", ".join(
                f"{m} keeps {r.precision:.0%} (chance {r.chance:.0%})" for m, r in by.iterrows()))
    return stats.join_verdicts(parts)
