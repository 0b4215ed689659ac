"""The CLIP perception model: crops and pair crops scored against text embeddings of the vocabulary.

``--model.name=clip --model.path=DIR`` builds :class:`ClipPerception` from a pretrained CLIP
(``transformers.CLIPModel.from_pretrained(DIR)``: a local directory written by ``save_pretrained``,
or a hub id such as ``openai/clip-vit-base-patch32``, which transformers downloads into its cache at
that moment — nothing is downloaded at import time). Every score is a similarity (see
:mod:`laser_train.model`):

* **names**: the image embedding of each track crop, averaged over the frames where the track is
  visible, against the text embeddings of ``model.prompt_names`` ("a photo of a {word}") for every
  category;
* **unary**: the image embedding of the crop at each frame plus a learned geometry/motion residual
  (position, size, velocity: what a crop cannot show), against ``model.prompt_unary``;
* **binary**: a pair embedding for each ordered pair ``(n, m)`` at each frame, against
  ``model.prompt_binary`` ("a photo of something {word} something"). ``model.pair_crop``:
  ``two_crops`` (default) averages the two crops' embeddings and adds a learned residual of both
  embeddings and the pair's relative geometry; ``union`` renders the union region of the two boxes
  from the two crops (the crop of ``n`` drawn over that of ``m``, grey elsewhere), embeds that image
  and adds the geometry residual. ``union`` runs the vision tower on ``B·T·N·(N-1)`` images
  instead of ``B·T·N``: closer to LASER, far more memory.

The vocabulary is open: a predicate is a prompt, so a dataset with a new predicate needs no new
head (the learned parts — residual MLPs, one similarity scale, one bias per kind — are shared by all
words). Vocabulary words are written with underscores replaced by spaces (``left_of`` → "left of").

``model.layout``: ``separate`` (LASER's: three CLIP models, one each for names, unary and binary
predicates, initialised from the same weights and trained apart) or ``shared`` (one CLIP model).
``model.freeze``: ``none``, ``vision`` (the image encoders), ``text`` (the text encoders) or
``all_but_projections`` (both encoders; the projections into the joint space, the scale and our
residuals train).

Crops come from the batch (``data.crop_size``; resized here to the vision tower's input size with
bilinear interpolation, then normalised with CLIP's mean and std, or those of the checkpoint's
``preprocessor_config.json``). Only crops of present tracks go through the vision tower.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from laser_train.model import (Embeddings, SceneGraphScores, TypeGates, geometry_features, pair_geometry, prior_logit,
                               vocabulary_words)

__all__ = ["ClipPerception", "load_clip", "union_crops", "save_random_clip", "random_clip", "ClipLoadError",
           "CLIP_MEAN", "CLIP_STD", "RANDOM_SHAPES"]

#: CLIP's image normalisation (used when the checkpoint has no preprocessor_config.json).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: How much context ``laser_train.data.dataset.extract_crops`` adds around each box (fraction per side).
CROP_CONTEXT = 0.15
_KINDS = ("names", "unary", "binary")
_GEO = 10  # width of geometry_features


class ClipLoadError(RuntimeError):
    """``model.path`` does not lead to a CLIP model and tokenizer."""


_HOW_TO_GET = (
    "to get weights, on a machine with internet access run\n"
    "  python -c \"from transformers import CLIPModel, CLIPTokenizer; n='openai/clip-vit-base-patch32'; "
    "CLIPModel.from_pretrained(n).save_pretrained('clip-b32'); CLIPTokenizer.from_pretrained(n)"
    ".save_pretrained('clip-b32')\"\n"
    "and pass --model.path=clip-b32 (a directory holding config.json, the weights and the tokenizer files)")


def load_clip(path: str) -> tuple[Any, Any, dict]:
    """``(CLIPModel, tokenizer, preprocessor settings)`` from ``path`` (raises :class:`ClipLoadError`)."""
    if not path:
        raise ClipLoadError("model.name=clip needs --model.path=DIR (or a hub id); " + _HOW_TO_GET)
    local = Path(path).expanduser()
    looks_local = local.is_absolute() or path.startswith((".", "~")) or local.exists()
    if looks_local and not local.is_dir():
        raise ClipLoadError(f"model.path={path}: no such directory; " + _HOW_TO_GET)
    try:
        from transformers import AutoTokenizer, CLIPModel
    except ImportError:
        raise ClipLoadError("model.name=clip needs the transformers package: "
                            "pip install 'stlspec[video]' (or pip install transformers)") from None
    source = str(local) if looks_local else path
    try:
        model = CLIPModel.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ClipLoadError(f"model.path={path}: cannot load a CLIP model and tokenizer ({exc}); "
                            + _HOW_TO_GET) from None
    pre: dict = {}
    if looks_local and (local / "preprocessor_config.json").exists():
        pre = json.loads((local / "preprocessor_config.json").read_text(encoding="utf-8"))
    return model, tokenizer, pre


def union_crops(crops: torch.Tensor, boxes: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
                size: int, context: float = CROP_CONTEXT) -> torch.Tensor:
    """The union region of two tracks' boxes, rendered from their crops: ``[K, 3, size, size]``.

    ``crops`` ``[M, 3, S, S]`` and ``boxes`` ``[M, 4]`` (fractions of the frame) of M track-frames;
    ``first`` / ``second`` ``[K]`` index them. Each crop covers its box enlarged by ``context`` per
    side (as extracted by the loader); the output covers the union of both enlarged boxes, with
    ``first`` drawn over ``second`` and 0 (mid-grey in the [-0.5, 0.5] range) where neither is.
    """
    def region(b: torch.Tensor) -> torch.Tensor:
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return torch.stack([b[:, 0] - context * w, b[:, 1] - context * h, b[:, 2] + context * w,
                            b[:, 3] + context * h], -1)

    ra, rb = region(boxes[first]), region(boxes[second])
    u = torch.cat([torch.minimum(ra[:, :2], rb[:, :2]), torch.maximum(ra[:, 2:], rb[:, 2:])], -1)
    steps = (torch.arange(size, device=crops.device, dtype=crops.dtype) + 0.5) / size
    xs = u[:, 0:1] + (u[:, 2:3] - u[:, 0:1]) * steps  # [K, size] frame coordinates of output pixels
    ys = u[:, 1:2] + (u[:, 3:4] - u[:, 1:2]) * steps
    out = torch.zeros(len(first), crops.shape[1], size, size, device=crops.device, dtype=crops.dtype)
    for idx, r in ((second, rb), (first, ra)):  # second first: the first track is drawn on top
        gx = 2 * (xs - r[:, 0:1]) / (r[:, 2:3] - r[:, 0:1]).clamp_min(1e-6) - 1  # [-1, 1] inside the crop
        gy = 2 * (ys - r[:, 1:2]) / (r[:, 3:4] - r[:, 1:2]).clamp_min(1e-6) - 1
        grid = torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)], -1)
        inside = ((grid.abs() <= 1).all(-1))[:, None].to(crops.dtype)  # [K, 1, size, size]
        sampled = F.grid_sample(crops[idx], grid, mode="bilinear", align_corners=False)
        out = inside * sampled + (1 - inside) * out
    return out


def _residual(i: int, h: int, o: int) -> nn.Sequential:
    """A small MLP whose last layer starts at zero, so that the model starts as plain CLIP."""
    mlp = nn.Sequential(nn.Linear(i, h), nn.GELU(), nn.Linear(h, o))
    nn.init.zeros_(mlp[-1].weight)
    nn.init.zeros_(mlp[-1].bias)
    return mlp


class ClipPerception(nn.Module):
    """CLIP towers + geometry residuals; scores are ``scale · cos(image-side, text-side) + bias``."""

    def __init__(self, clip_models: list[nn.Module], tokenizer: Any, vocabulary, *,
                 prompts: dict[str, str] | None = None, pair_crop: str = "two_crops", freeze: str = "none",
                 mean: tuple[float, ...] = CLIP_MEAN, std: tuple[float, ...] = CLIP_STD,
                 hidden_dim: int = 256, fact_prior: float = 0.1):
        super().__init__()
        if len(clip_models) not in (1, 3):
            raise ValueError("ClipPerception needs one CLIP model (shared layout) or three (separate)")
        if pair_crop not in ("two_crops", "union"):
            raise ValueError(f"unknown pair_crop {pair_crop!r} (two_crops, union)")
        self.towers = nn.ModuleList(clip_models)
        for tower in self.towers:  # our own similarity scale replaces CLIP's; an unused parameter would stall DDP
            tower.logit_scale.requires_grad_(False)
        self.tower_of = {k: (i if len(clip_models) == 3 else 0) for i, k in enumerate(_KINDS)}
        self.pair_crop = pair_crop
        self.words = vocabulary_words(vocabulary)
        self.num_categories, self.num_unary, self.num_binary = (len(w) for w in self.words)
        self.gates = TypeGates(vocabulary)
        cfg = clip_models[0].config
        self.image_size = cfg.vision_config.image_size
        D = cfg.projection_dim
        self.embed_dim = D
        prompts = {**{"names": "a photo of a {word}", "unary": "a photo of something {word}",
                      "binary": "a photo of something {word} something"}, **(prompts or {})}
        for kind, words in zip(_KINDS, self.words):
            text = [prompts[kind].replace("{word}", w.replace("_", " ")) for w in words]
            tok = tokenizer(text, padding=True, return_tensors="pt")
            self.register_buffer(f"{kind}_ids", tok["input_ids"], persistent=False)
            self.register_buffer(f"{kind}_attn", tok["attention_mask"], persistent=False)
        self.prompts = prompts
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.track_residual = _residual(D + _GEO, hidden_dim, D)
        self.pair_residual = _residual(2 * D + 2 * _GEO + 7, hidden_dim, D)
        self.log_scale = nn.Parameter(torch.tensor(10.0).log())
        fact = prior_logit(fact_prior)  # names, unary, binary: facts start unlikely (ModelConfig.fact_prior)
        self.bias = nn.Parameter(torch.tensor([0.0, fact, fact]))
        self.freeze(freeze)

    # ------------------------------------------------------------------------------------------ building

    @classmethod
    def from_config(cls, cfg: Any, vocabulary) -> "ClipPerception":
        """From a :class:`laser_train.config.ModelConfig` (``path``, ``layout``, ``pair_crop``, ``freeze``, prompts)."""
        import copy

        model, tokenizer, pre = load_clip(cfg.path)
        models = [model] if cfg.layout == "shared" else [model, copy.deepcopy(model), copy.deepcopy(model)]
        prompts = {"names": cfg.prompt_names, "unary": cfg.prompt_unary, "binary": cfg.prompt_binary}
        for kind, p in prompts.items():
            if "{word}" not in p:
                raise ValueError(f"model.prompt_{kind}={p!r} must contain {{word}} (where the word goes)")
        return cls(models, tokenizer, vocabulary, prompts=prompts, pair_crop=cfg.pair_crop, freeze=cfg.freeze,
                   fact_prior=cfg.fact_prior, mean=tuple(pre.get("image_mean", CLIP_MEAN)), std=tuple(pre.get("image_std", CLIP_STD)))

    def freeze(self, what: str) -> None:
        """Stop training the ``vision`` / ``text`` encoders, both (``all_but_projections``), or nothing."""
        choices = {"none": (), "vision": ("vision_model",), "text": ("text_model",),
                   "all_but_projections": ("vision_model", "text_model")}
        if what not in choices:
            raise ValueError(f"unknown freeze {what!r} (choose from {', '.join(choices)})")
        for tower in self.towers:
            for name in choices[what]:
                getattr(tower, name).requires_grad_(False)

    # ------------------------------------------------------------------------------------------ forward

    def _pixels(self, crops: torch.Tensor) -> torch.Tensor:
        """``[M, 3, S, S]`` crops in [-0.5, 0.5] → CLIP's normalised input at its image size."""
        x = crops + 0.5
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def _image(self, kind: str, crops: torch.Tensor) -> torch.Tensor:
        tower = self.towers[self.tower_of[kind]]
        return _features(tower.get_image_features(pixel_values=self._pixels(crops)))

    def _text(self, kind: str) -> torch.Tensor:
        tower = self.towers[self.tower_of[kind]]
        return _features(tower.get_text_features(input_ids=getattr(self, f"{kind}_ids"),
                                                 attention_mask=getattr(self, f"{kind}_attn")))

    def forward(self, batch: dict[str, torch.Tensor]) -> SceneGraphScores:
        crops, boxes, present = batch["crops"], batch["boxes"], batch["present"]
        B, T, N = present.shape
        flat = present.reshape(-1)
        where = flat.nonzero().flatten()
        visible = crops.reshape(B * T * N, *crops.shape[3:])[where]

        def per_track(kind: str) -> torch.Tensor:  # [B, T, N, D], zeros where absent
            feats = self._image(kind, visible)
            out = feats.new_zeros(B * T * N, feats.shape[-1])
            return out.index_copy(0, where, feats).reshape(B, T, N, -1)

        pres = present[..., None]
        geo = geometry_features(boxes, present)
        names_img = per_track("names")
        w = pres.to(names_img.dtype)
        objects = (names_img * w).sum(1) / w.sum(1).clamp_min(1.0)
        unary_img = names_img if self.tower_of["unary"] == self.tower_of["names"] else per_track("unary")
        tracks = unary_img + self.track_residual(torch.cat([unary_img, geo.to(unary_img.dtype)], -1))
        if self.tower_of["binary"] == self.tower_of["unary"]:
            pair_img = unary_img
        else:
            pair_img = per_track("binary")
        g = geo.to(pair_img.dtype)
        pair_in = torch.cat([
            pair_img[:, :, :, None].expand(B, T, N, N, -1), pair_img[:, :, None].expand(B, T, N, N, -1),
            g[:, :, :, None].expand(B, T, N, N, -1), g[:, :, None].expand(B, T, N, N, -1), pair_geometry(g),
        ], -1)
        if self.pair_crop == "union":
            base = self._union(crops, boxes, present)
        else:
            base = (pair_img[:, :, :, None] + pair_img[:, :, None]) / 2
        pairs = base + self.pair_residual(pair_in)
        scale = self.log_scale.exp()
        emb = Embeddings(objects=objects, tracks=tracks, pairs=pairs, categories=self._text("names"),
                         unary=self._text("unary"), binary=self._text("binary"), bias_names=self.bias[0],
                         bias_unary=self.bias[1], bias_binary=self.bias[2], scale=scale, words=self.words)
        return SceneGraphScores.from_embeddings(emb, self.gates)

    def _union(self, crops: torch.Tensor, boxes: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """``[B, T, N, N, D]`` embeddings of the union crops of present ordered pairs (zeros elsewhere)."""
        B, T, N = present.shape
        pair = present[:, :, :, None] & present[:, :, None, :] & ~torch.eye(N, dtype=torch.bool,
                                                                              device=present.device)
        b, t, n, m = pair.nonzero(as_tuple=True)
        flat_crops = crops.reshape(B * T * N, *crops.shape[3:])
        flat_boxes = boxes.reshape(B * T * N, 4).to(flat_crops.dtype)
        base = (b * T + t) * N
        images = union_crops(flat_crops, flat_boxes, base + n, base + m, crops.shape[-1])
        feats = self._image("binary", images)
        out = feats.new_zeros(B, T, N, N, feats.shape[-1])
        out[b, t, n, m] = feats
        return out


def _features(out: Any) -> torch.Tensor:
    """transformers 4.x returns the projected features as a tensor; newer versions may wrap them."""
    if isinstance(out, torch.Tensor):
        return out
    for name in ("pooler_output", "image_embeds", "text_embeds"):
        value = getattr(out, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f"unexpected CLIP feature output {type(out).__name__}")


#: Shapes for :func:`save_random_clip`: ``tiny`` (tests) and ``b32`` (ViT-B/32's sizes, for benchmarks).
RANDOM_SHAPES = {
    "tiny": dict(text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           max_position_embeddings=64),
                 vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             image_size=32, patch_size=8),
                 projection_dim=24),
    "b32": dict(text=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                          max_position_embeddings=77),
                vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            image_size=224, patch_size=32),
                projection_dim=512),
}


