"""The CLI subcommands around specs from captions: ``from-captions``, ``import-laser``, ``negatives``.

:func:`register` adds them to the ``stlspec`` command (``stlspec/cli.py`` calls
it); each sets ``func`` to a handler returning the exit code, with the meanings every
``stlspec`` subcommand gives them (``docs/cli.md``):

* ``0`` — everything converted;
* ``1`` — a problem with the input or the outputs: some captions/records failed
  (the outputs are still written; the report says why), or a file that cannot
  be used (captions, ``--vocab``, ``--synonyms``, the cache: E706/E8xx and the
  vocabulary's own diagnostics; an output that cannot be written: E804), raised
  as :class:`~stlspec.diagnostics.StlError` and printed by ``stlspec.cli.main``;
* ``2`` — bad usage, nothing done: a bad option value (``--price``,
  ``--kinds``, by the option parser), and for ``from-captions`` a missing or
  rejected API key, an unknown model, or no ``anthropic`` package.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "cmd_from_captions", "cmd_import_laser", "cmd_negatives", "format_summary"]


def register(subparsers) -> None:
    """Add ``from-captions``, ``import-laser`` and ``negatives`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "from-captions", help="write specs for video captions with Claude",
        description="Turn captions (JSONL: {\"id\": ..., \"caption\": ...} per line) into checked specs with "
                    "Claude. Answers are validated and repaired; results are cached so that an interrupted "
                    "run resumes where it stopped. Needs ANTHROPIC_API_KEY.")
    p.add_argument("captions", metavar="CAPTIONS.jsonl")
    p.add_argument("-o", "--output", required=True, metavar="OUT.stl", help="the specs (failures as comments)")
    p.add_argument("--report", metavar="PATH", help="JSONL report, one record per caption "
                   "(default: OUT with .report.jsonl)")
    p.add_argument("--vocab", metavar="V.stl", help="closed vocabulary to use (default: open vocabulary)")
    from stlspec.llm.generate import DEFAULT_MODEL  # no SDK import: that happens at the first request

    p.add_argument("--model", default=DEFAULT_MODEL, help="Claude model (default: %(default)s)")
    p.add_argument("--batch", action="store_true", help="use the Message Batches API (half price, slower)")
    p.add_argument("--concurrency", type=int, default=4, metavar="N", help="parallel requests (default: 4)")
    p.add_argument("--max-repairs", type=int, default=2, metavar="N",
                   help="repair rounds per caption after the first answer (default: 2)")
    p.add_argument("--max-tokens", type=int, default=2048, metavar="N", help="answer length limit")
    p.add_argument("--cache", metavar="PATH", help="SQLite cache (default: $STLSPEC_CACHE or "
                   "~/.cache/stlspec/llm.sqlite)")
    p.add_argument("--base-url", metavar="URL", help="API base URL (a proxy, or a local fake for testing)")
    p.add_argument("--max-retries", type=int, default=6, metavar="N", help="SDK retries on 429/5xx (default: 6)")
    p.add_argument("--poll-interval", type=float, default=30.0, metavar="S", help="batch polling period")
    p.add_argument("--synonyms", metavar="FILE.json", help='extra synonyms {"grasping": "holding", ...}')
    p.add_argument("--retry-failed", action="store_true",
                   help="re-run captions whose cached record failed (cached answers are still reused)")
    p.add_argument("--price", metavar="IN,OUT", type=_price,
                   help="$ per million input,output tokens for the cost estimate")
    p.add_argument("--dry-run", action="store_true", help="count cached/uncached captions and estimate the cost; "
                   "send nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_from_captions)

    q = subparsers.add_parser(
        "import-laser", help="convert LASER's preprocessed spec records to .stl",
        description="Convert LASER spec records (JSONL with `prog`, `consts`, ...) into stlspec specs. "
                    "Until-chains become `then` chains (the intended event order). Records that cannot be "
                    "converted are reported on stderr with the reason.")
    q.add_argument("file", metavar="FILE.jsonl")
    q.add_argument("-o", "--output", metavar="OUT.stl", help="write here (default: stdout)")
    q.add_argument("--vocab", metavar="V.stl", help="check the specs against this vocabulary instead of "
                   "declaring the names they use")
    q.add_argument("--report", metavar="PATH", help="JSONL report of every record (converted or not)")
    q.set_defaults(func=cmd_import_laser)

    n = subparsers.add_parser(
        "negatives", help="generate negative specs for contrastive training",
        description="For each spec in FILE, write negative specs (events swapped, a predicate replaced, "
                    "binary arguments swapped, a category changed, an event negated or dropped, specs of "
                    "other captions), each checked to differ in meaning on random traces.")
    n.add_argument("file", metavar="FILE.stl")
    n.add_argument("-o", "--output", metavar="OUT.stl", help="write here (default: stdout)")
    n.add_argument("--per-spec", type=int, default=6, metavar="K", help="negatives per spec (default: 6)")
    n.add_argument("--kinds", help="comma-separated kinds (default: all)")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--allow-weaker", action="store_true",
                   help="also keep negatives implied by the positive (e.g. dropped events)")
    n.set_defaults(func=cmd_negatives)


# --------------------------------------------------------------------- from-captions


#: Largest ``--synonyms`` file (bytes) and most entries.
MAX_SYNONYMS_BYTES = 16 * 2**20
MAX_SYNONYMS = 100_000


def load_synonyms(path: str) -> dict[str, str]:
    """Read and validate a ``--synonyms`` file: a JSON object of non-empty, single-line strings."""
    from stlspec.diagnostics import StlError, llm_unreadable_input
    from stlspec.files import parse_json, read_text

    text = read_text(path, error=llm_unreadable_input, what="synonyms file", max_bytes=MAX_SYNONYMS_BYTES)
    data = parse_json(text, error=llm_unreadable_input, path=path, what="synonyms JSON")
    problems = []
    if not isinstance(data, dict):
        problems.append(f"expected a JSON object, got {type(data).__name__}")
    else:
        if len(data) > MAX_SYNONYMS:
            problems.append(f"{len(data):,} entries is more than the limit of {MAX_SYNONYMS:,}")
        for k, v in list(data.items())[:MAX_SYNONYMS]:
            if not isinstance(v, str):
                problems.append(f"{k[:60]!r}: the value must be a string (a vocabulary name), "
                                f"got {type(v).__name__}")
            elif not k.strip() or not v.strip() or len(k) > 200 or len(v) > 200 \
                    or any(c in k + v for c in "\n\r\x00\u2028\u2029"):
                problems.append(f"{k[:60]!r}: keys and values must be non-empty single-line names of at most "
                                f"200 characters")
            if len(problems) >= 20:
                break
    if problems:
        raise StlError([llm_unreadable_input(f"synonyms file: {p}", path=path) for p in problems])
    return data


def _price(text: str) -> tuple[float, float]:
    """``--price IN,OUT``: two non-negative finite numbers (dollars per million tokens)."""
    import math

    try:
        pin, pout = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected two numbers IN,OUT (dollars per million tokens), "
                                         f"e.g. 3,15") from None
    if not all(math.isfinite(x) and x >= 0 for x in (pin, pout)):
        raise argparse.ArgumentTypeError(f"{text!r}: prices must be finite and non-negative")
    return pin, pout


def _err(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def cmd_from_captions(args: argparse.Namespace) -> int:
    from stlspec.diagnostics import StlError
    from stlspec.llm import (
        DEFAULT_MODEL, Cache, FatalAPIError, LLMError, MissingAPIKeyError, Price,
        default_cache_path, load_captions, require_api_key, specs_from_captions,
    )
    from stlspec.llm.generate import plan

    model = args.model or DEFAULT_MODEL
    prices = {model: Price(*args.price)} if args.price else None
    if not args.dry_run:
        try:
            require_api_key()  # first: a missing key is reported before any work starts
        except MissingAPIKeyError as exc:
            return _err(str(exc))
    # Files that cannot be used raise StlError (E706, E8xx, the vocabulary's diagnostics), before any
    # request: stlspec.cli.main prints them and exits 1, as every subcommand does.
    captions = load_captions(args.captions)
    vocabulary = None
    if args.vocab:
        from stlspec.pipeline import load_vocabulary

        vocabulary = load_vocabulary(args.vocab)
    synonyms = load_synonyms(args.synonyms) if args.synonyms else None
    cache_path = args.cache or str(default_cache_path())
    out = Path(args.output)
    report = Path(args.report) if args.report else out.with_suffix(".report.jsonl")
    for target in (out, report):  # before any request: a run must not end unable to write what it paid for
        if target.is_dir():
            from stlspec.diagnostics import cannot_write

            raise StlError([cannot_write(str(target), "it is a directory")])
    cache = Cache(cache_path)  # E706 for a directory, a device, a file that is not a cache

    if args.dry_run:
        with cache:
            p = plan(captions, vocabulary, model=model, cache=cache, synonyms=synonyms, max_tokens=args.max_tokens)
        from stlspec.llm import Usage, estimate_cost

        u = Usage(input_tokens=p["input_tokens"], output_tokens=p["output_tokens"], requests=p["uncached"])
        cost = estimate_cost(model, u, batch=args.batch, prices=prices)
        print(f"{p['total']} captions ({p['unique']} distinct): {p['cached']} cached, {p['uncached']} to ask")
        print(f"estimate without repairs: ~{u.input_tokens:,} input + ~{u.output_tokens:,} output tokens, "
              + (f"~${cost:.2f}" if cost is not None else "cost unknown (pass --price IN,OUT)")
              + f" on {model}{' (batch)' if args.batch else ''}; prompt caching can lower the input part a lot")
        return 0

    bar = _progress(len(captions), disabled=args.no_progress)
    counts = {"ok": 0, "repaired": 0, "failed": 0}

    def on_done(rec) -> None:
        counts[rec.status] += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(counts, refresh=False)

    def on_status(line: str) -> None:
        if bar is not None:
            bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    try:
        with cache:
            result = specs_from_captions(
                captions, vocabulary, model=model, cache=cache, max_repairs=args.max_repairs,
                max_tokens=args.max_tokens, concurrency=args.concurrency, batch=args.batch,
                poll_interval=args.poll_interval, base_url=args.base_url, max_retries=args.max_retries,
                synonyms=synonyms, retry_failed=args.retry_failed, progress=on_done, status=on_status)
    except FatalAPIError as exc:
        return _err(f"{exc} (answers received so far are cached in {cache_path})")
    except LLMError as exc:
        return _err(str(exc))
    finally:
        if bar is not None:
            bar.close()

    _write_outputs(result, out, report, args, vocabulary)
    print(format_summary(result, out, report, cache_path, prices))
    return 1 if result.counts["failed"] else 0


def _progress(total: int, disabled: bool):
    if disabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: no bar, same results
        return None
    return tqdm(total=total, unit="caption", desc="captions", file=sys.stderr, dynamic_ncols=True)


def _write_outputs(result, out: Path, report: Path, args, vocabulary) -> None:
    from stlspec.llm import write_report, write_stl

    declarations = ""
    if vocabulary is None:
        declarations = _open_declarations([r.spec for r in result.records if r.ok and r.spec])
    c = result.counts
    header = (f"Generated by `stlspec from-captions` from {args.captions}\n"
              f"model {result.model}, prompt {result.prompt_version}; "
              f"{c['ok'] + c['repaired']} specs, {c['failed']} failed (see {report.name})")
    write_stl(result.records, out, header=header, include=args.vocab, declarations=declarations)
    write_report(result.records, report)


def _open_declarations(specs: list[str]) -> str:
    """Declarations for the names open-vocabulary specs use, so that the output file is self-contained."""
    import stlspec
    from stlspec.llm.prompt import render_vocabulary

    if not specs:
        return ""
    try:
        vocab = stlspec.compile_text("\n\n".join(specs)).vocabulary
    except stlspec.StlError as err:  # e.g. one name used with two arities in different specs
        print(f"warning: the specs do not share one vocabulary; no declarations written:\n{err.render()}",
              file=sys.stderr)
        return ""
    return "// The vocabulary these specs use (open vocabulary: chosen by the model, normalized).\n" + \
        render_vocabulary(vocab)


def format_summary(result, out: Path, report: Path, cache_path: str, prices=None) -> str:
    """The closing summary of a run: outcome counts, cache use, tokens, estimated cost, failures."""
    from stlspec.llm import estimate_cost

    c = result.counts
    n = len(result.records)
    lines = [f"{n} captions: {c['ok']} ok, {c['repaired']} repaired, {c['failed']} failed"]
    hits = result.cache_hits
    fresh = result.fresh_usage
    if fresh.requests == 0:
        lines.append(f"cache: all {n} served from {cache_path} (no API requests, nothing paid)"
                     if hits == n else f"cache: {hits} of {n} from {cache_path}; no API requests")
    else:
        lines.append(f"cache: {hits} of {n} from {cache_path}; {fresh.requests} API requests"
                     + (" (Message Batches)" if result.batch else ""))
    lines.append(f"tokens this run: {fresh.input_tokens:,} input"
                 + (f" (+{fresh.cache_creation_input_tokens:,} cache write, {fresh.cache_read_input_tokens:,} "
                    f"cache read)" if fresh.cache_creation_input_tokens or fresh.cache_read_input_tokens else "")
                 + f", {fresh.output_tokens:,} output")
    cost = estimate_cost(result.model, fresh, batch=result.batch, prices=prices)
    total = estimate_cost(result.model, result.total_usage, batch=result.batch, prices=prices)
    if cost is None:
        lines.append(f"estimated cost: unknown for {result.model} (pass --price IN,OUT)")
    else:
        lines.append(f"estimated cost: ${cost:.4f} this run ({result.model}"
                     + (", batch price" if result.batch else "") + ")"
                     + (f"; ${total:.4f} for all answers used, cached included" if total and total != cost else ""))
    lines.append(f"wrote {out} and {report}")
    failed = [r for r in result.records if r.status == "failed"]
    if failed:
        lines.append("failed (details in the report; rerun to retry transient failures):")
        for r in failed[:20]:
            lines.append(f"  {r.caption_id}: {r.headline()}" + (f" [{r.rounds} rounds]" if r.rounds > 1 else ""))
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more")
    return "\n".join(lines)


# --------------------------------------------------------------------- import-laser


def cmd_import_laser(args: argparse.Namespace) -> int:
    from stlspec.laser_import import import_laser_file

    from stlspec.files import check_writable, write_text

    # An unreadable records or --vocab file raises StlError (E801, or the vocabulary's own errors), and so
    # does an output path that cannot be written (E804): ``stlspec.cli.main`` prints it and exits 1, as
    # every subcommand does for files it cannot use.
    for target in (args.output, args.report):
        if target:
            check_writable(target)
    result = import_laser_file(args.file, vocabulary=args.vocab)
    for fail in result.failures:
        print(f"{args.file}:{fail.line}: cannot convert record {fail.record_id!r}: {fail.reason}", file=sys.stderr)
    if args.output:
        write_text(args.output, result.text)
    else:
        sys.stdout.write(result.text)
    if args.report:
        write_text(args.report, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result.report_rows()))
    print(f"converted {len(result.converted)} of {result.total} records"
          + (f"; {len(result.failures)} could not be converted (listed above)" if result.failures else ""),
          file=sys.stderr)
    return 1 if result.failures else 0


# --------------------------------------------------------------------- negatives


def cmd_negatives(args: argparse.Namespace) -> int:
    import stlspec
    from stlspec.negatives import KINDS, negatives_for_program
    from stlspec.files import check_writable, write_text
    from stlspec.pipeline import read_source

    if args.output:
        check_writable(args.output)  # E804 before the work, like an unreadable input (E801): exit 1 (cli.main)
    program = stlspec.parse(read_source(args.file), path=args.file)
    kinds = tuple(k.strip() for k in args.kinds.split(",")) if args.kinds else KINDS
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        return _err(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    out = negatives_for_program(program, per_spec=args.per_spec, kinds=kinds, seed=args.seed,
                                allow_weaker=args.allow_weaker,
                                output_dir=str(Path(args.output).resolve().parent) if args.output else None)
    if args.output:
        write_text(args.output, out)
    else:
        sys.stdout.write(out)
    return 0
