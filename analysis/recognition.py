"""Notebook 04: how well do the prompts recognise the degradation, composites included?

CSNet claims that explicit, text-anchored degradation prompts recognise the degradation better than the
implicit prompts of PromptIR or the frequency cues of AdaIR, especially for composite degradations
(PROTOCOL.md, "The claim under study", 1). The paper gives no recognition accuracy; this module measures
it. Every recogniser is scored on the same test patches:

- **text-anchored image encoder** (CSNet's DPGNet): a ``csnet.prompts.ImagePromptEncoder`` trained
  *for recognition alone* (contrastive loss against the text anchors of its training labels; no
  restoration loss) on train-split patches, one per (text encoder, task set, seed), cached on disk. A
  patch is assigned the label of the nearest anchor (cosine). Labels held out of training are recognised
  zero-shot through their text anchor. (The image encoders inside restoration runs are trained on the
  profile's three tasks only, so they cannot serve the 5-type and composite sets; they are used for the
  downstream restoration study instead.)
- **frequency cues** (AdaIR-style): FFT radial band energies, spectral slope, orientation and flatness
  statistics of each patch (:func:`frequency_features`) → standardised logistic regression with its
  regularisation chosen by cross-validation on the training features.
- **implicit prompts** (PromptIR-style): the softmax weights over the learned prompt components at every
  fusion site of a trained ``implicit_prompt`` model, captured with forward hooks
  (:func:`implicit_prompt_weights`), read out by the same cross-validated logistic regression.

The frequency and implicit features and their readout live in ``analysis.recognition_features``; the
accuracy tables, comparisons and verdict in ``analysis.recognition_stats``.

Training patches always come from ``csnet.data.TrainPatches`` (the corpus's *train* photos, or dead
leaves), test patches from the corpus's *test* photos (:func:`make_test_patches`); the two never mix.

Our choices where nothing is published: patches are degraded as training patches are (the clean crop is
degraded, not cropped out of a degraded photo); each class gets the same number of test and training
patches (a class with several task keys, such as ``noise`` with σ 15/25/50, splits its share); accuracy
intervals are percentile bootstraps over test patches (after averaging a patch over seeds).
"""
from __future__ import annotations

import hashlib
import json
import math
import pickle
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from analysis.recognition_features import fit_readout, frequency_features, implicit_prompt_weights

# Bump when the recogniser training changes, so that cached encoders are not silently reused.
RECOGNISER_VERSION = 1

# Test and training patches per class, by profile (the notebook's ``n_patches`` / ``n_train_patches``
# override them).
PATCHES_BY_PROFILE = {
    "smoke": {"test": 6, "train": 12},
    "quick": {"test": 40, "train": 80},
    "cpu": {"test": 128, "train": 256},
    "paper": {"test": 256, "train": 1024},
}

TEXT = "text anchors"  # recogniser names are "text anchors: <text encoder as really used>"
FREQUENCY = "frequency cues (AdaIR-style)"
IMPLICIT = "implicit prompts (PromptIR-style)"
DESCRIPTIONS = {
    TEXT: "image prompt encoder trained by contrast with the text anchors of its labels; nearest anchor (cosine)",
    FREQUENCY: "FFT band energies, spectral slope, orientation and flatness → logistic regression (CV)",
    IMPLICIT: "softmax weights over the learned prompt components at every site of a trained implicit_prompt "
              "model → logistic regression (CV)",
}

PAPER_CLAIM = (
    "CSNet paper (published claim, no recognition accuracy given): explicit text-anchored degradation "
    "prompts recognise the degradation better than implicit prompts (PromptIR) and frequency cues "
    "(AdaIR), especially for composite degradations."
)


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    """One kind of test patch: a task key, optional fixed degradation parameters, and its class."""

    name: str  # shown in tables, e.g. "noise σ=50" or "rain+haze"
    task: str  # csnet.degrade key
    overrides: tuple[tuple[str, float], ...] = ()  # fixed degradation parameters (csnet.degrade overrides)
    kind: str = "single"  # "single", "severity", "composite" or "held-out composite"

    @property
    def label(self) -> str:
        from csnet.degrade import label_of

        return label_of(self.task)


def labels_of(tasks: Iterable[str]) -> list[str]:
    """Degradation labels of ``tasks`` in first-seen order (σ levels share ``noise``)."""
    from csnet.degrade import label_of

    return list(dict.fromkeys(label_of(t) for t in tasks))


