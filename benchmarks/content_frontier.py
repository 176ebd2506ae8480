"""How much of content's tail gain can two trained models keep without costing the head?

    .venv/bin/python benchmarks/content_frontier.py --data-dir data \
        --dataset movielens100k_multimodal --bundles bundles_ml --seeds 2026,2027,2028

Reads (or trains) the same two models per seed as ``warm_ablation.py``'s ``mix`` variant: the
default model with content and its no-content twin (``--bundles`` shares warm_ablation's
folder, so nothing retrains). Then it scores three families of combinations of the pair on the
main test slice and reports, for every point, what the content targets ask about:

- overall Recall / NDCG@20 against the twin (target: at least ``-margin``),
- Recall@20 of the most popular fifth of held-out pairs against the twin (at least
  ``-head_loss``),
- the share of the default model's gain on the two least popular fifths that the point keeps,
  counted in hits (at least ``tail_kept``).

Families:

- ``mix``: ``model.content_mix``'s score mix (``crossrec.models.content_mix``) over a wider grid
  than its validation choice searches (tau x slope x scale).
- ``slots``: the twin's top 20 with ``m`` of its slots handed to the content model's best items
  among the least popular ones (train degree below the ``tail`` fifth's upper edge), optionally
  only those whose per-user z-score reaches ``theta``; the slot given up is the twin's last
  one, or its last one outside the most popular fifth (``keep_head``).
- ``mix_slots``: the same slots over the lists of a few mix points (``MIX_SLOT_BASES``) instead
  of the twin's.

Every point is chosen by its TEST values: each family's best point is an upper bound on what a
validation choice of that family can reach, not a result a user would get. A target that no
point of any family reaches is out of reach of these families over these two models.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

MIX_TAUS = (0, 5, 10, 25, 50, 100, 200, 400, 1000, math.inf)
MIX_SLOPES = (0.5, 1, 2, 4)
MIX_SCALES = (0.25, 0.5, 1, 2, 4)
SLOT_COUNTS = (1, 2, 3)
SLOT_THETAS = (None, 1.5, 2.0, 2.5)
#: (tau, slope, scale) of the mixes whose lists ``mix_slots`` hands slots from
MIX_SLOT_BASES = (
    (100, 0.5, 1), (200, 0.5, 1), (400, 0.5, 1), (400, 1, 1), (400, 2, 1), (1000, 1, 1)
)


@dataclass
class Outcome:
    """One combination's test values, pooled over seeds."""

    recall: np.ndarray  # per user, mean over seeds
    ndcg: np.ndarray
    bucket_hits: np.ndarray  # (5,) mean hits per popularity fifth


@dataclass(frozen=True)
class Targets:
    margin: float
    head_loss: float
    tail_kept: float


