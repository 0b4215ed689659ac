"""Captions → specs: the validate-and-repair conversation and the two ways to run it at scale.

One caption is one *conversation*, written once as a generator
(:meth:`_Run.conversation`): it yields the parameters of each Messages API
request and receives the answer; between answers it extracts the spec, maps
its names onto the vocabulary, checks it, and, on errors, sends the rendered
diagnostics back for a fix, up to ``max_repairs`` times. Two drivers feed it:

* **concurrent** (default): a bounded thread pool, one conversation per
  worker, each request sent with the SDK (which retries 429/5xx itself);
* **batch** (``batch=True``): every conversation's next request goes into one
  Message Batch; results are matched back by ``custom_id`` through the
  table the cache keeps, and conversations that need a repair round go into
  the next batch. A restarted run resumes polling the batches it submitted.

Both consult the durable cache (:mod:`stlspec.llm.cache`) before every request
and write every answer to it the moment it arrives, so a killed run loses
nothing and a rerun pays for nothing twice.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generator, Iterable

from stlspec import ast, diagnostics, ir
from stlspec.diagnostics import Diagnostic, StlError
from stlspec.llm import prompt as prompts
from stlspec.llm.cache import Cache, record_key, request_key
from stlspec.llm.client import FatalAPIError, Reply, TransientAPIError, make_client, require_api_key, send
from stlspec.llm.costs import Usage, estimate_cost
from stlspec.llm.extract import extract_spec
from stlspec.llm.normalize import VocabularyMapper
from stlspec.llm.records import Caption, SpecRecord, spec_name_for

__all__ = ["DEFAULT_MODEL", "RunResult", "specs_from_captions", "validate_answer", "Outcome", "plan"]

DEFAULT_MODEL = "claude-sonnet-4-6"

#: The name the model is asked to give its spec; every record renames it to the caption's own name
#: afterwards, which keeps the request (and so the cache) independent of caption ids.
_ANSWER_NAME = "s"


@dataclass
class Outcome:
    """The result of validating one answer."""

    ok: bool
    text: str | None                     # the checked spec text (or the extracted text that failed)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    rendered: str = ""
    renamed: dict = field(default_factory=dict)
    repair_prompt: str = ""


def validate_answer(answer: str, caption: str, spec_name: str, vocabulary: ir.Vocabulary | None,
                    mapper: VocabularyMapper | None = None) -> Outcome:
    """Extract, normalize and check one answer; say what to tell the model if it is not valid."""
    import stlspec

    mapper = mapper or VocabularyMapper(vocabulary)
    path = f"<{spec_name}>"
    found = extract_spec(answer)
    if found is None:
        d = diagnostics.llm_no_spec()
        return Outcome(False, None, [d], d.render(), repair_prompt=prompts.no_spec_message(_ANSWER_NAME))
    try:
        program = stlspec.parse(found.text, path=path)
    except StlError as err:
        rendered = err.render()
        return Outcome(False, found.text, list(err.diagnostics), rendered,
                       repair_prompt=prompts.repair_message(rendered, found.text))
    notes: list[Diagnostic] = []
    specs = program.specs
    if len(specs) != 1:
        d = (diagnostics.llm_several_specs(len(specs)) if specs
             else diagnostics.llm_no_spec("the answer holds 0 specs; expected exactly one"))
        msg = d.render()
        return Outcome(False, found.text, [d], msg, repair_prompt=prompts.repair_message(msg, found.text))
    dropped = [i for i in program.items if not isinstance(i, ast.Spec)]
    if dropped:
        # Answers must not extend the vocabulary; their declarations add nothing to an open-vocabulary check.
        notes.append(diagnostics.llm_declarations_ignored(len(dropped)))
    spec, mapping = mapper.map_spec(specs[0])
    spec = ast.Spec(spec_name, spec.formula, caption)
    text = stlspec.format(ast.Program((spec,)))
    try:
        # The same stages as compile_text, kept apart to get at the checker's warnings.
        checked = stlspec.check(stlspec.parse(text, path=path), vocabulary)
        stlspec.lower(checked)
    except StlError as err:
        rendered = err.render()
        return Outcome(False, text, [*notes, *err.diagnostics], rendered,
                       dict(mapping.renamed), repair_prompt=prompts.repair_message(rendered, text))
    return Outcome(True, text, [*notes, *checked.warnings], "", dict(mapping.renamed))


@dataclass
class RunResult:
    """Everything a run produced, in caption order, with its accounting."""

    records: list[SpecRecord]
    model: str
    prompt_version: str
    batch: bool = False
    fresh_usage: Usage = field(default_factory=Usage)  # tokens paid for in this run
    total_usage: Usage = field(default_factory=Usage)  # tokens of all answers used, cached or not

    @property
    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "repaired": 0, "failed": 0}
        for r in self.records:
            out[r.status] += 1
        return out

    @property
    def cache_hits(self) -> int:
        return sum(r.cache_hit for r in self.records)

    @property
    def estimated_cost(self) -> float | None:
        return estimate_cost(self.model, self.fresh_usage, batch=self.batch)


@dataclass
class _Answer:
    reply: Reply
    cached: bool


class _Run:
    """The state shared by the conversations of one run."""

    def __init__(self, *, vocabulary, model, max_repairs, max_tokens, cache: Cache, synonyms, retry_failed):
        self.vocabulary = vocabulary
        self.model = model
        self.max_repairs = max_repairs
        self.max_tokens = max_tokens
        self.cache = cache
        self.retry_failed = retry_failed
        self.mapper = VocabularyMapper(vocabulary, synonyms)
        self.prompt = prompts.build_prompt(vocabulary)
        self.vocab_hash = prompts.vocabulary_hash(vocabulary, synonyms)
        self.fresh = Usage()
        self.fresh_lock = threading.Lock()

    def params(self, messages: list[dict]) -> dict:
        return {"model": self.model, "max_tokens": self.max_tokens, "system": list(self.prompt.system),
                "messages": [dict(m) for m in messages]}

    def record_key(self, caption: str) -> str:
        return record_key(self.model, self.prompt.version, caption, self.vocab_hash)

    def cached_record(self, caption: Caption, spec_name: str) -> SpecRecord | None:
        d = self.cache.get_record(self.record_key(caption.text))
        if d is None:
            return None
        rec = SpecRecord.from_dict(d)
        if rec.status == "failed" and self.retry_failed:
            return None
        return _with_identity(rec, caption.id, spec_name, cache_hit=True)

    def finish(self, rec: SpecRecord) -> SpecRecord:
        if not rec.transient:  # transient failures are retried on the next run, so never cached
            self.cache.put_record(self.record_key(rec.caption), model=self.model,
                                  prompt_version=self.prompt.version, caption=rec.caption,
                                  vocab_hash=self.vocab_hash, record=rec.to_dict())
        return rec

    def add_fresh(self, usage: dict) -> None:
        with self.fresh_lock:
            self.fresh.add(usage)

    def conversation(self, caption: Caption, spec_name: str) -> Generator[dict, _Answer, SpecRecord]:
        """One caption's conversation: yields request parameters, receives answers, returns the record."""
        messages = [{"role": "user", "content": prompts.user_message(caption.text, _ANSWER_NAME)}]
        usage = Usage()
        all_cached = True
        last: Outcome | None = None
        base = dict(caption_id=caption.id, caption=caption.text, spec_name=spec_name, model=self.model,
                    prompt_version=self.prompt.version)
        for round_ in range(1, self.max_repairs + 2):
            answer = yield self.params(messages)
            usage.add(answer.reply.usage)
            all_cached = all_cached and answer.cached
            common = dict(base, rounds=round_, usage=usage.to_dict(), cache_hit=all_cached)
            if answer.reply.stop_reason == "refusal":
                why = answer.reply.refusal_explanation or "no explanation given"
                d = diagnostics.llm_refused(why)
                return SpecRecord(status="failed", spec=last.text if last else None, diagnostics=[d],
                                  rendered=d.render(),
                                  error=f"refused: {answer.reply.text.strip()[:200] or why}", **common)
            # Checked under the name the model was asked for, so that repair requests do not depend on
            # the caption id either; the record is renamed at the end.
            last = validate_answer(answer.reply.text, caption.text, _ANSWER_NAME, self.vocabulary, self.mapper)
            if last.ok:
                return _with_identity(SpecRecord(status="ok" if round_ == 1 else "repaired", spec=last.text,
                                                 diagnostics=last.diagnostics, renamed=last.renamed,
                                                 **dict(common, spec_name=_ANSWER_NAME)), caption.id, spec_name)
            if answer.reply.stop_reason == "max_tokens":
                last.diagnostics.append(diagnostics.llm_answer_cut_off())
            messages.append({"role": "assistant", "content": answer.reply.text.strip() or "(empty answer)"})
            messages.append({"role": "user", "content": last.repair_prompt})
        assert last is not None
        return _with_identity(SpecRecord(status="failed", spec=last.text, diagnostics=last.diagnostics,
                                         rendered=last.rendered, renamed=last.renamed,
                                         **dict(common, spec_name=_ANSWER_NAME)), caption.id, spec_name)

    def transient_failure(self, caption: Caption, spec_name: str, message: str,
                          make: Callable[[str], Diagnostic] = diagnostics.llm_request_failed) -> SpecRecord:
        """A failure worth retrying (never cached): ``make`` is E704's or E705's constructor."""
        d = make(message)
        return SpecRecord(caption_id=caption.id, caption=caption.text, spec_name=spec_name, status="failed",
                          diagnostics=[d], rendered=d.render(), model=self.model,
                          prompt_version=self.prompt.version, error=message, transient=True)