def task_sets(three_task: Sequence[str], five_task: Sequence[str], composites: Sequence[str],
              held_out: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The growing training sets: 3 types → 5 types → 5 types + the composites not held out.

    Raises ``ValueError`` when a held-out composite is not in ``composites`` or when its label is also a
    training label (it would not be held out)."""
    from csnet.degrade import validate_task

    composites = [validate_task(c) for c in composites]
    held = [validate_task(c) for c in held_out]
    unknown = [c for c in held if c not in composites]
    if unknown:
        raise ValueError(f"held_out {unknown} must be listed in composites {composites}")
    seen = [c for c in composites if c not in held]
    three = tuple(three_task)
    five = tuple(dict.fromkeys([*three_task, *five_task]))
    sets = {f"{len(labels_of(three))} types": three, f"{len(labels_of(five))} types": five}
    if seen:
        largest = tuple(dict.fromkeys([*five, *seen]))
        sets[f"{len(labels_of(five))} types + {len(labels_of(seen))} composites"] = largest
    largest = list(sets.values())[-1]
    clash = sorted(set(labels_of(held)) & set(labels_of(largest)))
    if clash:
        raise ValueError(f"held-out label(s) {clash} are also training labels; hold out another composite")
    return sets


def severity_conditions(severities: Mapping[str, Mapping[str, Sequence[float]]]) -> list[Condition]:
    """``{primitive: {parameter: [values]}}`` → one condition per value (e.g. ``noise σ=50``).

    Parameter names are ``csnet.degrade`` overrides (``sigma``, ``density``, ``beta``, ...)."""
    from csnet.degrade import parameter_names

    symbols = {"sigma": "σ", "beta": "β"}
    out = []
    for primitive, parameters in severities.items():
        allowed = parameter_names(primitive)[primitive]
        for name, values in parameters.items():
            if name not in allowed:
                raise ValueError(f"severity parameter {name!r} is not one of {primitive}'s: {', '.join(allowed)}")
            for value in values:
                out.append(Condition(f"{primitive} {symbols.get(name, name)}={value:g}", primitive,
                                     ((name, float(value)),), "severity"))
    return out


def standard_conditions(tasks: Iterable[str], held_out: Sequence[str] = ()) -> list[Condition]:
    """One condition per task key (parameters drawn as in training); composites are marked as such."""
    out = [Condition(t, t, (), "composite" if "+" in t else "single") for t in dict.fromkeys(tasks)]
    out += [Condition(t, t, (), "held-out composite") for t in held_out]
    return out


# ----------------------------------------------------------------------------- patches


@dataclass
class Patches:
    """Degraded patches and what they are: ``images`` (N, 3, P, P) float32 in [0, 1], one row of
    ``meta`` per patch (``patch``, ``condition``, ``kind``, ``task``, ``label``, ``photo``)."""

    images: torch.Tensor
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.meta)

    def subset(self, mask) -> "Patches":
        mask = np.array(mask, dtype=bool)  # a writable copy (pandas' arrays may be read-only)
        return Patches(self.images[torch.from_numpy(mask)], self.meta[mask].reset_index(drop=True))


def per_class_counts(conditions: Sequence[Condition], n_per_class: int) -> dict[str, int]:
    """Patches per condition so that every class of the non-severity conditions gets ``n_per_class``
    (a class with ``m`` task keys gives each ``ceil(n / m)``); each severity condition gets ``n``."""
    by_label: dict[str, int] = {}
    for c in conditions:
        if c.kind != "severity":
            by_label[c.label] = by_label.get(c.label, 0) + 1
    return {c.name: n_per_class if c.kind == "severity" else math.ceil(n_per_class / by_label[c.label])
            for c in conditions}


def make_test_patches(conditions: Sequence[Condition], n_per_class: int, patch_size: int,
                      seed: int = 0, photos: Mapping[str, np.ndarray] | None = None) -> Patches:
    """Test patches from the corpus's *test* photos: patch ``k`` of a condition crops photo
    ``k mod n_photos`` at a seeded position and degrades the crop with a seed drawn from
    ``(seed, condition, k)`` — the same patches every run. ``photos`` replaces the corpus (tests)."""
    from csnet import corpus
    from csnet.degrade import degrade

    if photos is None:
        photos = {name: corpus.cached_photo(name) for name in corpus.photo_names("test")}
    names = sorted(photos)
    if not names:
        raise ValueError("no test photos: see `csnet corpus` for the packages that ship them")
    small = [n for n in names if min(photos[n].shape[:2]) < patch_size]
    if small:
        raise ValueError(f"patch_size {patch_size} exceeds test photo(s) {small}")
    counts = per_class_counts(conditions, n_per_class)
    images, rows = [], []
    for condition in conditions:
        digest = int(hashlib.sha256(condition.name.encode()).hexdigest()[:8], 16)
        for k in range(counts[condition.name]):
            rng = np.random.default_rng([seed, digest, k])
            name = names[k % len(names)]
            photo = photos[name]
            top = int(rng.integers(photo.shape[0] - patch_size + 1))
            left = int(rng.integers(photo.shape[1] - patch_size + 1))
            clean = np.ascontiguousarray(photo[top:top + patch_size, left:left + patch_size], dtype=np.float32)
            degraded, _ = degrade(clean, condition.task, int(rng.integers(2**31)), **dict(condition.overrides))
            images.append(torch.from_numpy(np.ascontiguousarray(degraded.transpose(2, 0, 1))))
            rows.append({"patch": len(rows), "condition": condition.name, "kind": condition.kind,
                         "task": condition.task, "label": condition.label, "photo": name})
    return Patches(torch.stack(images), pd.DataFrame(rows))


def label_balanced_weights(tasks: Sequence[str]) -> list[int]:
    """Integer repetition counts per task so every *label* is drawn equally often (``noise`` with three
    σ keys gets a third of the weight per key)."""
    from csnet.degrade import label_of

    shares = {}
    for t in tasks:
        shares[label_of(t)] = shares.get(label_of(t), 0) + 1
    common = math.lcm(*shares.values())
    return [common // shares[label_of(t)] for t in tasks]


def make_train_patches(tasks: Sequence[str], n_per_class: int, patch_size: int, seed: int,
                       source: str = "corpus") -> Patches:
    """Training patches for the linear readouts: ``TrainPatches`` on the corpus's *train* photos,
    label-balanced, ``n_per_class × n_labels`` items."""
    from csnet.data import TrainPatches

    n_labels = len(labels_of(tasks))
    data = TrainPatches(list(tasks), patch_size, n_per_class * n_labels, seed, source=source,
                        task_weights=label_balanced_weights(tasks))
    images, rows = [], []
    for i in range(len(data)):
        item = data[i]
        images.append(item["degraded"])
        rows.append({"patch": i, "condition": item["task"], "kind": "train", "task": item["task"],
                     "label": labels_of([item["task"]])[0], "photo": "train split"})
    return Patches(torch.stack(images), pd.DataFrame(rows))


# ----------------------------------------------------------------------------- text-anchored encoder


@dataclass
class PromptRecogniser:
    """An image prompt encoder with the text anchors it was trained against."""

    encoder: torch.nn.Module
    labels: list[str]
    anchors: torch.Tensor  # (N, 512), L2-normalised
    text_encoder: Any  # the csnet.prompts text encoder (embeds labels never trained on)
    text_encoder_info: dict
    config: dict = field(default_factory=dict)
    reused: bool = False  # True when loaded from the cache
    train_seconds: float = 0.0
    cache_key: str = ""  # names the cache file (config + the text encoder as really loaded)

    def anchors_for(self, labels: Sequence[str]) -> torch.Tensor:
        """Anchors of ``labels``: the trained ones where known, else fresh text embeddings (zero-shot)."""
        from csnet.prompts import text_anchors

        missing = [lab for lab in labels if lab not in self.labels]
        fresh = {}
        if missing:
            encoded = torch.as_tensor(np.asarray(text_anchors(self.text_encoder, missing)), dtype=torch.float32)
            fresh = dict(zip(missing, encoded))
        return torch.stack([self.anchors[self.labels.index(lab)] if lab in self.labels else fresh[lab]
                            for lab in labels])

    @torch.inference_mode()
    def embed(self, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """(N, 512) visual prompts P_v, on the CPU (computed on the encoder's device)."""
        self.encoder.eval()
        device = next(self.encoder.parameters()).device
        return torch.cat([self.encoder(images[s:s + batch_size].to(device)).float().cpu()
                          for s in range(0, len(images), batch_size)])

    def predict(self, visual: torch.Tensor, candidates: Sequence[str]) -> list[str]:
        """The candidate label whose text anchor is nearest (cosine) to each visual prompt."""
        from csnet.prompts import recognise

        pred, _ = recognise(visual, self.anchors_for(candidates))
        return [candidates[int(i)] for i in pred]


def recogniser_config(text_encoder: str, tasks: Sequence[str], *, steps: int, batch_size: int,
                      patch_size: int, lr: float, temperature: float, seed: int,
                      image_encoder: Mapping[str, Any] | None = None, data_source: str = "corpus") -> dict:
    """Everything that defines a recognition-only encoder (its hash names the cache file)."""
    return {"text_encoder": text_encoder, "tasks": list(tasks), "steps": int(steps), "batch_size": int(batch_size),
            "patch_size": int(patch_size), "lr": float(lr), "temperature": float(temperature), "seed": int(seed),
            "image_encoder": dict(image_encoder or {}), "data_source": data_source, "weight_decay": 0.01,
            "version": RECOGNISER_VERSION}


def config_key(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _build_encoder(config: Mapping[str, Any]) -> torch.nn.Module:
    from csnet.prompts import ImagePromptEncoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config["seed"]) * 1_000_003 + 17)
        return ImagePromptEncoder(**dict(config["image_encoder"]))


def train_recogniser(config: Mapping[str, Any], progress: bool = False,
                     device: str | torch.device | None = None) -> PromptRecogniser:
    """Train (or load from ``csnet.paths.cache_dir("recognisers")``) an image prompt encoder for
    recognition alone: AdamW, cosine schedule, ``csnet.prompts.contrastive_loss`` against the text
    anchors of the training labels, on label-balanced ``TrainPatches`` (train split). Deterministic given
    the config (bit for bit on the CPU); the cache file is written atomically, so an interrupted run never
    leaves a file a later run trusts. ``device`` (default CPU) is where it trains and then lives."""
    from csnet import paths
    from csnet.data import TrainPatches
    from csnet.io import atomic_write
    from csnet.prompts import contrastive_loss, get_text_encoder, text_anchors

    text_encoder = get_text_encoder(config["text_encoder"])
    labels = labels_of(config["tasks"])
    # Always through text_anchors, also on a cache hit: it registers the labels with encoders that hold
    # state (one-hot assigns indices in order), so that zero-shot labels get fresh indices later.
    anchors = torch.as_tensor(np.asarray(text_anchors(text_encoder, labels)), dtype=torch.float32)
    key = config_key({**dict(config), "text_encoder_info": dict(text_encoder.info)})  # weights file included
    path = paths.cache_dir("recognisers") / f"{key[:20]}.pt"
    device = torch.device(device or "cpu")
    encoder = _build_encoder(config)
    if path.exists():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            encoder.load_state_dict(state["encoder"])
            if list(state["labels"]) != labels or not torch.allclose(state["anchors"].float(), anchors, atol=1e-6):
                raise ValueError("cached labels or anchors differ from the text encoder's")
            return PromptRecogniser(encoder.to(device).eval(), labels, anchors, text_encoder, dict(text_encoder.info),
                                    dict(config), True, float(state["train_seconds"]), key[:20])
        except (RuntimeError, KeyError, EOFError, ValueError, OSError, pickle.UnpicklingError) as err:
            warnings.warn(f"recogniser cache {path.name} unreadable ({err}); training again", stacklevel=2)
            encoder = _build_encoder(config)
    tasks = list(config["tasks"])
    data = TrainPatches(tasks, config["patch_size"], config["steps"] * config["batch_size"], config["seed"],
                        source=config["data_source"], task_weights=label_balanced_weights(tasks))
    task_to_label = torch.tensor([labels.index(lab) for lab in (labels_of([t])[0] for t in data.tasks)])
    loader = torch.utils.data.DataLoader(data, batch_size=config["batch_size"], shuffle=False, num_workers=0)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, config["steps"])))))
    started = time.perf_counter()
    encoder.to(device).train()
    device_anchors = anchors.to(device)
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config["seed"]) * 7919 + 3)  # dropout draws
        iterator = loader
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(loader, desc=f"recogniser {config['text_encoder']} ({len(labels)} labels)", leave=False)
        for batch in iterator:
            targets = task_to_label[batch["task_index"]].to(device)
            loss = contrastive_loss(encoder(batch["degraded"].to(device)), device_anchors, targets, config["temperature"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
    seconds = time.perf_counter() - started
    encoder.eval()
    with atomic_write(path) as tmp:
        torch.save({"encoder": {k: v.cpu() for k, v in encoder.state_dict().items()}, "labels": labels, "anchors": anchors,
                    "train_seconds": seconds, "final_loss": float(np.mean(losses[-20:])) if losses else math.nan,
                    "config": json.dumps(config, sort_keys=True)}, tmp)
    return PromptRecogniser(encoder, labels, anchors, text_encoder, dict(text_encoder.info), dict(config), False,
                            seconds, key[:20])


def encoder_display_name(spec: str, info: Mapping[str, Any]) -> str:
    """A name for tables and figures that says what the text encoder really was; an open_clip model
    without weights is labelled loudly as random-initialised."""
    if spec.startswith("open_clip"):
        model = info.get("model") or (spec.split(":")[1] if ":" in spec else "?")
        if not info.get("pretrained"):
            return f"open_clip {model} (random init — no weights offline)"
        return f"open_clip {model} (pretrained, local weights)"
    if spec == "onehot":
        return "one-hot (no text prior)"
    if spec == "wordllama":
        return f"wordllama {info.get('model', '')}".strip()
    return str(info.get("model") or spec)


# ----------------------------------------------------------------------------- predictions and accuracy


def text_recogniser_name(spec: str, info: Mapping[str, Any]) -> str:
    return f"{TEXT}: {encoder_display_name(spec, info)}"


def recogniser_table(text_names: Sequence[str]) -> pd.DataFrame:
    """What each recogniser is, one row each (the text-anchored ones first)."""
    rows = [{"recogniser": name, "what": DESCRIPTIONS[TEXT]} for name in text_names]
    return pd.DataFrame(rows + [{"recogniser": key, "what": DESCRIPTIONS[key]} for key in (FREQUENCY, IMPLICIT)])


@dataclass
class ReadoutFeatures:
    """Features of one set of patches for the two readouts (rows aligned with ``meta``)."""

    meta: pd.DataFrame
    frequency: np.ndarray
    implicit: np.ndarray | None  # None when no implicit_prompt model is given

    @classmethod
    def of(cls, patches: Patches, implicit_model=None) -> "ReadoutFeatures":
        implicit = implicit_prompt_weights(implicit_model, patches.images)[0] if implicit_model is not None else None
        return cls(patches.meta, frequency_features(patches.images), implicit)

    def rows(self, labels: Sequence[str]) -> np.ndarray:
        return self.meta["label"].isin(list(labels)).to_numpy()


def evaluate_task_set(test: Patches, tasks: Sequence[str], *, set_name: str, seed: int,
                      train_features: ReadoutFeatures, test_features: ReadoutFeatures,
                      encoder_configs: Mapping[str, Mapping[str, Any]], progress: bool = False,
                      device: str | torch.device | None = None) -> tuple[pd.DataFrame, dict[str, PromptRecogniser]]:
    """Closed-set predictions of every recogniser on the test patches whose class is among ``tasks``'s labels.

    The readouts are fitted on the rows of ``train_features`` (train split) whose class is in the set;
    ``encoder_configs`` maps each text encoder spec to its recogniser config for these tasks. Returns the
    prediction rows and the trained text-anchored recognisers by name."""
    labels = labels_of(tasks)
    mask = test_features.rows(labels)
    train_mask = train_features.rows(labels)
    shown = test.meta[mask].reset_index(drop=True)
    train_labels = train_features.meta.loc[train_mask, "label"].to_numpy()
    common = {"seed": seed, "task_set": set_name, "n_classes": len(labels), "evaluation": "closed"}
    frames = []
    readout = fit_readout(train_features.frequency[train_mask], train_labels, seed)
    frames.append(prediction_rows(shown, readout.predict(test_features.frequency[mask]), recogniser=FREQUENCY, **common))
    if train_features.implicit is not None and test_features.implicit is not None:
        readout = fit_readout(train_features.implicit[train_mask], train_labels, seed)
        frames.append(prediction_rows(shown, readout.predict(test_features.implicit[mask]), recogniser=IMPLICIT,
                                      **common))
    recognisers = {}
    for spec, config in encoder_configs.items():
        recogniser = train_recogniser(config, progress=progress, device=device)
        name = text_recogniser_name(spec, recogniser.text_encoder_info)
        recognisers[name] = recogniser
        visual = recogniser.embed(test.subset(mask).images)
        frames.append(prediction_rows(shown, recogniser.predict(visual, labels), recogniser=name, **common))
    return pd.concat(frames, ignore_index=True), recognisers


def zero_shot_predictions(test: Patches, recogniser: PromptRecogniser, name: str, *, seed: int, set_name: str,
                          held_labels: Sequence[str]) -> pd.DataFrame:
    """Held-out composites recognised through their text anchors by an encoder that never saw them.

    ``generalised``: every standard patch of a trained class and every held-out patch, candidates = the
    trained labels + the held-out labels (a held-out patch may be mistaken for a seen class);
    ``held-out only``: the held-out patches among the held-out labels."""
    seen = list(recogniser.labels)
    meta = test.meta
    standard = meta["kind"].isin(["single", "composite"]) & meta["label"].isin(seen)
    held = (meta["kind"] == "held-out composite") & meta["label"].isin(held_labels)
    frames = []
    for evaluation, mask, candidates in (("generalised", (standard | held).to_numpy(), seen + list(held_labels)),
                                         ("held-out only", held.to_numpy(), list(held_labels))):
        if not mask.any():
            continue
        visual = recogniser.embed(test.subset(mask).images)
        frames.append(prediction_rows(meta[mask].reset_index(drop=True), recogniser.predict(visual, candidates),
                                      recogniser=name, seed=seed, task_set=set_name, n_classes=len(candidates),
                                      evaluation=evaluation))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()



def prediction_rows(meta: pd.DataFrame, predicted: Sequence[str], **columns) -> pd.DataFrame:
    """The patches' ``meta`` with ``predicted``, ``correct`` and constant ``columns`` added."""
    out = meta.copy()
    for key, value in columns.items():
        out[key] = value
    out["predicted"] = list(predicted)
    out["correct"] = out["predicted"] == out["label"]
    return out


def synthesis_source(data_source: str) -> str:
    """The training source for recognisers and readouts: composites and severities are synthesised, so a
    benchmark folder (single tasks only) is replaced by ``"mixed"`` (corpus photos and dead leaves)."""
    from csnet.data import KEYWORD_SOURCES

    return data_source if isinstance(data_source, str) and data_source in KEYWORD_SOURCES else "mixed"


# ----------------------------------------------------------------------------- embeddings


def pca_projection(visual: np.ndarray, anchors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA fitted on the visual prompts; the anchors projected with the same components.

    Returns ``(visual_2d, anchors_2d, explained_variance_ratio)``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(np.asarray(visual))
    return pca.transform(np.asarray(visual)), pca.transform(np.asarray(anchors)), pca.explained_variance_ratio_


def tsne_projection(visual: np.ndarray, anchors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE of visual prompts and anchors embedded jointly (cosine metric; t-SNE has no out-of-sample
    projection, so anchors must be in the fit). Perplexity ``min(30, (n − 1) / 3)``."""
    from sklearn.manifold import TSNE

    joint = np.concatenate([np.asarray(visual), np.asarray(anchors)])
    perplexity = float(max(2.0, min(30.0, (len(joint) - 1) / 3)))
    embedded = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed,
                    max_iter=750).fit_transform(joint)
    return embedded[: len(visual)], embedded[len(visual):]


# ----------------------------------------------------------------------------- downstream restoration


def downstream_table(run, tasks: Sequence[str], evaluate_kwargs: Mapping[str, Any]) -> pd.DataFrame:
    """Per image: PSNR/SSIM of ``run`` with the image encoder's predicted prompt (P_v) and with the
    oracle text prompt of the true label (P_t), side by side, and what the encoder recognised."""
    from csnet.evaluate import evaluate

    image = evaluate(run, tasks, prompt_source="image", **evaluate_kwargs)
    text = evaluate(run, tasks, prompt_source="text", **evaluate_kwargs)
    keys = ["run", "seed", "task", "label", "image"]
    merged = image[keys + ["psnr", "ssim", "predicted", "correct"]].merge(
        text[keys + ["psnr", "ssim"]], on=keys, suffixes=("_image_prompt", "_text_prompt"))
    merged["delta_psnr"] = merged["psnr_image_prompt"] - merged["psnr_text_prompt"]
    return merged