def base_config() -> dict:
    """The finetune defaults with warm_ablation's training settings (same bundles)."""
    import yaml

    from crossrec.config import deep_merge

    base = yaml.safe_load((ROOT / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    trainer = {"cpu_threads": 1, "max_epochs": 100, "patience": 8, "accelerator": "cpu"}
    return deep_merge(base, {"trainer": trainer, "model": {"content_mix": {"kind": "popularity"}}})


def mix_points() -> list:
    """The wide mix grid, without points that score alike (tau 0 or inf ignores the slope)."""
    from crossrec.models.content_mix import MixChoice

    points = []
    for tau, slope, scale in itertools.product(MIX_TAUS, MIX_SLOPES, MIX_SCALES):
        if tau in (0, math.inf) and slope != 1:
            continue
        if tau == math.inf and scale != 1:
            continue
        points.append(MixChoice(float(tau), float(slope), float(scale)))
    return points


def slot_points() -> list[tuple]:
    """(base list, tail fifths, slots, theta, keep_head) of the slot family: the twin's list."""
    return list(itertools.product([None], (2, 3), SLOT_COUNTS, SLOT_THETAS, (False, True)))


def mix_slot_points() -> list[tuple]:
    """The slot family over the lists of the mix points that lead overall on the frontier."""
    from crossrec.models.content_mix import MixChoice

    bases = [MixChoice(*point) for point in MIX_SLOT_BASES]
    return list(itertools.product(bases, (2, 3), SLOT_COUNTS, [None], [True]))


class SeedScores:
    """One seed's twin and content z-scores for the main slice's users, and their metrics."""

    def __init__(self, twin, content, degree, piece, truth, users, bucket, edges):
        import torch

        from crossrec.models.content_mix import standardised

        self.degree, self.bucket, self.edges = degree, bucket, edges
        self.twin_vectors, self.content_vectors = twin, content
        self.users, self.truth = users, truth[users].toarray() > 0
        self.n_relevant = self.truth.sum(axis=1)
        blocked = piece.exclude[users].toarray() > 0
        index = torch.as_tensor(users)

        def z(vectors):
            u, v = standardised(*vectors, "user")
            scores = (u[index] @ v.T).numpy()
            scores[blocked] = -np.inf
            return scores

        self.z_twin, self.z_content = z(twin), z(content)

    def outcome(self, top: np.ndarray) -> Outcome:
        from crossrec.metrics.ranking import metrics_from_hits

        hits = np.take_along_axis(self.truth, top, axis=1)
        metrics = metrics_from_hits(hits, self.n_relevant, [20])
        per_bucket = np.array([((self.bucket[top] == b) & hits).sum() for b in range(5)])
        return Outcome(metrics["recall@20"], metrics["ndcg@20"], per_bucket)

    def top(self, scores: np.ndarray, k: int = 20) -> np.ndarray:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]

    def mix_scores(self, choice) -> np.ndarray:
        from crossrec.models.content_mix import twin_weights

        g = twin_weights(self.degree, choice.tau, choice.slope)[None, :]
        with np.errstate(invalid="ignore"):
            scores = choice.scale * g * self.z_twin + (1.0 - g) * self.z_content
        scores[np.isneginf(self.z_twin)] = -np.inf
        return scores

    def mixed(self, choice) -> Outcome:
        return self.outcome(self.top(self.mix_scores(choice)))

    def slotted(
        self, base, tail_fifths: int, m: int, theta: float | None, keep_head: bool
    ) -> Outcome:
        """``base``'s top 20 (None: the twin's; a MixChoice: that mix's) with ``m`` slots
        handed to the content model's best tail items."""
        import torch

        from crossrec.models.content_mix import slotted_scores

        listed = self.z_twin if base is None else self.mix_scores(base)
        tail = (self.degree > 0) & (self.degree < self.edges[tail_fifths - 1])
        content = self.z_content
        if theta is not None:
            content = np.where(content >= theta, content, -np.inf)
        head = self.bucket == 4 if keep_head else np.zeros(len(self.bucket), dtype=bool)
        scores = slotted_scores(
            *(torch.as_tensor(np.asarray(x)) for x in (listed, content, tail, head)), m, 20
        )
        return self.outcome(self.top(scores.numpy()))


def point_label(family: str, point) -> str:
    if family == "mix":
        return f"tau {point.tau:g}, slope {point.slope:g}, scale {point.scale:g}"
    base, fifths, m, theta, keep_head = point
    over = "twin" if base is None else f"mix {base.tau:g}/{base.slope:g}/{base.scale:g}"
    where = "last non-head slot" if keep_head else "last slot"
    return f"{over}: {m} slot(s) to tail {fifths} fifths, theta {theta}, {where}"


def pooled(outcomes: list[Outcome]) -> Outcome:
    return Outcome(
        np.mean([o.recall for o in outcomes], axis=0),
        np.mean([o.ndcg for o in outcomes], axis=0),
        np.mean([o.bucket_hits for o in outcomes], axis=0),
    )


def judged(point: Outcome, twin: Outcome, today: Outcome, targets: Targets) -> dict:
    """The point's changes against the twin, its share of today's tail gain, and which targets
    it meets."""
    tail_gain = today.bucket_hits[:2].sum() - twin.bucket_hits[:2].sum()
    values = {
        "recall": point.recall.mean() / twin.recall.mean() - 1,
        "ndcg": point.ndcg.mean() / twin.ndcg.mean() - 1,
        "head": point.bucket_hits[4] / max(twin.bucket_hits[4], 1e-12) - 1,
        "kept": (point.bucket_hits[:2].sum() - twin.bucket_hits[:2].sum()) / tail_gain
        if tail_gain > 0
        else math.nan,
    }
    values["overall_ok"] = min(values["recall"], values["ndcg"]) >= -targets.margin
    values["head_ok"] = values["head"] >= -targets.head_loss
    values["tail_ok"] = values["kept"] >= targets.tail_kept
    return values


def frontier(rows: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The rows inside the overall target that no other such row beats on both the head and
    the tail kept: the head / tail trade left once overall accuracy is held."""

    def key(v: dict) -> tuple[float, float]:
        return v["head"], np.nan_to_num(v["kept"], nan=-1)

    inside = [(lab, v) for lab, v in rows if v["overall_ok"]]

    def beaten(a: dict) -> bool:
        return any(
            key(b)[0] >= key(a)[0] and key(b)[1] >= key(a)[1] and key(b) != key(a)
            for _, b in inside
        )

    return [(lab, v) for lab, v in inside if not beaten(v)]


def print_family(name: str, rows: list[tuple[str, dict]], targets: Targets, every: bool) -> None:
    shown = rows if every else frontier(rows)
    which = (
        "every point"
        if every
        else f"the {len(shown)} of {len(rows)} points within {targets.margin:.1%} overall that "
        "no other beats on both head and tail"
    )
    print(f"\n{name}: {which}; changes against the twin, pooled over seeds (chosen on test)")
    print("| point | Recall@20 | NDCG@20 | most popular fifth | tail gain kept | targets met |")
    print("|---|---|---|---|---|---|")
    for label, v in sorted(shown, key=lambda r: -np.nan_to_num(r[1]["kept"], nan=-1)):
        met = "".join(
            flag for flag, ok in (("O", v["overall_ok"]), ("H", v["head_ok"]), ("T", v["tail_ok"]))
            if ok
        )
        print(
            f"| {label} | {v['recall']:+.2%} | {v['ndcg']:+.2%} | {v['head']:+.2%} | "
            f"{v['kept']:.0%} | {met or '-'} |"
        )
    inside = [(lab, v) for lab, v in rows if v["overall_ok"] and v["head_ok"]]
    if inside:
        label, best = max(inside, key=lambda r: np.nan_to_num(r[1]["kept"], nan=-1))
        print(
            f"{name}: most tail gain kept with overall >= -{targets.margin:.1%} and head >= "
            f"-{targets.head_loss:.0%}: {best['kept']:.0%} ({label}; target "
            f"{targets.tail_kept:.0%})"
        )
    else:
        print(f"{name}: no point keeps overall and head within the targets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="movielens100k_multimodal")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--seeds", default="2026,2027,2028")
    parser.add_argument("--bundles", type=Path, default=None, help="warm_ablation's --bundles")
    parser.add_argument("--families", default="mix,slots,mix_slots")
    parser.add_argument("--margin", type=float, default=0.005)
    parser.add_argument("--head-loss", type=float, default=0.01)
    parser.add_argument("--tail-kept", type=float, default=0.8)
    parser.add_argument("--all", action="store_true", help="every point, not only the frontier")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

    import warm_ablation as wa
    from _warm_mix import component_configs

    from crossrec.evaluation.protocol import build_split, ranking_slices
    from crossrec.models.bundle import load_recommender
    from crossrec.models.gate import item_degrees

    targets = Targets(args.margin, args.head_loss, args.tail_kept)
    arts = wa.load_artifacts(args.data_dir, args.dataset)
    info = arts["dataset_info"]
    split = build_split(
        arts["interactions"], arts["items"], int(info["n_users"]), int(info["n_items"]), 0
    )
    main_name = wa.main_slice_name(split)
    piece = next(p for p in ranking_slices(split, [main_name]) if p.name == main_name)
    truth = wa.held_out(piece)
    users = np.unique(truth.nonzero()[0])
    bucket, edges = wa.popularity_buckets(split.popularity, truth, 5)
    content_config, twin_config = component_configs(base_config())
    trained = wa.Trained(args.bundles)
    families = args.families.split(",")
    points = {"mix": mix_points(), "slots": slot_points(), "mix_slots": mix_slot_points()}
    runs: dict = {"twin": [], "today": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        vectors = []
        for config in (twin_config, content_config):
            bundle, data, _ = trained.get(arts, config, seed)
            vectors.append(load_recommender(bundle, data).scoring_vectors())
        scores = SeedScores(
            *vectors, item_degrees(data.train), piece, truth, users, bucket, edges
        )
        runs["twin"].append(scores.outcome(scores.top(scores.z_twin)))
        runs["today"].append(scores.outcome(scores.top(scores.z_content)))
        for family in families:
            for point in points[family]:
                scored = scores.mixed(point) if family == "mix" else scores.slotted(*point)
                runs.setdefault((family, point), []).append(scored)
        print(f"seed {seed} scored", flush=True)
    twin, today = pooled(runs["twin"]), pooled(runs["today"])
    pairs = np.bincount(bucket[truth.indices], minlength=5)
    print(f"\n{args.dataset}, {main_name}, seeds {args.seeds}: Recall@20 by popularity fifth")
    for name, outcome in (("twin", twin), ("content", today)):
        print(
            f"  {name:8s} R@20 {outcome.recall.mean():.4f}  N@20 {outcome.ndcg.mean():.4f}  "
            + "  ".join(f"{h / p:.4f}" for h, p in zip(outcome.bucket_hits, pairs, strict=True))
        )
    print("  " + " ".join(f"{lab}: {v:+.2%}" for lab, v in (
        ("content vs twin R@20", today.recall.mean() / twin.recall.mean() - 1),
        ("head", today.bucket_hits[4] / twin.bucket_hits[4] - 1),
    )))
    for family in families:
        rows = []
        for point in points[family]:
            label = point_label(family, point)
            rows.append((label, judged(pooled(runs[(family, point)]), twin, today, targets)))
        print_family(family, rows, targets, args.all)


if __name__ == "__main__":
    main()