def _with_identity(rec: SpecRecord, caption_id: str, spec_name: str, cache_hit: bool | None = None) -> SpecRecord:
    """``rec`` for another caption with the same text (renaming its spec)."""
    spec = rec.spec
    if spec and rec.spec_name != spec_name:
        spec = spec.replace(f"spec {rec.spec_name} ", f"spec {spec_name} ", 1)
    out = replace(rec, caption_id=caption_id, spec_name=spec_name, spec=spec)
    if cache_hit is not None:
        out.cache_hit = cache_hit
    return out


# ----------------------------------------------------------------- drivers


def _drive_concurrent(run: _Run, jobs: list[tuple[Caption, str]], client: Any, concurrency: int,
                      on_done: Callable[[SpecRecord], None]) -> dict[str, SpecRecord]:
    def one(caption: Caption, spec_name: str) -> SpecRecord:
        gen = run.conversation(caption, spec_name)
        params = next(gen)
        while True:
            key = request_key(params)
            stored = run.cache.get_response(key)
            if stored is not None:
                answer = _Answer(Reply.from_dict(stored), True)
            else:
                try:
                    reply = send(client, params)
                except TransientAPIError as exc:
                    return run.transient_failure(caption, spec_name, str(exc))
                run.cache.put_response(key, run.model, reply.to_dict())  # before anything else can fail
                run.add_fresh(reply.usage)
                answer = _Answer(reply, False)
            try:
                params = gen.send(answer)
            except StopIteration as stop:
                return run.finish(stop.value)

    out: dict[str, SpecRecord] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="stlspec-llm")
    try:
        futures = {pool.submit(one, c, n): c for c, n in jobs}
        for fut in as_completed(futures):
            rec = fut.result()  # FatalAPIError propagates: every other request would fail the same way
            out[futures[fut].text] = rec
            on_done(rec)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return out


