"""Run an encoder over a catalogue through the embedding cache, in bounded-memory chunks.

One function, :func:`encode_modality`, is shared by text, image and audio: it keys every
item by id + input content, serves hits from the cache, encodes the misses ``shard_size`` items
at a time (each chunk is written as one cache shard before the next is read), and turns
unusable media into mask bits + report lines instead of errors.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from tqdm.auto import tqdm

from crossrec.data.media import budget_problem, report_entry, sort_report
from crossrec.encoders.cache import ModalityCache, content_hash, file_hash, item_key

logger = logging.getLogger(__name__)


class Encoder(Protocol):
    dim: int

    def settings(self) -> dict[str, Any]: ...


class BadMediaError(RuntimeError):
    """More media of a modality are unusable (ingest + featurize) than the budget allows."""


@dataclass
class ModalityResult:
    """One modality's vectors plus what happened on the way (for logs and the report)."""

    name: str
    vectors: np.ndarray
    mask: np.ndarray
    source: str
    failures: list[dict[str, str]] = field(default_factory=list)
    n_with_input: int = 0
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0
    budget: dict[str, Any] = field(default_factory=dict)
    #: what a modality fitted on the catalogue (the attributes' vocabularies): new items are
    #: encoded with it
    spec: dict[str, Any] | None = None

    def block(self) -> dict[str, Any]:
        """The ``item_features[modality]`` entry of docs/architecture.md."""
        block = {"vectors": self.vectors, "mask": self.mask, "source": self.source}
        if self.spec is not None:
            block["spec"] = self.spec
        return block

    def stats(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dim": int(self.vectors.shape[1]),
            "n_items": int(len(self.mask)),
            "n_with_input": self.n_with_input,
            "n_usable": int(self.mask.sum()),
            "n_failed": len(self.failures),
            "n_cached": self.n_cached,
            "n_computed": self.n_computed,
            "seconds": round(self.seconds, 3),
            **({"media_budget": self.budget} if self.budget else {}),
        }


def _present(value: Any) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and np.isnan(value))
        and str(value) != ""
    )


def encode_modality(
    name: str,
    item_ids: Sequence[str],
    inputs: Sequence[Any],
    input_kind: Literal["text", "file"],
    encoder: Any,
    cache: ModalityCache | None,
    source: str,
    shard_size: int = 2048,
    items: tuple[int, int] = (0, 1),
) -> ModalityResult:
    """Vectors for every item; ``inputs[i]`` is a text, a file path, or None/"" (no input).

    ``encoder.encode(list)`` returns an array (text) or ``(vectors, ok, reasons)`` (files).
    ``items = (index, count)``: only the cache misses among items ``[index * n // count,
    (index + 1) * n // count)`` are encoded (one machine's share of the catalogue; the others
    stay unmasked unless cached).
    """
    start = time.perf_counter()
    n = len(item_ids)
    if len(inputs) != n:
        raise ValueError(f"{name}: {len(inputs)} inputs for {n} items")
    vectors = np.zeros((n, encoder.dim), dtype=np.float32)
    mask = np.zeros(n, dtype=bool)
    failures: list[dict[str, str]] = []

    keys: dict[int, str] = {}
    for i, value in enumerate(
        tqdm(
            inputs,
            desc=f"{name}: fingerprint inputs",
            leave=False,
            disable=input_kind == "text" or n < 2000,
        )
    ):
        if not _present(value):
            continue
        digest = content_hash(str(value)) if input_kind == "text" else file_hash(value)
        if digest is None:
            failures.append(
                report_entry("featurize", item_ids[i], name, value, "missing or unreadable file")
            )
            continue
        keys[i] = item_key(str(item_ids[i]), digest)

    positions = np.fromiter(keys, dtype=np.int64, count=len(keys))
    n_cached = 0
    if cache is not None and len(positions):
        hits, cached = cache.lookup([keys[i] for i in positions])
        if cached is not None:
            vectors[positions[hits]] = cached
            mask[positions[hits]] = True
            n_cached = int(hits.sum())
        todo = positions[~hits]
    else:
        todo = positions
    index, count = items
    if count > 1:
        begin, end = index * n // count, (index + 1) * n // count
        todo = todo[(todo >= begin) & (todo < end)]
        logger.info("%s: items %d-%d of %d (share %d of %d)", name, begin, end, n, index, count)

    with tqdm(total=len(todo), desc=f"{name}: encoding", unit="item", disable=not len(todo)) as bar:
        for begin in range(0, len(todo), shard_size):
            chunk = todo[begin : begin + shard_size]
            batch_inputs = [inputs[i] for i in chunk]
            if input_kind == "text":
                chunk_vectors = encoder.encode(batch_inputs, progress=bar.update)
                ok, reasons = np.ones(len(chunk), dtype=bool), {}
            else:
                chunk_vectors, ok, reasons = encoder.encode(batch_inputs, progress=bar.update)
            for local, reason in sorted(reasons.items()):
                failures.append(
                    report_entry(
                        "featurize", item_ids[chunk[local]], name, batch_inputs[local], reason
                    )
                )
            vectors[chunk[ok]] = chunk_vectors[ok]
            mask[chunk[ok]] = True
            if cache is not None:
                cache.append([keys[i] for i in chunk[ok]], chunk_vectors[ok])

    result = ModalityResult(
        name=name,
        vectors=vectors,
        mask=mask,
        source=source,
        failures=failures,
        n_with_input=len(keys) + sum(f["reason"] == "missing or unreadable file" for f in failures),
        n_cached=n_cached,
        n_computed=int(len(todo)),
        seconds=time.perf_counter() - start,
    )
    logger.info(
        "%s: %d items, %d usable, %d from cache, %d encoded, %d failed in %.1fs",
        name,
        n,
        int(mask.sum()),
        n_cached,
        len(todo),
        len(failures),
        result.seconds,
    )
    return result


