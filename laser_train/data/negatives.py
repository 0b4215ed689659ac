"""Negative specs for the contrastive loss, made with :mod:`stlspec.negatives`.

The generator verifies every candidate with the reference interpreter on a few
random traces, which costs tens of milliseconds per spec — too slow to redo at
every start-up, so datasets should carry their negatives in the manifest's
``negatives`` field. The synthetic world does (it calls :func:`make_negatives`
once, in parallel, when it is written); :func:`laser_train.train.prepare` falls
back to calling it for records without negatives.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["available", "negatives_text", "make_negatives"]

TRIALS = 4  # random traces per candidate: enough to tell most candidates apart, cheap enough to run at scale
# With 4 traces, long specs (3 events, 3 variables) are rarely true on any random trace, so no candidate
# can be shown to be *not* implied by the positive and all are rejected; those (~15%) get a second,
# larger try.
RETRY_TRIALS = 16


def available() -> bool:
    try:
        import stlspec.negatives  # noqa: F401
    except ImportError:
        return False
    return True


def negatives_text(job: tuple[str, str | None, Any, int, int]) -> str:
    """stlspec text with up to ``count`` verified negatives of one spec ("" if none was found).

    ``job = (source, spec_name, vocabulary, count, seed)``: ``source`` is stlspec text holding the
    positive spec (the only one, or the one named ``spec_name``). A tuple, so that it can be sent
    to worker processes.
    """
    import stlspec
    from stlspec import ast
    from stlspec.negatives import generate_negatives

    source, name, vocabulary, count, seed = job
    specs = stlspec.parse(source).specs
    spec = next(s for s in specs if s.name == name) if name is not None else specs[0]
    negs = generate_negatives(spec, vocabulary, limit=count, seed=seed, trials=TRIALS)
    if not negs:
        negs = generate_negatives(spec, vocabulary, limit=count, seed=seed, trials=RETRY_TRIALS)
    return stlspec.format(ast.Program(tuple(n.spec for n in negs))) if negs else ""


def make_negatives(sources: Sequence[str], vocabulary: Any, count: int, seed: int, *,
                   names: Sequence[str | None] | None = None, workers: int = 2,
                   progress: bool = False) -> list[str]:
    """:func:`negatives_text` for every source (deterministic: spec i uses seed ``(seed, i)``).

    Runs on ``workers`` processes (fork) when there is enough work; returns ``""`` for every
    spec when :mod:`stlspec.negatives` is not available.
    """
    if not available():
        return ["" for _ in sources]
    names = list(names) if names is not None else [None] * len(sources)
    jobs = [(src, name, vocabulary, count, seed * 1_000_003 + i) for i, (src, name) in enumerate(zip(sources, names))]
    if workers > 1 and len(jobs) > 8:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            it = pool.imap(negatives_text, jobs, chunksize=8)
            if progress:
                from tqdm import tqdm

                it = tqdm(it, total=len(jobs), desc="negative specs", unit="spec", leave=False)
            return list(it)
    return [negatives_text(j) for j in jobs]
