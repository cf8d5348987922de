"""Percentile bootstrap 95% intervals for the ratio metrics of `metrics.RATIOS`.

A resample draws n visits with replacement; every metric of the resample is
`sum(numerator columns) / sum(denominator columns)` over the drawn visits, so one draw-count
matrix W (resamples x visits) gives every metric of every resample at once as `W @ columns`.
The interval is the 2.5th and 97.5th percentiles of the resampled values (Efron's percentile
interval); resamples where a metric is undefined (denominator 0) are left out of its
percentiles. Same seed, same draws, same intervals.

Visits of one patient are correlated, so resampling visits (the default, as specified) gives
somewhat narrower intervals than resampling patients; `groups` resamples whole patients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from diaguide.evaluation.metrics import RATIOS

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0


def draw_counts(n: int, resamples: int, seed: int, groups: Sequence[str] | None = None) -> np.ndarray:
    """How often each of n visits is drawn in each resample: an int matrix (resamples x n).

    With `groups` (one label per visit), whole groups are drawn and each visit takes its
    group's count.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        labels, m = np.arange(n), n
    else:
        _, labels = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
        m = int(labels.max()) + 1 if n else 0
    counts = np.zeros((resamples, m), dtype=np.int32)
    if m:
        drawn = rng.integers(0, m, size=(resamples, m))
        rows = np.repeat(np.arange(resamples), m)
        np.add.at(counts, (rows, drawn.ravel()), 1)
    return counts[:, labels] if groups is not None else counts


def _combine(matrix: np.ndarray, index: Mapping[str, int], combo: Mapping[str, float]) -> np.ndarray:
    out = np.zeros(matrix.shape[:-1])
    for column, weight in combo.items():
        if column in index:
            out = out + weight * matrix[..., index[column]]
    return out


def intervals(
    rows: Sequence[Mapping[str, float]],
    metrics: Sequence[str] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    groups: Sequence[str] | None = None,
    level: float = 0.95,
) -> dict[str, dict[str, float | None]]:
    """metric -> {"value", "low", "high"} over the visits' columns (`metrics.visit_columns`).

    `value` is the metric on all visits; `low`/`high` bound the percentile interval. Any of
    the three is None where the metric is undefined (no visit gives it a denominator).
    """
    names = list(metrics or RATIOS)
    columns = sorted({k for row in rows for k in row})
    index = {c: i for i, c in enumerate(columns)}
    data = np.array([[float(row.get(c, 0.0)) for c in columns] for row in rows]).reshape(len(rows), len(columns))
    totals = data.sum(axis=0)
    sums = draw_counts(len(rows), resamples, seed, groups).astype(np.float64) @ data if len(rows) else None
    tail = 100 * (1 - level) / 2
    out: dict[str, dict[str, float | None]] = {}
    for name in names:
        num, den = RATIOS[name]
        d_all = float(_combine(totals, index, den))
        value = float(_combine(totals, index, num)) / d_all if d_all else None
        low = high = None
        if sums is not None:
            d = _combine(sums, index, den)
            ok = d > 0
            if ok.any():
                values = _combine(sums, index, num)[ok] / d[ok]
                low, high = (float(x) for x in np.percentile(values, [tail, 100 - tail]))
        out[name] = {"value": value, "low": low, "high": high}
    return out