def _drive_batch(run: _Run, jobs: list[tuple[Caption, str]], client: Any, poll_interval: float,
                 on_done: Callable[[SpecRecord], None], on_status: Callable[[str], None]) -> dict[str, SpecRecord]:
    import anthropic

    out: dict[str, SpecRecord] = {}
    active: dict[str, tuple[Caption, str, Generator, dict]] = {}
    for caption, name in jobs:
        gen = run.conversation(caption, name)
        active[caption.text] = (caption, name, gen, next(gen))
    failed_keys: dict[str, str] = {}  # request key -> why its batch entry did not succeed (this run)

    while active:
        need: dict[str, dict] = {}
        for text, (caption, name, gen, params) in list(active.items()):
            while True:  # replay every answer the cache already has
                key = request_key(params)
                stored = run.cache.get_response(key)
                if stored is None:
                    if key in failed_keys:
                        rec = run.transient_failure(caption, name, failed_keys[key],
                                                    diagnostics.llm_batch_entry_failed)
                        del active[text]
                        out[text] = rec
                        on_done(rec)
                    else:
                        need.setdefault(key, params)
                        active[text] = (caption, name, gen, params)
                    break
                try:
                    params = gen.send(_Answer(Reply.from_dict(stored), True))
                except StopIteration as stop:
                    rec = run.finish(stop.value)
                    del active[text]
                    out[text] = rec
                    on_done(rec)
                    break
        if not need:
            break
        # Resume batches a previous (killed) run submitted before submitting anything new.
        covering = {bid: ids for bid, ids in run.cache.open_batches().items() if set(ids.values()) & need.keys()}
        covered = {k for ids in covering.values() for k in ids.values()}
        missing = [k for k in need if k not in covered]
        if missing:
            custom_ids = {f"k{key[:40]}": key for key in missing}  # exact map; results are matched only by it
            requests = [{"custom_id": cid, "params": need[key]} for cid, key in custom_ids.items()]
            batch = _call(lambda: client.messages.batches.create(requests=requests))
            run.cache.add_batch(batch.id, custom_ids)  # committed before polling: a restart resumes this batch
            on_status(f"submitted batch {batch.id} ({len(requests)} requests)")
            covering[batch.id] = custom_ids
        for batch_id, ids in covering.items():
            try:
                _collect_batch(run, client, batch_id, ids, failed_keys, poll_interval, on_status)
            except anthropic.NotFoundError:
                on_status(f"batch {batch_id} no longer exists; its requests will be resubmitted")
                run.cache.close_batch(batch_id, "missing")
    return out


