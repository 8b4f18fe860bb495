"""Degradation prompts (CSNet's DPGNet): text prompts P_t from a frozen text encoder, visual prompts
P_v from a light image encoder trained to land on them, and the contrastive loss that ties the two.

P_e = P_t (the ground-truth label's text embedding) during training, P_e = P_v (the image encoder's
output) at test time. The paper uses a frozen CLIP text encoder and leaves open the CLIP variant (its
512-d prompts suggest ViT-B/32 or B/16), the prompt template and the temperature.

Text encoders (``get_text_encoder(spec)``):

- ``open_clip:MODEL`` — open_clip's text tower, randomly initialised (no weights offline: a loud
  warning, ``info["pretrained"] = False``);
- ``open_clip:MODEL:TAG`` — the weights of an open_clip pretrained tag when they are already in the
  local Hugging Face / open_clip cache (nothing is downloaded), else the random tower, loudly;
- ``open_clip:MODEL:/path/to/weights.pt|.bin|.safetensors`` — a local weights file;
- ``wordllama`` — real pretrained static token embeddings shipped inside the wordllama wheel (256-d);
- ``onehot`` — one-hot vectors (512-d), a control with no semantic prior: every distinct text gets the
  next free index *within one encoder instance*, in order of first appearance, so the same label list
  gives the same vectors in a fresh instance;
- ``random`` / ``random:SEED`` — a random unit vector per text, seeded by a hash of the text (a control
  that is stable across instances and orders).

``TextEncoder.info`` records what was really used; every result should carry it.
"""
from __future__ import annotations

import abc
import functools
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from csnet.io import atomic_write
from csnet.paths import cache_dir

PROMPT_DIM = 512  # the width of P_e (CLIP's text width)
TEMPERATURE = 0.05  # τ of the cosine classifier: OneRestore's value; the paper's is unknown (ours)
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def label_text(label: str, template: str = "{}") -> str:
    """The text a label is embedded as. Composite labels join their parts with '_' (``rain_haze``, the
    paper's ``low_haze``); they are written out as ``rain and haze`` so that a text encoder sees words,
    and zero-shot composites get a meaningful text. ``template`` wraps the result (``"a photo with {}"``)."""
    return template.format(" and ".join(part for part in label.split("_") if part))


# --- text encoders -------------------------------------------------------------------------------


class TextEncoder(abc.ABC):
    """A frozen text encoder: ``encode(texts) -> (N, d) float32 numpy`` and ``info`` (what was really
    used: ``kind``, ``model``, ``weights``, ``pretrained``, ``dim``, ``note``)."""

    spec: str
    info: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    @abc.abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) embeddings of ``texts``."""

    def remember(self, texts: Sequence[str]) -> None:
        """Update any state ``encode(texts)`` would have updated (``text_anchors`` calls this on a cache hit)."""

    def cache_identity(self, texts: Sequence[str]) -> dict[str, Any]:
        """Everything besides the texts that determines ``encode(texts)`` (the disk-cache key)."""
        return {"spec": self.spec, "weights": self.info.get("weights"), "dim": self.dim}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, pretrained={self.info.get('pretrained')})"


class OneHotTextEncoder(TextEncoder):
    """One-hot vectors in 512 dimensions; each distinct text takes the next free index of this instance."""

    def __init__(self, dim: int = PROMPT_DIM):
        self.spec = "onehot"
        self.vocabulary: dict[str, int] = {}
        self.info = {"kind": "onehot", "model": "onehot", "weights": None, "pretrained": False, "dim": dim,
                     "note": "control: orthogonal prompts, no semantic prior; indices in order of first appearance"}

    def indices(self, texts: Sequence[str]) -> list[int]:
        """The indices ``texts`` would receive, without assigning them."""
        vocabulary = dict(self.vocabulary)
        for text in texts:
            vocabulary.setdefault(text, len(vocabulary))
        if len(vocabulary) > self.dim:
            raise ValueError(f"onehot encodes at most {self.dim} distinct texts; got {len(vocabulary)}")
        return [vocabulary[text] for text in texts]

    def remember(self, texts: Sequence[str]) -> None:
        for text, index in zip(texts, self.indices(texts)):
            self.vocabulary.setdefault(text, index)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = self.indices(texts)
        self.remember(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[np.arange(len(texts)), rows] = 1.0
        return out

    def cache_identity(self, texts: Sequence[str]) -> dict[str, Any]:
        return {**super().cache_identity(texts), "indices": self.indices(texts)}


class RandomTextEncoder(TextEncoder):
    """A random unit vector per text, drawn from a generator seeded by SHA-256(seed, text)."""

    def __init__(self, seed: int = 0, dim: int = PROMPT_DIM):
        self.spec = f"random:{seed}"
        self.seed = seed
        self.info = {"kind": "random", "model": "random", "weights": f"seed={seed}", "pretrained": False,
                     "dim": dim, "note": "control: random prompts, no semantic prior"}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            digest = hashlib.sha256(f"{self.seed}\0{text}".encode()).digest()
            vector = np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(self.dim)
            rows.append(vector / np.linalg.norm(vector))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


class WordLlamaTextEncoder(TextEncoder):
    """wordllama's ``l2_supercat`` static embeddings (token embeddings distilled from large language
    models, average-pooled), loaded from the wheel itself: offline, pretrained, 256-d."""

    def __init__(self):
        wordllama, WordLlama = _import_wordllama()

        package = Path(wordllama.__file__).parent
        self.spec = "wordllama"
        self.model = WordLlama.load(cache_dir=package, disable_download=True)
        weights = package / "weights" / "l2_supercat_256.safetensors"
        version = getattr(wordllama, "__version__", "unknown")
        self.info = {"kind": "wordllama", "model": "l2_supercat", "weights": f"{weights.name} (wordllama {version})",
                     "pretrained": True, "dim": 256, "note": "static token embeddings shipped in the wheel"}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.embed(list(texts)), dtype=np.float32).reshape(len(texts), -1)


def _import_wordllama():
    """Import wordllama without its side effect: it calls ``logging.basicConfig(level=INFO)``, which
    would make every library's INFO messages print for the rest of the process."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
        from wordllama import WordLlama
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return wordllama, WordLlama


