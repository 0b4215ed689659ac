"""Vocabulary normalization: the model's names → the names the vocabulary declares.

Models write ``"is holding"``, ``Holding``, ``sitting_on``, ``cups`` or
``grasping`` where the vocabulary says ``holding``, ``"sitting on"``, ``cup``.
Before an answer is checked, every predicate and category name in it is
rewritten, at the AST level:

* **Open vocabulary** (no vocabulary given): names are only *normalized* —
  lower-cased, ``_``/``-`` read as spaces, whitespace collapsed, a leading
  auxiliary ("is", "are", "is being", …) or article dropped.
* **Closed vocabulary**: a name is mapped onto a declared name of the same
  arity by, in order, (1) exact spelling, (2) equal normalized form, (3) the
  synonym table (user entries first, then :data:`SYNONYMS`), (4) the same
  after dropping a plural/verb ``s``. A name that matches nothing is left as
  is, so that the checker reports it (with "did you mean") and the repair loop
  sends that back to the model; nothing is ever silently dropped.

Every rename is recorded and ends up in the record (``renamed``), so a
reviewer can see what was changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stlspec import ast, ir

__all__ = ["normalize_name", "SYNONYMS", "VocabularyMapper", "Mapping"]

_AUX = re.compile(r"^(?:is being|are being|is|are|was|were|be|being|gets|get|getting|a|an|the)\s+")

#: canonical name → names that mean the same (normalized forms). Used only when the
#: canonical name is declared in the vocabulary; a synonym listed under several
#: canonical names tries them in the order of this table.
SYNONYMS: dict[str, tuple[str, ...]] = {
    # binary predicates
    "holding": ("hold", "holds", "grasping", "grasps", "gripping", "grabbing", "clutching", "holding onto",
                "has in hand", "carrying"),
    "touching": ("touch", "touches", "in contact with", "contacting"),
    "near": ("next to", "close to", "beside", "by", "nearby", "adjacent to", "near to", "besides"),
    "far": ("far from", "away from", "distant from", "far away from"),
    "in front of": ("ahead of", "before"),
    "behind": ("in back of", "at the back of"),
    "above": ("over",),
    "below": ("under", "beneath", "underneath"),
    "left of": ("to the left of", "on the left of", "at the left of"),
    "right of": ("to the right of", "on the right of", "at the right of"),
    "on top of": ("on", "upon", "atop", "on the top of", "lying on", "placed on", "resting on", "standing on"),
    "inside": ("in", "within", "inside of", "into", "contained in"),
    "looking at": ("watching", "looks at", "look at", "staring at", "viewing", "observing", "gazing at"),
    "sitting on": ("seated on", "sits on", "sit on"),
    "kicking": ("kicks", "kick"),
    "throwing": ("throws", "throw", "tossing", "tosses"),
    "pointing at": ("points at", "pointing to", "points to"),
    "walking towards": ("walking toward", "walks towards", "walks toward", "approaching", "walking to",
                        "heading towards", "heading to", "moving towards"),
    # unary predicates
    "walking": ("walks", "walk", "strolling"),
    "running": ("runs", "run", "jogging", "sprinting"),
    "jumping": ("jumps", "jump", "leaping", "hopping"),
    "falling": ("falls", "fall", "falling down", "tipping over", "falling over"),
    "standing up": ("stands up", "stand up", "getting up", "gets up", "rising"),
    "sitting down": ("sits down", "sit down", "taking a seat"),
    "moving": ("moves", "move", "in motion"),
    "open": ("opened",),
    "closed": ("shut", "close"),
    "visible": ("present", "in view", "appearing"),
    # categories
    # more specific categories first: "boy" is a child if the vocabulary has one, else a person
    "adult": ("man", "woman", "grown-up", "grown up", "guy", "lady"),
    "child": ("kid", "boy", "girl", "baby", "toddler", "children"),
    "person": ("man", "woman", "boy", "girl", "people", "human", "guy", "lady", "individual", "someone",
               "somebody", "kid", "child", "adult", "player"),
    "hand": ("hands", "finger", "fingers", "palm"),
    "cup": ("mug", "glass", "teacup"),
    "bottle": ("flask", "water bottle"),
    "box": ("carton", "package", "container", "crate"),
    "paper": ("sheet of paper", "sheet", "document", "page"),
    "ball": ("football", "soccer ball", "basketball", "tennis ball"),
    "book": ("notebook",),
    "phone": ("cellphone", "cell phone", "smartphone", "mobile phone", "mobile", "telephone"),
    "table": ("desk", "counter"),
    "dining table": ("dinner table", "kitchen table"),
    "chair": ("seat", "stool"),
    "door": ("doorway",),
    "shelf": ("shelves", "bookshelf", "rack"),
}


def normalize_name(name: str) -> str:
    """Lower case, ``_``/``-`` as spaces, single spaces, no leading auxiliary or article."""
    text = re.sub(r"[\s_\-]+", " ", name.strip().lower()).strip()
    while True:
        stripped = _AUX.sub("", text)
        if stripped == text or not stripped:
            return text
        text = stripped


def _singular(key: str) -> list[str]:
    out = []
    if key.endswith("ies"):
        out.append(key[:-3] + "y")
    if key.endswith("es"):
        out.append(key[:-2])
    if key.endswith("s") and not key.endswith("ss"):
        out.append(key[:-1])
    return out


@dataclass
class Mapping:
    """What a rewrite changed: ``renamed`` (old → new) and the names that matched nothing."""

    renamed: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


class VocabularyMapper:
    """Rewrites predicate and category names of specs onto a vocabulary (or just normalizes them)."""

    def __init__(self, vocabulary: ir.Vocabulary | None = None, synonyms: dict[str, str] | None = None):
        self.vocabulary = vocabulary
        # synonym (normalized) -> canonical candidates, user entries first
        self._syn: dict[str, list[str]] = {}
        for syn, canonical in (synonyms or {}).items():
            self._syn.setdefault(normalize_name(syn), []).append(canonical)
        for canonical, syns in SYNONYMS.items():
            for syn in syns:
                self._syn.setdefault(normalize_name(syn), []).append(canonical)
        if vocabulary is not None:
            self._tables = {
                "category": {normalize_name(c): c for c in vocabulary.categories},
                1: {normalize_name(n): n for n in vocabulary.unary_names},
                2: {normalize_name(n): n for n in vocabulary.binary_names},
            }

    @property
    def closed(self) -> bool:
        return self.vocabulary is not None

    def map_name(self, name: str, kind: "str | int") -> str | None:
        """The vocabulary name for ``name`` (``kind``: ``"category"``, 1 or 2), or ``None``."""
        if not self.closed:
            return normalize_name(name) or name
        table = self._tables.get(kind, {})
        if name in table.values():
            return name
        key = normalize_name(name)
        for k in (key, *_singular(key)):
            if k in table:
                return table[k]
            for canonical in self._syn.get(k, ()):
                if normalize_name(canonical) in table:
                    return table[normalize_name(canonical)]
        return None

    def _rename(self, name: ast.Name, kind, mapping: Mapping) -> ast.Name:
        if kind == "category" and name.text == ast.ANY:
            return name
        new = self.map_name(name.text, kind)
        if new is None:
            if name.text not in mapping.unknown:
                mapping.unknown.append(name.text)
            return name
        if new != name.text:
            mapping.renamed[name.text] = new
            return ast.Name(new, name.span)
        return name

    def map_spec(self, spec: ast.Spec) -> tuple[ast.Spec, Mapping]:
        """``spec`` with every predicate and category name mapped, and what changed."""
        mapping = Mapping()

        def fn(node):
            if isinstance(node, ast.Atom) and len(node.args) in (1, 2):
                new = self._rename(node.pred, len(node.args), mapping)
                return node if new is node.pred else ast.Atom(new, node.args, node.span, node.arg_spans)
            if isinstance(node, ast.Quantified):
                binders = tuple(
                    b if b.category is None else ast.Binder(b.var, self._rename(b.category, "category", mapping), b.span)
                    for b in node.binders)
                return ast.Quantified(node.kind, binders, node.body, node.span)
            return node

        formula = ast.map_formula(spec.formula, fn)
        return ast.Spec(spec.name, formula, spec.caption, spec.span, spec.name_span), mapping
