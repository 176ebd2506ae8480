"""Recall by the popularity of the held-out item: where a model's hits come from.

Content lifts rarely seen items and can cost the popular ones, which hold most of the hits;
an average over all pairs hides that trade. Every ranking pass records, per slice, how many
held-out pairs of each popularity bucket made the top K (buckets: the item's train
interactions, edges at quantiles of the slice's held-out pairs, so each holds about 1/n of
them, the same edges for every model). ``by_popularity_block`` turns the runs of every model
into the table the report shows (``significance.json: by_popularity``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp


def held_out_pairs(truth: sp.spmatrix, candidates: np.ndarray | None) -> sp.csr_matrix:
    """The slice's held-out (user, item) pairs as a 0/1 csr matrix, candidate items only."""
    pairs = sp.csr_matrix(truth, dtype=np.float32, copy=True)
    pairs.sum_duplicates()
    pairs.eliminate_zeros()
    if candidates is not None:
        pairs = pairs.multiply(candidates[None, :].astype(np.float32)).tocsr()
        pairs.eliminate_zeros()
    pairs.data[:] = 1.0
    return pairs


def bucket_edges(popularity: np.ndarray, pairs: sp.csr_matrix, n_buckets: int) -> np.ndarray:
    """Popularity edges at quantiles of the held-out pairs (each bucket ~1/n of the pairs)."""
    per_item = np.asarray(pairs.sum(axis=0)).ravel().astype(np.int64)
    if not per_item.sum() or n_buckets < 2:
        return np.array([], dtype=np.float64)
    pair_pop = np.repeat(np.asarray(popularity, np.float64), per_item)
    return np.unique(np.quantile(pair_pop, np.linspace(0, 1, n_buckets + 1)[1:-1]))


def bucket_labels(edges: Sequence[float]) -> list[str]:
    """``lo-hi`` train interactions per bucket (an item on an edge is in the upper bucket)."""
    bounds = [0, *np.ceil(np.asarray(edges)).astype(int).tolist(), None]
    return [
        f"{lo}-{'max' if hi is None else hi - 1}"
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def popularity_hits(
    ranked: np.ndarray,
    users: np.ndarray,
    truth: sp.spmatrix,
    candidates: np.ndarray | None,
    popularity: np.ndarray,
    k: int,
    n_buckets: int,
) -> dict[str, list]:
    """``{"edges", "held_out", "hits"}``: per bucket, the slice's held-out pairs and those
    found in their user's top ``k`` (``ranked`` / ``users`` as ``rank_and_evaluate`` returns)."""
    from crossrec.metrics.ranking import hit_matrix

    pairs = held_out_pairs(truth, candidates)
    edges = bucket_edges(popularity, pairs, n_buckets)
    bucket = np.searchsorted(edges, popularity, side="right")
    n = len(edges) + 1
    per_item = np.asarray(pairs.sum(axis=0)).ravel()
    top = ranked[:, :k]
    found = hit_matrix(top, users, pairs, k)[:, : top.shape[1]]
    hits = np.bincount(top[found], minlength=pairs.shape[1])
    return {
        "edges": edges.tolist(),
        "held_out": np.bincount(bucket, weights=per_item, minlength=n).astype(int).tolist(),
        "hits": np.bincount(bucket, weights=hits, minlength=n).astype(int).tolist(),
    }


def by_popularity_block(
    runs_by_model: Mapping[str, Sequence[Mapping]], slice_name: str, k: int
) -> dict:
    """Recall@k per popularity bucket of every model (mean over its seeds) on ``slice_name``,
    with the buckets' labels and shares of the held-out pairs; ``{}`` when no run has it."""
    recall, first = {}, None
    for name, runs in runs_by_model.items():
        entries = [run[slice_name]["popularity"] for run in runs if slice_name in run]
        entries = [e for e in entries if e]
        if not entries:
            continue
        first = first or entries[0]
        if any(e["edges"] != first["edges"] for e in entries):
            continue  # another split: not comparable
        per_seed = [
            np.divide(e["hits"], np.maximum(e["held_out"], 1), dtype=np.float64) for e in entries
        ]
        recall[name] = np.mean(per_seed, axis=0).round(6).tolist()
    if first is None:
        return {}
    held = np.asarray(first["held_out"], np.float64)
    return {
        "slice": slice_name,
        "k": k,
        "buckets": bucket_labels(first["edges"]),
        "shares": (held / max(held.sum(), 1.0)).round(4).tolist(),
        "recall": recall,
    }


def by_popularity_section(block: dict, metrics: Mapping, model: str) -> list[str]:
    """report.md lines: the ``by_popularity`` table, the model first and then its no-content
    twin (``<model> trained w/o content``, with each bucket's change against it), then every
    other model, with coverage and mean popularity (arp) of what each recommends."""
    if not block or not block.get("recall"):
        return []
    k, slice_name, recall = block["k"], block["slice"], block["recall"]
    twin = f"{model} trained w/o content"
    order = [m for m in (model, twin) if m in recall] + [
        m for m in recall if m not in (model, twin)
    ]
    head = ["model"] + [
        f"{label} ({share:.0%})"
        for label, share in zip(block["buckets"], block["shares"], strict=True)
    ]
    head += [f"coverage@{k}", f"arp@{k}"]
    rows = []
    for name in order:
        cells = [f"{v:.4f}" for v in recall[name]]
        if name == model and twin in recall:
            cells = [
                f"{v:.4f} ({v / base - 1:+.1%})" if base > 0 else f"{v:.4f}"
                for v, base in zip(recall[name], recall[twin], strict=True)
            ]
        stats = metrics.get(name, {}).get(slice_name, {})
        breadth = [
            f"{stats[m]['mean']:.3f}" if m in stats else "-" for m in (f"coverage@{k}", f"arp@{k}")
        ]
        rows.append([name, *cells, *breadth])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    twin_note = (
        f" In brackets: {model} against the same configuration trained without content."
        if twin in recall
        else f" (evaluate.trained_ablation: content adds {model}'s no-content twin.)"
    )
    return [
        "## Where the hits are: by item popularity",
        "",
        f"Recall@{k} on {slice_name} of the held-out pairs, grouped by their item's train "
        "interactions (each column holds the share of pairs in brackets; mean over seeds). "
        "Content tends to lift the rarely seen items and can cost the popular ones, which "
        f"hold most of the hits.{twin_note} coverage = share of the catalogue in some "
        f"top-{k}, arp = mean relative train popularity of the recommended items.",
        "",
        "\n".join(lines),
        "",
    ]