class OpenClipTextEncoder(TextEncoder):
    """open_clip's text tower (``encode_text``), frozen in eval mode; the visual tower is dropped after
    construction (open_clip has no text-only constructor)."""

    def __init__(self, model_name: str, weights: str | None = None):
        self.spec = f"open_clip:{model_name}" + (f":{weights}" if weights else "")
        resolved, note, quick_gelu = _resolve_open_clip_weights(model_name, weights)
        self.model, self.tokenizer, dim = _load_open_clip(model_name, resolved, quick_gelu)
        pretrained = resolved is not None
        if not pretrained:
            warnings.warn(
                f"open_clip {model_name}: no pretrained weights ({note}); the text tower is RANDOMLY "
                f"INITIALISED (seed 0). Its prompts carry no language prior. Pass "
                f"'open_clip:{model_name}:/path/to/weights' to use real CLIP weights.",
                stacklevel=3,
            )
        if resolved is not None:
            stat = Path(resolved).stat()
            weights_id = f"{resolved} ({stat.st_size} bytes, mtime {int(stat.st_mtime)})"
        else:
            weights_id = "random-init(seed=0)"
        self.info = {"kind": "open_clip", "model": model_name, "weights": weights_id, "pretrained": pretrained,
                     "dim": dim, "note": note}

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self.tokenizer(list(texts))
        return self.model.encode_text(tokens).float().cpu().numpy()