def _byte_alphabet() -> dict[int, str]:
    """Byte-level BPE's byte → character table (CLIP's and GPT-2's): printable Latin-1 bytes stand for
    themselves, the other bytes for the characters from U+0100 on, in byte order. Written out here because
    transformers moved its copy between major versions."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def random_clip(shape: str = "tiny", seed: int = 0, tokenizer_dir: str | Path | None = None) -> tuple[Any, Any]:
    """A randomly initialised ``(CLIPModel, CLIPTokenizer)`` of ``shape`` (:data:`RANDOM_SHAPES`), nothing downloaded.

    The tokenizer is a byte-level BPE with no merges (one token per character), so any prompt
    tokenizes; its files are written to ``tokenizer_dir`` (default: a temporary directory).
    """
    import tempfile

    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    if shape not in RANDOM_SHAPES:
        raise ValueError(f"unknown CLIP shape {shape!r} (choose from {', '.join(RANDOM_SHAPES)})")
    folder = Path(tokenizer_dir or tempfile.mkdtemp(prefix="clip-tokenizer-"))
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_byte_alphabet().values())
    vocab = {tok: i for i, tok in enumerate(chars + [c + "</w>" for c in chars])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # the highest id: CLIP pools the text at the end-of-text token
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    dims = RANDOM_SHAPES[shape]
    config = CLIPConfig(text_config={**dims["text"], "vocab_size": len(vocab)}, vision_config=dims["vision"],
                        projection_dim=dims["projection_dim"])
    torch.manual_seed(seed)
    return CLIPModel(config), tokenizer


def save_random_clip(path: str | Path, shape: str = "tiny", seed: int = 0) -> Path:
    """Write :func:`random_clip` to ``path``: loadable with ``--model.path=PATH`` like a real checkpoint."""
    path = Path(path)
    model, tokenizer = random_clip(shape, seed, tokenizer_dir=path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