def check_media_budget(
    result: ModalityResult,
    item_ids: Sequence[str],
    paths: Sequence[Any],
    ingest_report: Sequence[dict],
    max_bad_share: float,
) -> None:
    """Check the run's one bad-media budget on ingest's and this stage's failures together.

    ``paths`` are the items' current paths (ingest set its bad ones to None); ingest's entries
    for items still in the table count both as bad and as items that had a path, so the share
    is the same one ingest would have seen had it decoded every file. Raises
    :class:`BadMediaError` listing every bad item; records the totals in ``result.budget``.
    """
    ids = [str(i) for i in item_ids]
    known = set(ids)
    earlier = [e for e in ingest_report if e["modality"] == result.name and e["item_id"] in known]
    with_path = {i for i, p in zip(ids, paths, strict=True) if _present(p)}
    with_path |= {e["item_id"] for e in earlier}
    entries = [*earlier, *result.failures]
    n_bad = len({e["item_id"] for e in entries})
    result.budget = {
        "n_with_path": len(with_path),
        "n_unusable": n_bad,
        "n_unusable_at_ingest": len({e["item_id"] for e in earlier}),
        "max_bad_share": max_bad_share,
    }
    problem = budget_problem(entries, len(with_path), result.name, max_bad_share)
    if problem is not None:
        raise BadMediaError(f"{result.name}: {problem}")
    if result.failures:
        logger.warning(
            "%s: %d files unusable at featurize, %d of %d in all with ingest's (%.1f%%); masked, "
            "see the merged media report",
            result.name,
            len(result.failures),
            n_bad,
            len(with_path),
            100 * n_bad / max(len(with_path), 1),
        )


def merge_media_report(ingest_report: Sequence[dict], results: Sequence[ModalityResult]) -> list:
    """Ingest's report plus every featurize failure, in report order."""
    return sort_report([*ingest_report, *(f for r in results for f in r.failures)])


def precomputed_block(name: str, matrix: np.ndarray, n_items: int) -> dict[str, Any]:
    """A dataset-shipped matrix as a modality: rows of zeros or non-finite values are masked."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != n_items:
        raise ValueError(
            f"precomputed feature '{name}' has shape {matrix.shape}; expected ({n_items}, d) "
            "rows aligned to item_idx"
        )
    vectors = matrix.astype(np.float32, copy=True)
    finite = np.isfinite(vectors).all(axis=1)
    vectors[~finite] = 0.0
    mask = finite & (np.abs(vectors).sum(axis=1) > 0)
    return {"vectors": vectors, "mask": mask, "source": f"precomputed:{name}"}


def select_names(names: Sequence[str], include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """Names matching any ``include`` glob and no ``exclude`` glob, in input order."""
    return [
        n
        for n in names
        if any(fnmatch.fnmatch(n, p) for p in include)
        and not any(fnmatch.fnmatch(n, p) for p in exclude)
    ]
