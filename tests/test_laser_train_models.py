"""Perception models: scores are similarities of exposed embeddings, the CLIP model (a tiny random CLIPConfig
saved and loaded through ``model.path``), union crops, freezing, open vocabulary, device and precision config."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from stlspec.ir import Vocabulary  # noqa: E402

from laser_train.config import ConfigError, ModelConfig, load_config  # noqa: E402
from laser_train.model import build_model  # noqa: E402

VOC = Vocabulary(("box", "dog", "ball"), (("open", "box"), ("moving", None)),
                 (("left_of", None, None), ("near", None, None), ("chases", "dog", None)))


def _batch(B=2, T=3, N=3, S=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(B, T, N, 2, generator=g) * 0.5
    present = torch.ones(B, T, N, dtype=torch.bool)
    present[0, 1, 2] = False
    return {"crops": torch.rand(B, T, N, 3, S, S, generator=g) - 0.5,
            "boxes": torch.cat([lo, lo + 0.1 + 0.3 * torch.rand(B, T, N, 2, generator=g)], -1),
            "present": present, "frame_mask": torch.ones(B, T, dtype=torch.bool),
            "track_mask": torch.ones(B, N, dtype=torch.bool)}


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from laser_train.clip_model import save_random_clip

    return save_random_clip(tmp_path_factory.mktemp("clip"), "tiny")


def _clip_cfg(path, **kw) -> ModelConfig:
    return ModelConfig(name="clip", path=str(path), **kw)


def _check_interface(model, batch):
    scores = model(batch)
    e = scores.embeddings
    B, T, N = batch["present"].shape
    D = e.objects.shape[-1]
    assert e.objects.shape == (B, N, D) and e.tracks.shape == (B, T, N, D) and e.pairs.shape == (B, T, N, N, D)
    assert e.categories.shape == (3, D) and e.unary.shape == (2, D) and e.binary.shape == (3, D)
    assert e.words == (("box", "dog", "ball"), ("open", "moving"), ("left_of", "near", "chases"))
    names, unary, binary = e.scores()
    torch.testing.assert_close(names.float(), scores.names)
    torch.testing.assert_close(unary.float(), scores.unary)
    torch.testing.assert_close(binary.float(), scores.binary)
    # the relation the docstring states, written out for one entry
    manual = e.similarity(e.pairs[0, 0, 0, 1], e.binary) + e.bias_binary
    torch.testing.assert_close(manual.float(), scores.binary[0, 0, 0, 1])
    # type gates stay: open() only of boxes, chases() only with a dog first
    u, _, b = scores.probs()
    assert float(u[..., 0].detach().max()) <= 1 and scores.unary_gate.shape == (B, N, 2)
    return scores


def test_fact_prior_sets_the_initial_fact_probabilities():
    from laser_train.model import SmallPerception

    model = SmallPerception(VOC, fact_prior=0.05)
    with torch.no_grad():
        model.unary_head[-1].weight.zero_()
        model.binary_head[-1].weight.zero_()
        _, unary, binary = model(_batch()).probs()
    assert torch.allclose(unary[..., 1], torch.full_like(unary[..., 1], 0.05), atol=1e-6)
    assert torch.allclose(binary[..., 0], torch.full_like(binary[..., 0], 0.05), atol=1e-6)


def test_small_model_scores_are_similarities_of_its_embeddings():
    torch.manual_seed(0)
    model = build_model(ModelConfig(), VOC, 16)
    scores = _check_interface(model, _batch())
    assert scores.embeddings.scale is None  # dot product with learned word embeddings


@pytest.mark.parametrize("layout, pair_crop", [("separate", "two_crops"), ("shared", "union")])
def test_clip_model_from_path_scores_by_text_similarity(clip_dir, layout, pair_crop):
    model = build_model(_clip_cfg(clip_dir, layout=layout, pair_crop=pair_crop), VOC, 16)
    assert len(model.towers) == (3 if layout == "separate" else 1)
    scores = _check_interface(model, _batch())
    assert scores.embeddings.scale is not None
    loss = sum(p.sum() for p in scores.probs())
    loss.backward()
    for tower in model.towers:  # every tower learns, vision and text side
        assert tower.vision_model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
        assert tower.text_model.embeddings.token_embedding.weight.grad.abs().sum() > 0


def test_clip_is_open_vocabulary(clip_dir):
    """A vocabulary with another predicate builds the same parameters: a new word is a new prompt, not a head."""
    bigger = Vocabulary(VOC.categories + ("cup",), VOC.unary + (("red", None),), VOC.binary + (("on", None, None),))
    torch.manual_seed(0)
    a = build_model(_clip_cfg(clip_dir, layout="shared"), VOC, 16).state_dict()
    torch.manual_seed(0)
    b = build_model(_clip_cfg(clip_dir, layout="shared"), bigger, 16).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    scores = build_model(_clip_cfg(clip_dir, layout="shared"), bigger, 16)(_batch())
    assert scores.unary.shape[-1] == 3 and scores.binary.shape[-1] == 4 and scores.names.shape[-1] == 4


def test_clip_prompts_are_configurable(clip_dir):
    cfg = _clip_cfg(clip_dir, layout="shared", prompt_unary="{word}")
    m1 = build_model(cfg, VOC, 16)
    m2 = build_model(_clip_cfg(clip_dir, layout="shared"), VOC, 16)
    assert m1.unary_ids.shape[1] < m2.unary_ids.shape[1]  # "open" is shorter than "a photo of something open"
    with pytest.raises(ValueError, match="must contain"):
        build_model(_clip_cfg(clip_dir, prompt_binary="a photo"), VOC, 16)


@pytest.mark.parametrize("freeze, vision, text", [("none", True, True), ("vision", False, True),
                                                  ("text", True, False), ("all_but_projections", False, False)])
def test_clip_freezing(clip_dir, freeze, vision, text):
    model = build_model(_clip_cfg(clip_dir, layout="shared", freeze=freeze), VOC, 16)
    tower = model.towers[0]
    assert all(p.requires_grad == vision for p in tower.vision_model.parameters())
    assert all(p.requires_grad == text for p in tower.text_model.parameters())
    assert all(p.requires_grad for p in tower.visual_projection.parameters())
    assert all(p.requires_grad for p in tower.text_projection.parameters())
    assert model.log_scale.requires_grad and model.pair_residual[0].weight.requires_grad


def test_clip_missing_path_says_how_to_get_weights(tmp_path):
    pytest.importorskip("transformers")
    from laser_train.clip_model import ClipLoadError

    with pytest.raises(ClipLoadError, match="needs --model.path"):
        build_model(ModelConfig(name="clip"), VOC, 16)
    with pytest.raises(ClipLoadError, match="(?s)no such directory.*save_pretrained"):
        build_model(_clip_cfg(tmp_path / "nope"), VOC, 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipLoadError, match="cannot load a CLIP model"):
        build_model(_clip_cfg(tmp_path / "empty"), VOC, 16)


def test_union_crops_place_each_crop_in_the_union_region():
    from laser_train.clip_model import union_crops

    S = 8
    crops = torch.stack([torch.full((3, S, S), 0.25), torch.full((3, S, S), -0.25)])
    # boxes chosen so that the enlarged regions (context 0 here) are the left and right halves of [0, 1]
    boxes = torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]])
    out = union_crops(crops, boxes, torch.tensor([0]), torch.tensor([1]), size=S, context=0.0)
    assert out.shape == (1, 3, S, S)
    torch.testing.assert_close(out[0, :, :, : S // 2], torch.full((3, S, S // 2), 0.25))
    torch.testing.assert_close(out[0, :, :, S // 2:], torch.full((3, S, S // 2), -0.25))
    # a region covered by neither crop is grey (0); the first track is drawn over the second
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]])
    out = union_crops(crops, boxes, torch.tensor([0]), torch.tensor([1]), size=S, context=0.0)
    assert float(out[0, 0, -1, 0]) == 0.0  # bottom left: in neither box
    assert float(out[0, 0, 2, 2]) == pytest.approx(0.25)  # inside both: the first


@pytest.mark.parametrize("bad, words", [
    ("--model.name=resnet", "unknown value 'resnet' \\(choose from small, clip\\)"),
    ("--train.device=gpu", "expected one of auto, cpu, cuda, cuda:N"),
    ("--train.device=cuda:x", "cuda:N"),
    ("--train.precision=fp8", "choose from fp32, bf16, fp16"),
    ("--model.layout=two", "separate, shared"),
    ("--model.fact_prior=0", "strictly between 0 and 1"),
    ("--model.fact_prior=1", "strictly between 0 and 1"),
    ("--loss.contrastive=hinge", "choose from ratio, absolute"),
])
def test_invalid_choices_fail_at_config_time(bad, words):
    with pytest.raises(ConfigError, match=words):
        load_config(None, [bad])


def test_device_resolution_and_precision_on_cpu():
    from laser_train.device import DeviceError, resolve_device, runtime

    assert load_config(None, ["--train.device=cuda:1"]).train.device == "cuda:1"
    cfg = load_config(None, ["--train.device=cpu", "--train.precision=bf16", "--train.spec_dtype=float32"]).train
    rt = runtime(cfg)
    assert rt.device == torch.device("cpu") and rt.spec_dtype == torch.float32
    with rt.autocast():
        y = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    assert y.dtype == torch.bfloat16
    assert not rt.grad_scaler().is_enabled()
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(DeviceError, match="CUDA is not available.*--train.device=cpu"):
            resolve_device("cuda")


def test_small_model_under_bf16_autocast_gives_float32_scores():
    from laser_train.device import Runtime

    torch.manual_seed(0)
    model = build_model(ModelConfig(), VOC, 16)
    with Runtime(torch.device("cpu"), "bf16").autocast():
        scores = model(_batch())
    assert scores.names.dtype == scores.unary.dtype == scores.binary.dtype == torch.float32
    assert scores.unary_gate.dtype == torch.float32
    assert all(torch.isfinite(p).all() for p in scores.probs())


def test_byte_alphabet_is_byte_level_bpe_table():
    from laser_train.clip_model import _byte_alphabet

    table = _byte_alphabet()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert table[ord("a")] == "a" and table[ord("!")] == "!" and table[ord(" ")] == "Ġ"  # GPT-2's space
    assert table[0] == chr(256)
