"""The prompt that teaches the model stlspec, generated from the project's own sources.

Nothing here is a hand-maintained description of the language. The system
prompt is assembled, when a run starts, from package data:

* the grammar, ``stlspec/grammar/stl.lark``, verbatim (the parser's own file);
* the language reference, ``stlspec/llm/language.md``: a generated snapshot of
  the pages under ``docs/language/`` (the docs are not shipped in the wheel, so
  they are copied into the package). ``tests/test_llm_prompt.py`` fails when
  the snapshot differs from the docs; refresh it with
  ``python -m stlspec.llm --refresh``;
* the worked examples, ``stlspec/llm/fewshot.md``, each compiled by the tests;
* the task's vocabulary, printed by the formatter from the vocabulary itself.

:data:`PROMPT_TEMPLATE_VERSION` is bumped by hand when the instructions change
meaning; :func:`prompt_version` adds a hash of the grammar, reference and
examples, so any change to the language automatically gives a new cache key.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stlspec import ir

__all__ = [
    "PROMPT_TEMPLATE_VERSION", "LANGUAGE_PAGES", "Prompt", "build_prompt", "prompt_version",
    "user_message", "repair_message", "no_spec_message", "render_vocabulary", "language_snapshot",
    "fewshot_examples", "vocabulary_hash",
]

PROMPT_TEMPLATE_VERSION = "1"

#: Reference pages copied into the prompt, in reading order (docs/language/<page>.md).
LANGUAGE_PAGES = (
    "overview", "vocabulary", "specs", "atoms", "connectives", "next", "always-eventually",
    "until-release", "windows", "then", "hints", "layout",
)

_SNAPSHOT_HEADER = (
    "<!-- Generated from docs/language/*.md by `python -m stlspec.llm --refresh`; do not edit. -->\n"
)


def _package_text(name: str) -> str:
    return resources.files("stlspec.llm").joinpath(name).read_text(encoding="utf-8")


def _grammar() -> str:
    from stlspec.parser import grammar_text

    return grammar_text()


def language_snapshot(docs_dir: str | Path) -> str:
    """The text of ``language.md`` built from ``docs_dir`` (``docs/language``)."""
    docs_dir = Path(docs_dir)
    parts = [_SNAPSHOT_HEADER]
    for page in LANGUAGE_PAGES:
        path = docs_dir / f"{page}.md"
        if path.exists():
            parts.append(f"<!-- docs/language/{page}.md -->\n" + path.read_text(encoding="utf-8").strip() + "\n")
    return "\n".join(parts)


def _language_reference() -> str:
    try:
        text = _package_text("language.md")
    except FileNotFoundError:  # a checkout before the first refresh: the grammar alone still teaches the syntax
        return ""
    return text.replace(_SNAPSHOT_HEADER, "").strip()


@dataclass(frozen=True, slots=True)
class FewShot:
    caption: str
    answer: str


def fewshot_examples() -> tuple[str, list[FewShot]]:
    """The example vocabulary and the (caption, answer) pairs of ``fewshot.md``."""
    text = _package_text("fewshot.md")
    vocab = re.search(r"```stl vocabulary\n(.*?)```", text, re.S)
    pairs = re.findall(r'Caption: "(.*?)"\s*```stl\n(.*?)```', text, re.S)
    return (vocab.group(1).strip() if vocab else ""), [FewShot(c, a.strip()) for c, a in pairs]


def render_vocabulary(vocabulary: ir.Vocabulary) -> str:
    """Declarations for ``vocabulary`` in canonical layout (what the model must use)."""
    from stlspec.formatter import quote_name

    def cat(c: str | None) -> str:
        return "any" if c is None else quote_name(c)

    lines = []
    if vocabulary.categories:
        lines.append("category " + ", ".join(quote_name(c) for c in vocabulary.categories))
    for name, c in vocabulary.unary:
        lines.append(f"unary {quote_name(name)}({cat(c)})")
    for name, a, b in vocabulary.binary:
        lines.append(f"binary {quote_name(name)}({cat(a)}, {cat(b)})")
    return "\n".join(lines)


def vocabulary_hash(vocabulary: ir.Vocabulary | None, synonyms: dict[str, str] | None = None) -> str:
    """A short hash of the vocabulary (and user synonyms); part of every record's cache key."""
    text = "open" if vocabulary is None else render_vocabulary(vocabulary)
    if synonyms:
        text += "\n" + "\n".join(f"{k}={v}" for k, v in sorted(synonyms.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


_INSTRUCTIONS = """\
You turn captions of videos into specifications in stlspec, a small spatio-temporal logic language. A
specification names the entities a video shows, the properties and relations that hold of them frame by frame,
and the temporal order in which things happen. A checker parses and type-checks your answer; if it finds
problems, you will be shown its messages and asked for a corrected answer.

How to write the spec for a caption:
1. Bind one variable per entity the caption mentions, with its category, in one `exists` block:
   `exists m: person, c: cup.` Variables bound in one block denote different entities.
2. Write the events in the order in which they happen, joined by `then`. Facts that hold at the same moment
   belong to one event, joined with `and`. A caption with a single event becomes `eventually (...) @hint`.
3. Give every event a when-hint: `@early`, `@middle`, `@late`, or an interval of fractions of the video such as
   `@[0.0, 0.25]`. Follow the caption's cues ("at first", "halfway", "finally"); without cues, spread the
   events over the video in their order.
4. Say what the caption says and no more. Use `not` only where the caption says that something does not
   happen or stops; use `always`, `until` and windows only where the caption asks for them.
{vocabulary_rule}
6. Answer with exactly one ```stl code block holding exactly one spec, written
   `spec NAME "CAPTION" {{ ... }}` with the name given in the task and the caption as its string. Write no
   declarations and no `include` in your answer.
"""

_CLOSED_RULE = """\
5. Use only the categories and predicates of the vocabulary below, spelled exactly as declared, with their
   declared number of arguments; quote names that contain spaces: `"sitting on"(a, b)`. If the caption
   mentions something the vocabulary cannot express, use the closest declared name or leave that detail out."""

_OPEN_RULE = """\
5. There is no fixed vocabulary. Choose short lower-case names in their base form: categories are nouns
   (`person`, `cup`), unary predicates describe one entity (`walking`, `open`), binary predicates relate two
   (`holding`, `"on top of"`; write `holding`, not `is holding`). Quote names that contain spaces. Use each
   predicate name with one number of arguments only."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """The system prompt of a run, as blocks for the Messages API, and its version."""

    system: tuple[dict, ...]
    version: str
    closed: bool

    @property
    def text(self) -> str:
        return "\n\n".join(b["text"] for b in self.system)


def _static_part(closed: bool) -> str:
    vocab, examples = fewshot_examples()
    parts = [
        _INSTRUCTIONS.format(vocabulary_rule=_CLOSED_RULE if closed else _OPEN_RULE),
        "# The stlspec language\n\nThe grammar (Lark, LALR). It is the precise reference:\n\n```lark\n"
        + _grammar().strip() + "\n```",
    ]
    reference = _language_reference()
    if reference:
        parts.append(
            "# Language reference\n\nThe reference pages of the language. Their examples include a vocabulary "
            "file with `include`; your answers must not (the vocabulary is given to you).\n\n" + reference)
    shots = [f'Caption: "{ex.caption}"\n\n```stl\n{ex.answer}\n```' for ex in examples]
    parts.append("# Worked examples\n\nThese use this example vocabulary (not the one of your task):\n\n```stl\n"
                 + vocab + "\n```\n\n" + "\n\n".join(shots))
    return "\n\n".join(parts)


def build_prompt(vocabulary: ir.Vocabulary | None = None) -> Prompt:
    """The system prompt for a closed ``vocabulary`` (or open vocabulary when ``None``).

    The static part (instructions, grammar, reference, examples) comes first so
    that prompt caching can reuse it across vocabularies; ``cache_control``
    marks the end of the whole system prompt, which is identical for every
    caption of a run.
    """
    closed = vocabulary is not None
    static = _static_part(closed)
    if closed:
        task = "# Your vocabulary\n\nUse only these declarations:\n\n```stl\n" + render_vocabulary(vocabulary) + "\n```"
    else:
        task = "# Your vocabulary\n\nOpen: choose names as rule 5 says."
    system = ({"type": "text", "text": static}, {"type": "text", "text": task, "cache_control": {"type": "ephemeral"}})
    return Prompt(system=system, version=prompt_version(), closed=closed)


def prompt_version() -> str:
    """``PROMPT_TEMPLATE_VERSION`` plus a hash of everything the prompt is generated from."""
    h = hashlib.sha256()
    for part in (_INSTRUCTIONS, _CLOSED_RULE, _OPEN_RULE, _grammar(), _language_reference(),
                 _package_text("fewshot.md")):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return f"{PROMPT_TEMPLATE_VERSION}-{h.hexdigest()[:10]}"


def user_message(caption: str, spec_name: str) -> str:
    """The first user turn for one caption."""
    return f'Write the spec named `{spec_name}` for this caption:\n\n"{caption}"'


def repair_message(rendered_diagnostics: str, checked_text: str | None) -> str:
    """The user turn that sends the checker's messages back for a fix."""
    msg = "The checker rejected your spec:\n\n```text\n" + rendered_diagnostics.strip() + "\n```\n\n"
    if checked_text:
        msg += "This is the spec as it was checked:\n\n```stl\n" + checked_text.strip() + "\n```\n\n"
    return msg + "Reply with the corrected spec in one ```stl code block."


def no_spec_message(spec_name: str) -> str:
    return ("I could not find a spec in your answer. Reply with exactly one ```stl code block containing "
            f'`spec {spec_name} "CAPTION" {{ ... }}`.')


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stlspec.llm",
                                     description="Show the generated prompt, or refresh the language snapshot.")
    parser.add_argument("--refresh", action="store_true",
                        help="rewrite stlspec/llm/language.md from docs/language/*.md")
    parser.add_argument("--docs", default=str(Path(__file__).resolve().parents[2] / "docs" / "language"))
    parser.add_argument("--vocab", help="show the prompt for this vocabulary file")
    args = parser.parse_args(argv)
    if args.refresh:
        target = Path(__file__).with_name("language.md")
        target.write_text(language_snapshot(args.docs), encoding="utf-8")
        print(f"wrote {target}")
        return 0
    vocab = None
    if args.vocab:
        from stlspec.loader import load_vocabulary

        vocab = load_vocabulary(args.vocab)
    prompt = build_prompt(vocab)
    print(prompt.text)
    print(f"\n-- prompt version {prompt.version}, {len(prompt.text)} characters", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
