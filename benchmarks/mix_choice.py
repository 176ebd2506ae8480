"""The content mix's choice at a large catalogue: every grid point ranked in one pass over the
users (``crossrec.models.mix_grid.grid_values``, what ``choose_mix`` runs) against ranking each
point as its own scorer (``validation_values`` per point, timed on a sample of points and
extrapolated to the grid), side by side on the same random vectors.

    .venv/bin/python benchmarks/mix_choice.py --items 9659,95385,943226 --users 1000

Data: seeded 64-d user and item vectors for both models, Zipf-like train degrees, 20
excluded and 2 held-out items per user; the default ``content_mix`` grid (199 points, slots
0-2). One torch thread. The sampled points' values are checked against the one pass's.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402


def case(n_items: int, n_users: int, dims: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    twin = (torch.randn(n_users, dims, generator=gen), torch.randn(n_items, dims, generator=gen))
    content = (
        torch.randn(n_users, dims, generator=gen),
        torch.randn(n_items, dims, generator=gen),
    )
    rng = np.random.default_rng(seed)
    degree = np.floor(rng.pareto(1.2, n_items) * 3)
    picked = np.stack([rng.choice(n_items, 22, replace=False) for _ in range(n_users)])

    def pairs(columns: np.ndarray) -> sp.csr_matrix:
        rows = np.repeat(np.arange(n_users), columns.shape[1])
        ones = np.ones(rows.size, np.float32)
        return sp.csr_matrix((ones, (rows, columns.ravel())), (n_users, n_items))

    held, exclude = pairs(picked[:, :2]), pairs(picked[:, 2:])
    return twin, content, degree, held, exclude


def measure(n_items: int, n_users: int, dims: int, sample: int) -> dict:
    from crossrec.models.config import ContentMixConfig
    from crossrec.models.content_mix import (
        grid,
        head_pairs,
        mix_scorer,
        tail_pairs,
        validation_values,
    )
    from crossrec.models.mix_grid import grid_values

    torch.set_num_threads(1)
    twin, content, degree, held, exclude = case(n_items, n_users, dims)
    config = ContentMixConfig()
    points = grid(config)
    subsets = [tail_pairs(held, degree, config.tail_share), head_pairs(held, degree, 0.2)]
    start = time.perf_counter()
    fast = grid_values(twin, content, degree, points, config, held, exclude, subsets)
    one_pass = time.perf_counter() - start
    per_point, differences = {0: [], 1: []}, []
    rng = np.random.default_rng(1)
    for slotted in (0, 1):
        members = [i for i, p in enumerate(points) if (p.slots > 0) == bool(slotted)]
        for i in rng.choice(members, min(sample, len(members)), replace=False):
            start = time.perf_counter()
            scorer = mix_scorer(twin, content, degree, points[i], config)
            slow = validation_values(scorer, held, exclude, "recall", config.k, subsets)
            per_point[slotted].append(time.perf_counter() - start)
            differences.append(np.max(np.abs(np.array(slow) - np.array(fast[i]))))
    counts = {s: sum((p.slots > 0) == bool(s) for p in points) for s in (0, 1)}
    extrapolated = sum(counts[s] * np.mean(per_point[s]) for s in (0, 1))
    return {
        "items": n_items,
        "users": n_users,
        "points": len(points),
        "one_pass_s": one_pass,
        "per_point_s": {s: float(np.mean(per_point[s])) for s in (0, 1)},
        "per_point_total_s": float(extrapolated),
        "max_difference": float(max(differences)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="9659,95385")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--sample", type=int, default=2, help="points timed per kind")
    args = parser.parse_args()
    rows = []
    for n_items in (int(float(x)) for x in args.items.split(",")):
        rows.append(measure(n_items, args.users, args.dims, args.sample))
        print(rows[-1], flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 1 torch thread")
    print("| items | users | grid points | one pass s | one point as its own scorer s "
          "(no slots / slots) | every point so, extrapolated s | ratio | max difference |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['items']:,} | {r['users']:,} | {r['points']} | {r['one_pass_s']:.1f} | "
            f"{r['per_point_s'][0]:.2f} / {r['per_point_s'][1]:.2f} | "
            f"{r['per_point_total_s']:.0f} | {r['per_point_total_s'] / r['one_pass_s']:.1f}x | "
            f"{r['max_difference']:.1e} |"
        )


if __name__ == "__main__":
    main()
