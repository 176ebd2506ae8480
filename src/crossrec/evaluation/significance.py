"""Paired statistics over users: does model A beat model B on the same users (evaluate's
tests), and by how much per step of a timeline, next to the noise of the seed (a replay)?"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class PairedTest:
    """Result of comparing per-user values of two models on the same users."""

    metric: str
    n_users: int
    mean_a: float
    mean_b: float
    mean_diff: float
    wilcoxon_p: float
    ttest_p: float

    def as_dict(self) -> dict:
        return asdict(self)


def paired_test(a: np.ndarray, b: np.ndarray, metric: str = "") -> PairedTest:
    """Two-sided Wilcoxon signed-rank and paired t-test of ``a - b`` over users.

    ``a`` and ``b`` must be aligned (same users, same order) — e.g. per-user values averaged
    over seeds. Identical inputs give p = 1 instead of an error or NaN.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired_test needs two aligned 1-D arrays of per-user values, got {a.shape} and "
            f"{b.shape}"
        )
    diff = a - b
    if len(diff) < 2 or np.allclose(diff, 0.0):
        w_p = t_p = 1.0
    else:
        w_p = float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
        t_p = float(stats.ttest_rel(a, b).pvalue) if np.std(diff) > 0 else 0.0
    return PairedTest(
        metric=metric,
        n_users=len(diff),
        mean_a=float(a.mean()) if len(a) else 0.0,
        mean_b=float(b.mean()) if len(b) else 0.0,
        mean_diff=float(diff.mean()) if len(diff) else 0.0,
        wilcoxon_p=w_p,
        ttest_p=t_p,
    )


def paired_comparison(
    per_user: pd.DataFrame,
    method: str,
    reference: str,
    metric: str = "recall@20",
) -> pd.DataFrame:
    """Per step (``test_slice``): ``method`` minus ``reference`` over the same tested users,
    seeds averaged.

    ``per_user``: one row per (``test_slice``, ``method``, ``seed``, ``user``) with ``metric``.
    Each user's difference is averaged over seeds first (the users tested on a slice are the
    same in every seed when the data is cut by time), then over users: ``diff`` with its 95%
    normal interval (``ci_low``, ``ci_high``), ``relative`` = mean(method) / mean(reference) - 1,
    and how many users score better / worse.
    """
    keys = ["test_slice", "user"]
    pair = per_user[per_user["method"].isin([method, reference])]
    wide = pair.pivot_table(index=[*keys, "seed"], columns="method", values=metric)
    per_seed_user = wide[method] - wide[reference]
    diff = per_seed_user.groupby(level=keys).mean()
    means = wide.groupby(level="test_slice").mean()
    rows = []
    for step, values in diff.groupby(level="test_slice"):
        n = len(values)
        half = 1.96 * float(values.std(ddof=1)) / np.sqrt(n) if n > 1 else float("nan")
        mean = float(values.mean())
        ref = float(means.loc[step, reference])
        rows.append(
            {
                "test_slice": step,
                "users": n,
                method: float(means.loc[step, method]),
                reference: ref,
                "diff": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "relative": float(means.loc[step, method]) / ref - 1 if ref else float("nan"),
                "better": int((values > 0).sum()),
                "worse": int((values < 0).sum()),
            }
        )
    return pd.DataFrame(rows).set_index("test_slice")


def seed_noise(
    frame: pd.DataFrame,
    method: str,
    reference: str = "full_retrain",
    metric: str = "recall@20",
    band: float = 0.02,
) -> pd.DataFrame:
    """Per step (``test_slice``): how far ``method`` is from ``reference`` in the same seed,
    next to how far ``reference`` is from itself in another seed (``frame``: one row per
    ``test_slice``, ``method`` and ``seed``, with ``metric``).

    A "within 2% of a full retrain" criterion means something only if two full retrains that
    differ by nothing but their seed agree that closely. Columns: ``method_gap`` (mean over
    seeds of ``method(s) / reference(s) - 1``), ``method_abs_gap`` (mean of its absolute
    value), ``reference_abs_gap`` (mean over ordered pairs ``s != s'`` of
    ``|reference(s) / reference(s') - 1|``), ``reference_max_gap`` and ``reference_outside``
    (share of those pairs farther apart than ``band``). Steps where ``method`` equals
    ``reference`` in every seed (nothing refreshed yet) are left out.
    """
    wide = frame[frame["method"].isin([method, reference])].pivot_table(
        index=["test_slice", "seed"], columns="method", values=metric
    )
    rows = []
    for step, values in wide.groupby(level="test_slice"):
        ref = values[reference].to_numpy(dtype=float)
        own = values[method].to_numpy(dtype=float)
        if len(ref) < 2 or np.allclose(own, ref):
            continue
        gaps = own / ref - 1
        pairs = np.array(
            [ref[i] / ref[j] - 1 for i in range(len(ref)) for j in range(len(ref)) if i != j]
        )
        rows.append(
            {
                "test_slice": step,
                "seeds": len(ref),
                "method_gap": float(gaps.mean()),
                "method_abs_gap": float(np.abs(gaps).mean()),
                "reference_abs_gap": float(np.abs(pairs).mean()),
                "reference_max_gap": float(np.abs(pairs).max()),
                "reference_outside": float((np.abs(pairs) > band).mean()),
            }
        )
    return pd.DataFrame(rows).set_index("test_slice") if rows else pd.DataFrame()