def _call(fn):
    """One Message Batches call; failures that survive the SDK's retries stop the run (it can be resumed)."""
    import anthropic

    try:
        return fn()
    except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
        raise FatalAPIError(f"the API rejected the credentials ({exc.status_code}): check ANTHROPIC_API_KEY") from None
    except anthropic.NotFoundError:
        raise
    except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
        raise TransientAPIError(f"a Message Batches request failed after retries ({exc}); run the same command "
                                "again to resume: submitted batches are remembered in the cache") from None


def _collect_batch(run: _Run, client: Any, batch_id: str, ids: dict[str, str], failed_keys: dict[str, str],
                   poll_interval: float, on_status: Callable[[str], None]) -> None:
    while True:
        batch = _call(lambda: client.messages.batches.retrieve(batch_id))
        counts = batch.request_counts
        if batch.processing_status == "ended":
            break
        on_status(f"batch {batch_id}: {batch.processing_status}, {counts.processing} processing")
        time.sleep(poll_interval)
    for line in _call(lambda: client.messages.batches.results(batch_id)):
        key = ids.get(line.custom_id)
        if key is None:  # never guess: an id we did not issue is reported, not matched
            on_status(f"batch {batch_id}: ignoring result with unknown custom_id {line.custom_id!r}")
            continue
        result = line.result
        if result.type == "succeeded":
            from stlspec.llm.client import reply_from_message

            reply = reply_from_message(result.message)
            run.cache.put_response(key, run.model, reply.to_dict())
            run.add_fresh(reply.usage)
        else:
            detail = ""
            err = getattr(result, "error", None)
            inner = getattr(err, "error", None)
            if inner is not None and getattr(inner, "message", None):
                detail = f": {inner.message}"
            failed_keys[key] = f"batch request {result.type}{detail}"
    run.cache.close_batch(batch_id)
    on_status(f"batch {batch_id}: collected")


# ----------------------------------------------------------------- public entry point


