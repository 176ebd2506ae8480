"""Synthetic datasets of a realistic shape for the scale benchmark (``benchmarks/scale.py``).

* item popularity is Zipf-like (weight of the item of popularity rank r: r ** -item_exponent);
* user activity is Zipf-like too (a few heavy users, a long tail of light ones, each user at
  least ``min_per_user`` interactions, about ``n_interactions / 20`` users);
* items fall in clusters; each user prefers one cluster and takes ``cluster_affinity`` of their
  interactions from it (by popularity inside the cluster), the rest from the whole catalogue,
  so content vectors carry collaborative signal;
* two modalities of clustered vectors (``image`` 64-d, ``text`` 384-d by default): the item's
  cluster centre plus noise, float32, written chunk by chunk into ``.npy`` files. The noise is
  isotropic by default (full rank: inside a cluster no item is much nearer than another, the
  hardest case for a nearest-neighbour search); with ``noise_rank`` r it lies in a random
  r-dimensional subspace of each cluster (same expected norm), so the vectors' local intrinsic
  dimension is about r, as in learned embeddings.

Files, read by the generic adapter (``features`` maps a name to a ``.npy`` whose row i is the
item on row i of ``items.csv``): ``interactions.csv`` (user, item, timestamp), ``items.csv``
(item, category), ``image.npy``, ``text.npy``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: rows generated / written at once (bounds the generator's memory at 10^7 interactions)
CHUNK = 1_000_000
#: draws per wanted interaction: popular items repeat within a user and are dropped
OVERDRAW = 1.6


@dataclass
class ScaleSpec:
    n_interactions: int
    n_items: int
    n_users: int
    dims: dict[str, int] = field(default_factory=lambda: {"image": 64, "text": 384})
    item_exponent: float = 0.9
    user_exponent: float = 0.6
    min_per_user: int = 3
    cluster_affinity: float = 0.7
    noise: float = 0.6
    noise_rank: int | None = None
    seed: int = 0

    @property
    def n_clusters(self) -> int:
        return int(max(4, min(1000, round(np.sqrt(self.n_items)))))


def spec_for(
    n_interactions: int, n_items: int | None = None, seed: int = 0, noise_rank: int | None = None
) -> ScaleSpec:
    """The benchmark's shape at a size: items n/10 (10^5 -> 10^4), users n/20."""
    items = n_items if n_items is not None else max(50, n_interactions // 10)
    return ScaleSpec(
        n_interactions, items, max(10, n_interactions // 20), noise_rank=noise_rank, seed=seed
    )


def zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf weights in a random order (popularity is not tied to the id)."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return rng.permutation(weights / weights.sum())


def user_activity(spec: ScaleSpec, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: ``min_per_user`` each, the rest shared by Zipf weights."""
    rest = spec.n_interactions - spec.min_per_user * spec.n_users
    if rest < 0:
        raise ValueError("n_interactions < min_per_user * n_users")
    weights = zipf_weights(spec.n_users, spec.user_exponent, rng)
    counts = rng.multinomial(rest, weights)
    # no user can hold more distinct items than the catalogue
    counts = np.minimum(counts + spec.min_per_user, spec.n_items // 2)
    return counts.astype(np.int64)


def _cluster_sampler(cluster: np.ndarray, popularity: np.ndarray):
    """Items sorted by cluster with cumulative popularity, for in-cluster draws."""
    order = np.argsort(cluster, kind="stable")
    cum = np.cumsum(popularity[order])
    bounds = np.searchsorted(cluster[order], np.arange(cluster.max() + 2))
    lo = np.concatenate([[0.0], cum])[bounds[:-1]]
    hi = cum[bounds[1:] - 1]
    return order, cum, lo, hi


def _draw_items(spec, rng, u, user_cluster, sampler, global_cum) -> np.ndarray:
    """One item per entry of ``u``: from the user's cluster (by popularity inside it) with
    probability ``cluster_affinity``, else from the whole catalogue by popularity."""
    order, cum, lo, hi = sampler
    inside = rng.random(len(u)) < spec.cluster_affinity
    items = np.empty(len(u), dtype=np.int64)
    c = user_cluster[u[inside]]
    draw = lo[c] + rng.random(len(c)) * (hi[c] - lo[c])
    items[inside] = order[np.minimum(np.searchsorted(cum, draw), len(cum) - 1)]
    draw = rng.random(int((~inside).sum())) * global_cum[-1]
    items[~inside] = np.minimum(np.searchsorted(global_cum, draw), spec.n_items - 1)
    return items


def _noise_bases(spec: ScaleSpec, dim: int, rng: np.random.Generator) -> np.ndarray | None:
    """Each cluster's noise subspace (rank x dim, rows of squared norm about dim / rank, so
    the noise keeps the isotropic noise's expected norm); None for isotropic noise."""
    if not spec.noise_rank:
        return None
    rank = spec.noise_rank
    return (rng.normal(size=(spec.n_clusters, rank, dim)) / np.sqrt(rank)).astype(np.float32)


def _noise(spec, part: np.ndarray, dim: int, bases, rng: np.random.Generator) -> np.ndarray:
    """The noise of the items of clusters ``part``: isotropic, or inside their cluster's
    subspace (in blocks, so the gathered bases stay small)."""
    if bases is None:
        return rng.normal(scale=spec.noise, size=(len(part), dim)).astype(np.float32)
    z = rng.normal(scale=spec.noise, size=(len(part), spec.noise_rank)).astype(np.float32)
    out = np.empty((len(part), dim), dtype=np.float32)
    for lo in range(0, len(part), 8192):
        hi = min(lo + 8192, len(part))
        out[lo:hi] = np.einsum("nr,nrd->nd", z[lo:hi], bases[part[lo:hi]])
    return out


def generate(spec: ScaleSpec, folder: Path) -> dict:
    """Write the dataset files into ``folder``; returns a description (also ``spec.json``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    popularity = zipf_weights(spec.n_items, spec.item_exponent, rng)
    cluster = rng.integers(0, spec.n_clusters, spec.n_items)
    cluster[: spec.n_clusters] = np.arange(spec.n_clusters)  # every cluster has an item
    order, cum, lo, hi = _cluster_sampler(cluster, popularity)
    global_cum = np.cumsum(popularity)
    counts = user_activity(spec, rng)
    user_cluster = rng.integers(0, spec.n_clusters, spec.n_users)

    item_ids = np.char.add("i", np.arange(spec.n_items).astype(str))
    pd.DataFrame({"item": item_ids, "category": np.char.add("c", cluster.astype(str))}).to_csv(
        folder / "items.csv", index=False
    )
    path = folder / "interactions.csv"
    t0, written, start = 1_600_000_000, 0, 0
    ends = np.cumsum(counts)
    while start < spec.n_users:  # chunks of whole users, so (user, item) repeats are dropped
        stop = max(start + 1, int(np.searchsorted(ends, ends[start] + CHUNK)))
        want = counts[start:stop]
        # draw with replacement, more than wanted, then keep each user's first distinct items
        u = np.repeat(np.arange(start, stop), np.ceil(want * OVERDRAW).astype(np.int64))
        items = _draw_items(spec, rng, u, user_cluster, (order, cum, lo, hi), global_cum)
        frame = pd.DataFrame({"u": u, "i": items}).drop_duplicates()
        frame = frame[frame.groupby("u").cumcount().to_numpy() < counts[frame["u"].to_numpy()]]
        frame = pd.DataFrame(
            {
                "user": np.char.add("u", frame["u"].to_numpy().astype(str)),
                "item": item_ids[frame["i"].to_numpy()],
                "timestamp": t0 + rng.integers(0, 365 * 86400, len(frame)),
            }
        )
        frame.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)
        written += len(frame)
        start = stop

    for name, dim in spec.dims.items():
        centres = rng.normal(size=(spec.n_clusters, dim)).astype(np.float32)
        bases = _noise_bases(spec, dim, rng)
        out = np.lib.format.open_memmap(
            folder / f"{name}.npy", mode="w+", dtype=np.float32, shape=(spec.n_items, dim)
        )
        for start in range(0, spec.n_items, CHUNK // 4):
            part = cluster[start : start + CHUNK // 4]
            out[start : start + len(part)] = centres[part] + _noise(spec, part, dim, bases, rng)
        out.flush()
        del out
    info = {**asdict(spec), "n_clusters": spec.n_clusters, "rows_written": int(written)}
    (folder / "spec.json").write_text(json.dumps(info, indent=2))
    return info


def dataset_options(spec: ScaleSpec) -> dict:
    """The ``ingest.datasets.<name>`` entry that declares the files for the generic adapter."""
    return {
        "adapter": "generic",
        "options": {
            "interactions_file": "interactions.csv",
            "items_file": "items.csv",
            "user_column": "user",
            "item_column": "item",
            "timestamp_column": "timestamp",
            "item_id_column": "item",
            "features": {name: f"{name}.npy" for name in spec.dims},
        },
        "media": {"check": False},
    }


def top_share(item_counts: np.ndarray, share: float = 0.01) -> float:
    """Share of interactions held by the top ``share`` of items (by count)."""
    ordered = np.sort(np.asarray(item_counts))[::-1]
    top = max(1, int(round(share * len(ordered))))
    return float(ordered[:top].sum() / max(1, ordered.sum()))
