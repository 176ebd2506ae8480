"""Paired significance tests over users: does model A beat model B on the same users?"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
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