def _import_open_clip():
    """Import open_clip offline. huggingface_hub reads HF_HOME / HF_HUB_OFFLINE when it is imported, so
    they are set first (a value the user already set wins; if huggingface_hub was imported earlier its
    settings stand). Nothing here downloads either way: tags are looked up in the local cache only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
    import open_clip

    return open_clip


def _resolve_open_clip_weights(model_name: str, weights: str | None) -> tuple[str | None, str, bool]:
    """(a local weights file for ``weights`` (a tag or a path) or None, why, whether the tag's weights
    were trained with QuickGELU). Never downloads."""
    if not weights:
        return None, "no weights requested", False
    if weights.endswith(WEIGHT_SUFFIXES) or os.sep in weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"open_clip weights file not found: {path}")
        return str(path), f"weights file {path}", False
    open_clip = _import_open_clip()
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if weights not in tags:
        raise ValueError(f"open_clip has no pretrained tag {weights!r} for {model_name}; its tags are {tags}")
    cfg = open_clip.get_pretrained_cfg(model_name, weights)
    candidates = []
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(cfg["hf_hub"])  # "org/repo/" names open_clip's default file
        filename = filename or "open_clip_pytorch_model.bin"
        safe = "open_clip_model.safetensors" if filename == "open_clip_pytorch_model.bin" else (
            str(Path(filename).with_suffix(".safetensors")) if filename.endswith((".bin", ".pth")) else None
        )
        for name in filter(None, (safe, filename)):
            found = try_to_load_from_cache(repo_id, name)  # a path, or a marker/None when not cached
            if isinstance(found, str):
                candidates.append(found)
    if cfg.get("url"):
        candidates.append(str(Path.home() / ".cache" / "clip" / os.path.basename(cfg["url"])))
    quick_gelu = bool(cfg.get("quick_gelu", False))  # e.g. OpenAI's weights: the activation must match
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate, f"pretrained tag {weights!r} from the local cache", quick_gelu
    return None, f"pretrained tag {weights!r} is not in the local cache (offline: nothing downloaded)", False


@functools.lru_cache(maxsize=2)
def _load_open_clip(model_name: str, weights_file: str | None, quick_gelu: bool = False):
    """(text model, tokenizer, width); random initialisation drawn from seed 0 (global RNG untouched)."""
    open_clip = _import_open_clip()
    if model_name not in open_clip.list_models():
        raise ValueError(f"open_clip has no model {model_name!r}; e.g. ViT-B-32, ViT-B-16, RN50, ViT-S-32-alt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(model_name, pretrained=weights_file, force_quick_gelu=quick_gelu)
    if hasattr(model, "visual"):
        model.visual = None  # only the text tower is used: free the image tower
    model.eval().requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(model_name)
    with torch.no_grad():
        dim = int(model.encode_text(tokenizer(["x"])).shape[-1])
    return model, tokenizer, dim


@functools.lru_cache(maxsize=1)
def _wordllama() -> WordLlamaTextEncoder:
    return WordLlamaTextEncoder()


def get_text_encoder(spec: str) -> TextEncoder:
    """The text encoder a spec names (module docstring). Heavy encoders are loaded once per process."""
    kind, _, rest = spec.partition(":")
    if kind == "open_clip":
        model_name, _, weights = rest.partition(":")
        if not model_name:
            raise ValueError("open_clip spec needs a model: 'open_clip:ViT-B-32[:TAG_OR_FILE]'")
        return OpenClipTextEncoder(model_name, weights or None)
    if kind == "wordllama" and not rest:
        return _wordllama()
    if kind == "onehot" and not rest:
        return OneHotTextEncoder()
    if kind == "random":
        try:
            return RandomTextEncoder(seed=int(rest) if rest else 0)
        except ValueError:
            raise ValueError(f"random text encoder spec {spec!r}: expected 'random' or 'random:SEED'") from None
    raise ValueError(
        f"unknown text encoder {spec!r}; use 'open_clip:MODEL[:TAG_OR_FILE]', 'wordllama', 'onehot' or 'random[:SEED]'"
    )


# --- text anchors --------------------------------------------------------------------------------


def projection_matrix(in_dim: int, out_dim: int = PROMPT_DIM, seed: int = 0) -> np.ndarray:
    """A fixed (in_dim, out_dim) matrix with orthonormal rows (in_dim ≤ out_dim) or columns, from a
    seeded generator. When in_dim ≤ out_dim it is an isometry: dot products, norms and so cosines are
    preserved exactly; otherwise it projects onto a random out_dim-subspace (cosines approximate)."""
    rng = np.random.default_rng(seed)
    gaussian = rng.standard_normal((max(in_dim, out_dim), min(in_dim, out_dim)))
    q, r = np.linalg.qr(gaussian)
    q = q * np.sign(np.diag(r))  # a unique, sign-fixed orthonormal basis
    return (q.T if in_dim <= out_dim else q).astype(np.float64)


def text_anchors(
    encoder: TextEncoder | str,
    labels: Sequence[str],
    dim: int = PROMPT_DIM,
    template: str = "{}",
    cache: bool = True,
) -> torch.Tensor:
    """(N, dim) float32 L2-normalised text prompts P_t for ``labels`` (see ``label_text``).

    Embeddings of width d ≠ ``dim`` are mapped by ``projection_matrix(d, dim)``. Results are cached under
    ``csnet.paths.cache_dir("text_embeddings")`` keyed by a hash of the encoder's identity (spec,
    weights), the template and the texts.
    """
    if isinstance(encoder, str):
        encoder = get_text_encoder(encoder)
    texts = [label_text(label, template) for label in labels]
    key = json.dumps({"encoder": encoder.cache_identity(texts), "template": template, "texts": texts, "dim": dim},
                     sort_keys=True)
    path = cache_dir("text_embeddings") / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"
    if cache and path.is_file():
        anchors = np.load(path)
        encoder.remember(texts)
    else:
        embeddings = encoder.encode(texts).astype(np.float64)  # (N, d)
        if embeddings.shape[1] != dim:
            embeddings = embeddings @ projection_matrix(embeddings.shape[1], dim)  # (N, dim)
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        anchors = (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)
        if cache:
            with atomic_write(path) as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, anchors)
    return torch.from_numpy(anchors)


# --- image prompt encoder ------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet's basic block (two 3×3 convolutions and a shortcut), GroupNorm instead of BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.GroupNorm(_groups(out_channels), out_channels),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


def _groups(channels: int) -> int:
    return max(g for g in (8, 4, 2, 1) if channels % g == 0)


class ImagePromptEncoder(nn.Module):
    """DPGNet's image encoder: ResNet → ConvBlock → (pool) → Dropout → Linear → 512, L2-normalised.

    The paper's figure names the parts, not their sizes. Ours: a 3×3 stem, four stages of ``depth``
    basic blocks (widths w, 2w, 4w, 8w, each stage halving the resolution), a 3×3 conv block, global
    average pooling, dropout and a linear map to ``out_dim``. GroupNorm replaces ResNet's BatchNorm so
    that the small batches of CPU training (and batches of one at test time) behave the same.
    OneRestore's embedder, the closest precedent, used a ResNet-18.
    """

    def __init__(self, out_dim: int = PROMPT_DIM, width: int = 32, dropout: float = 0.1, depth: int = 1):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.GroupNorm(_groups(width), width), nn.ReLU()
        )
        stages, channels = [], width
        for stage in range(4):
            out_channels = width * 2**stage
            blocks = [BasicBlock(channels, out_channels, stride=2)]
            blocks += [BasicBlock(out_channels, out_channels, stride=1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = out_channels
        self.resnet = nn.Sequential(*stages)
        self.conv_block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.GroupNorm(_groups(channels), channels), nn.ReLU()
        )
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(channels, out_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.conv_block(self.resnet(self.stem(image)))  # (B, 8w, H/16, W/16)
        pooled = self.dropout(features.mean(dim=(2, 3)))  # (B, 8w)
        return F.normalize(self.linear(pooled), dim=1)  # (B, out_dim) P_v


def cosine_logits(visual: torch.Tensor, anchors: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """(B, N) cosine similarities between visual prompts and text anchors, divided by τ."""
    anchors = anchors.to(device=visual.device, dtype=visual.dtype)
    return F.normalize(visual, dim=1) @ F.normalize(anchors, dim=1).T / temperature


def contrastive_loss(
    visual: torch.Tensor, anchors: torch.Tensor, targets: torch.Tensor, temperature: float = TEMPERATURE
) -> torch.Tensor:
    """Cross-entropy of the cosine classifier: pulls each P_v to its label's P_t and away from the
    others (the paper: "cosine similarity" contrastive loss; τ = 0.05 after OneRestore, ours)."""
    return F.cross_entropy(cosine_logits(visual, anchors, temperature), targets)


@torch.no_grad()
def recognise(
    visual: torch.Tensor, anchors: torch.Tensor, temperature: float = TEMPERATURE
) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted label index (B,), confidence (B,): its softmax probability at τ)."""
    probabilities = cosine_logits(visual, anchors, temperature).softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    return predicted, confidence


@torch.no_grad()
def recognition_accuracy(visual: torch.Tensor, anchors: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of visual prompts whose nearest text anchor (by cosine) is their label's."""
    predicted, _ = recognise(visual, anchors)
    return float((predicted == targets.to(predicted.device)).float().mean())
