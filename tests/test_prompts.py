"""Degradation prompts: text encoders and their cached anchors, the image prompt encoder, the
contrastive loss and recognition."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from csnet.prompts import (
    _resolve_open_clip_weights,
    ImagePromptEncoder,
    contrastive_loss,
    get_text_encoder,
    label_text,
    projection_matrix,
    recognise,
    recognition_accuracy,
    text_anchors,
)

LABELS = ["noise", "rain", "haze", "rain_haze"]


def assert_cached(encoder, labels=LABELS, **kwargs):
    """First call computes (N, 512) unit anchors; the second is read from disk without encoding."""
    first = text_anchors(encoder, labels, **kwargs)
    assert first.shape == (len(labels), 512) and first.dtype == torch.float32
    assert torch.allclose(first.norm(dim=1), torch.ones(len(labels)), atol=1e-5)

    def refuse(texts):
        raise AssertionError("encoded again: the cache missed")

    encoder.encode = refuse  # shadows the method on this instance only
    try:
        assert torch.equal(text_anchors(encoder, labels, **kwargs), first)
    finally:
        del encoder.encode
    return first


def test_composite_labels_become_words():
    assert label_text("rain_haze") == "rain and haze"
    assert label_text("low", "a photo with {}") == "a photo with low"


def test_onehot_is_orthonormal_in_order_of_first_appearance_and_cached():
    anchors = assert_cached(get_text_encoder("onehot"))
    assert torch.equal(anchors @ anchors.T, torch.eye(len(LABELS)))
    encoder = get_text_encoder("onehot")
    assert encoder.encode(["rain", "noise", "rain"]).argmax(axis=1).tolist() == [0, 1, 0]
    assert torch.equal(text_anchors(get_text_encoder("onehot"), LABELS, cache=False), anchors)  # fresh agrees


def test_random_is_seeded_by_the_text():
    anchors = assert_cached(get_text_encoder("random"))
    again = get_text_encoder("random").encode(["haze", "noise"])
    assert np.array_equal(again, get_text_encoder("random").encode(["haze", "noise"]))
    assert np.allclose(again[1], get_text_encoder("random").encode(["noise"])[0])
    assert not np.allclose(get_text_encoder("random:1").encode(["noise"]), again[1:])
    assert (anchors @ anchors.T - torch.eye(4)).abs().max() < 0.5


def test_projection_preserves_cosines():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 256))
    projected = x @ projection_matrix(256, 512)
    assert np.allclose(projected @ projected.T, x @ x.T)
    assert np.array_equal(projection_matrix(256, 512), projection_matrix(256, 512))


def test_wordllama_is_pretrained_offline_and_composites_sit_between_their_parts():
    encoder = get_text_encoder("wordllama")
    assert encoder.info["pretrained"] is True and encoder.info["dim"] == 256
    anchors = assert_cached(encoder)
    similarity = anchors @ anchors.T
    assert similarity[3, 1] > similarity[3, 0] and similarity[3, 2] > similarity[3, 0]


@pytest.mark.slow
def test_open_clip_random_tower_says_so_and_caches():
    with pytest.warns(UserWarning, match="RANDOMLY"):
        encoder = get_text_encoder("open_clip:ViT-S-32-alt")  # a small config; ViT-B-32 works the same
    assert encoder.info["pretrained"] is False and encoder.info["dim"] == 256
    assert encoder.model.visual is None
    assert_cached(encoder)
    with pytest.raises(ValueError, match="tags are"):
        get_text_encoder("open_clip:ViT-S-32-alt:no_such_tag")
    with pytest.raises(FileNotFoundError):
        get_text_encoder("open_clip:ViT-S-32-alt:/nonexistent/weights.pt")


@pytest.mark.slow
def test_open_clip_tags_fall_back_offline_and_local_files_load(tmp_path):
    import open_clip

    weights, note, _ = _resolve_open_clip_weights("ViT-B-32", "laion2b_s34b_b79k")  # nothing is downloaded
    assert weights is None and "not in the local cache" in note
    torch.manual_seed(1)
    path = tmp_path / "text_tower.pt"
    torch.save(open_clip.create_model("ViT-S-32-alt", pretrained=None).state_dict(), path)
    encoder = get_text_encoder(f"open_clip:ViT-S-32-alt:{path}")
    assert encoder.info["pretrained"] is True and str(path) in encoder.info["weights"]
    with pytest.warns(UserWarning, match="RANDOMLY"):
        random_tower = get_text_encoder("open_clip:ViT-S-32-alt").encode(["rain"])
    assert not np.allclose(encoder.encode(["rain"]), random_tower)


def test_unknown_encoder_names_the_choices():
    with pytest.raises(ValueError, match="wordllama"):
        get_text_encoder("clip")


def test_image_prompt_encoder_gives_unit_prompts_on_odd_sizes():
    torch.manual_seed(0)
    encoder = ImagePromptEncoder(width=8)
    visual = encoder(torch.rand(3, 3, 37, 53))
    assert visual.shape == (3, 512)
    assert torch.allclose(visual.norm(dim=1), torch.ones(3), atol=1e-5)
    loss = contrastive_loss(visual, torch.eye(4, 512), torch.tensor([0, 1, 2]))
    loss.backward()
    assert encoder.stem[0].weight.grad.abs().sum() > 0


def test_contrastive_loss_and_recognition():
    anchors = torch.nn.functional.normalize(torch.randn(4, 512, generator=torch.Generator().manual_seed(0)), dim=1)
    targets = torch.tensor([2, 0, 3])
    matched = contrastive_loss(anchors[targets], anchors, targets)
    mismatched = contrastive_loss(anchors[targets.flip(0)], anchors, targets)
    assert matched < 0.01 < mismatched
    manual = torch.nn.functional.cross_entropy(anchors[targets] @ anchors.T / 0.05, targets)
    assert torch.allclose(matched, manual)
    predicted, confidence = recognise(anchors[targets] + 0.01, anchors)
    assert torch.equal(predicted, targets) and ((confidence > 0.9) & (confidence <= 1)).all()
    assert recognition_accuracy(anchors[targets], anchors, targets) == 1.0
    assert recognition_accuracy(anchors[targets], anchors, targets.flip(0)) == pytest.approx(1 / 3)
