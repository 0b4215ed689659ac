"""Captions → stlspec specs with Claude (the Messages and Message Batches APIs).

The pipeline, one module per step::

    prompt      the system prompt, generated from the grammar, the language reference and examples
    client      the official ``anthropic`` SDK (imported lazily), API key from ANTHROPIC_API_KEY only
    extract     the spec text inside an answer (prose and code fences tolerated)
    normalize   model names → vocabulary names (normalization, synonyms)
    generate    the validate-and-repair conversation; concurrent and batch drivers
    cache       the SQLite cache: resumable runs, nothing paid twice
    costs       token accounting and cost estimates
    records     captions in, records and ``.stl``/JSONL files out
    fakeapi     a local fake Messages API replaying recorded answers (tests, offline trials)

Typical use::

    from stlspec.llm import specs_from_captions, load_captions
    result = specs_from_captions(load_captions("captions.jsonl"), "examples/vocab.stl",
                                 cache="llm-cache.sqlite")
    for rec in result.records:
        print(rec.caption_id, rec.status, rec.spec)

``import stlspec.llm`` does not import the SDK; the first request does.
"""

from __future__ import annotations

from stlspec.llm.cache import Cache, default_cache_path
from stlspec.llm.client import FatalAPIError, LLMError, MissingAPIKeyError, TransientAPIError, require_api_key
from stlspec.llm.costs import Price, Usage, estimate_cost, price_for
from stlspec.llm.extract import Extraction, extract_spec
from stlspec.llm.generate import DEFAULT_MODEL, Outcome, RunResult, specs_from_captions, validate_answer
from stlspec.llm.normalize import SYNONYMS, VocabularyMapper, normalize_name
from stlspec.llm.prompt import Prompt, build_prompt, prompt_version
from stlspec.llm.records import (
    LLM_CODES, Caption, CaptionFileError, SpecRecord, load_captions, write_report, write_stl,
)

__all__ = [
    "specs_from_captions", "RunResult", "SpecRecord", "Caption", "load_captions", "write_stl", "write_report",
    "validate_answer", "Outcome", "extract_spec", "Extraction", "normalize_name", "VocabularyMapper",
    "SYNONYMS", "build_prompt", "prompt_version", "Prompt", "Cache", "default_cache_path", "Usage", "Price",
    "estimate_cost", "price_for", "LLMError", "MissingAPIKeyError", "FatalAPIError", "TransientAPIError",
    "require_api_key", "CaptionFileError", "LLM_CODES", "DEFAULT_MODEL",
]