def specs_from_captions(
    captions: Iterable[Caption | tuple[str, str] | str],
    vocabulary: ir.Vocabulary | str | None = None,
    *,
    model: str = DEFAULT_MODEL,
    cache: Cache | str | None = None,
    max_repairs: int = 2,
    max_tokens: int = 2048,
    concurrency: int = 4,
    batch: bool = False,
    poll_interval: float = 30.0,
    base_url: str | None = None,
    max_retries: int = 6,
    synonyms: dict[str, str] | None = None,
    retry_failed: bool = False,
    client: Any = None,
    progress: Callable[[SpecRecord], None] | None = None,
    status: Callable[[str], None] | None = None,
) -> RunResult:
    """Turn captions into checked specs with Claude; one :class:`SpecRecord` per caption, in order.

    ``vocabulary`` is an :class:`stlspec.ir.Vocabulary`, a path to a ``.stl``
    vocabulary file, or ``None`` for open vocabulary. ``cache`` is a
    :class:`Cache` or a path (``None``: an in-memory cache, nothing persists).
    The API key is read from ``ANTHROPIC_API_KEY`` before anything else happens
    (:class:`~stlspec.llm.client.MissingAPIKeyError` if unset), unless a
    ready ``client`` is passed. ``progress`` is called with each finished
    record, ``status`` with batch-progress lines.
    """
    if client is None:
        require_api_key()
    if isinstance(vocabulary, str):
        from stlspec.pipeline import load_vocabulary

        vocabulary = load_vocabulary(vocabulary)
    items = [_as_caption(c, i) for i, c in enumerate(captions)]
    own_cache = not isinstance(cache, Cache)
    store = cache if isinstance(cache, Cache) else Cache(cache or ":memory:")
    try:
        run = _Run(vocabulary=vocabulary, model=model, max_repairs=max_repairs, max_tokens=max_tokens,
                   cache=store, synonyms=synonyms, retry_failed=retry_failed)
        used: set[str] = set()
        names = [spec_name_for(c.id, used) for c in items]
        by_text: dict[str, SpecRecord] = {}
        jobs: list[tuple[Caption, str]] = []
        queued: set[str] = set()
        for c, name in zip(items, names):
            if c.text in by_text or c.text in queued:
                continue  # the same caption twice: asked once, the record is shared
            rec = run.cached_record(c, name)
            if rec is not None:
                by_text[c.text] = rec
            else:
                jobs.append((c, name))
                queued.add(c.text)
        done = progress or (lambda r: None)
        for rec in by_text.values():
            done(rec)
        if jobs:
            if client is None:
                client = make_client(base_url=base_url, max_retries=max_retries)
            if batch:
                by_text.update(_drive_batch(run, jobs, client, poll_interval, done, status or (lambda s: None)))
            else:
                by_text.update(_drive_concurrent(run, jobs, client, concurrency, done))
        records = []
        total = Usage()
        for c, name in zip(items, names):
            rec = _with_identity(by_text[c.text], c.id, name)
            records.append(rec)
        for rec in by_text.values():
            total.add({**rec.usage, "requests": rec.rounds})
        return RunResult(records, model, run.prompt.version, batch=batch, fresh_usage=run.fresh, total_usage=total)
    finally:
        if own_cache:
            store.close()


def _as_caption(c: Caption | tuple[str, str] | str, i: int) -> Caption:
    if isinstance(c, Caption):
        return c
    if isinstance(c, tuple):
        return Caption(str(c[0]), str(c[1]))
    return Caption(f"caption{i + 1}", str(c))


def plan(captions: Iterable[Caption | tuple[str, str] | str], vocabulary: ir.Vocabulary | None, *, model: str,
         cache: Cache, synonyms: dict[str, str] | None = None, max_tokens: int = 2048) -> dict:
    """What a run would do, without sending anything: counts and a rough token estimate.

    Tokens are estimated as characters / 4 for the prompt and ~200 per answer;
    repairs are not counted (they typically add 5-15 % on noisy captions).
    """
    run = _Run(vocabulary=vocabulary, model=model, max_repairs=0, max_tokens=max_tokens, cache=cache,
               synonyms=synonyms, retry_failed=False)
    items = [_as_caption(c, i) for i, c in enumerate(captions)]
    texts = list(dict.fromkeys(c.text for c in items))
    cached = sum(cache.get_record(run.record_key(t)) is not None for t in texts)
    uncached = len(texts) - cached
    prompt_chars = len(run.prompt.text) + sum(len(prompts.user_message(t, _ANSWER_NAME)) for t in texts) / max(len(texts), 1)
    return {"total": len(items), "unique": len(texts), "cached": cached, "uncached": uncached,
            "input_tokens": int(uncached * prompt_chars / 4), "output_tokens": uncached * 200}
