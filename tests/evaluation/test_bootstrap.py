"""Bootstrap intervals: deterministic by seed, around the point estimate, undefined stays undefined."""

from __future__ import annotations

import random

import numpy as np
import pytest

from diaguide.evaluation.bootstrap import draw_counts, intervals


def rows(n: int = 60, seed: int = 1) -> list[dict[str, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tp, fp, fn = rng.randint(0, 3), rng.randint(0, 2), rng.randint(0, 2)
        out.append({"n": 1, "med_tp": tp, "med_fp": fp, "med_fn": fn, "parsed": rng.random() < 0.8})
    return out


def test_same_seed_same_intervals_other_seed_other_intervals():
    data = rows()
    a = intervals(data, ["med_class_f1", "parse_rate"], resamples=300, seed=7)
    b = intervals(data, ["med_class_f1", "parse_rate"], resamples=300, seed=7)
    c = intervals(data, ["med_class_f1", "parse_rate"], resamples=300, seed=8)
    assert a == b
    assert (
        a["med_class_f1"]["low"] != c["med_class_f1"]["low"] or a["med_class_f1"]["high"] != c["med_class_f1"]["high"]
    )


def test_interval_contains_the_point_estimate_and_the_estimate_is_the_full_data_value():
    data = rows()
    tp = sum(r["med_tp"] for r in data)
    fp = sum(r["med_fp"] for r in data)
    fn = sum(r["med_fn"] for r in data)
    out = intervals(data, ["med_class_f1", "med_class_recall", "parse_rate"], resamples=1000, seed=0)
    assert out["med_class_f1"]["value"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    for cell in out.values():
        assert cell["low"] < cell["value"] < cell["high"]
        assert cell["low"] >= 0.0 and cell["high"] <= 1.0


def test_more_visits_give_a_narrower_interval():
    small = intervals(rows(20), ["parse_rate"], resamples=500)["parse_rate"]
    large = intervals(rows(400), ["parse_rate"], resamples=500)["parse_rate"]
    assert (large["high"] - large["low"]) < (small["high"] - small["low"])


def test_constant_data_gives_a_zero_width_interval_and_undefined_stays_none():
    data = [{"n": 1, "unsafe_unflagged": 0, "med_tp": 0, "med_fp": 0, "med_fn": 0} for _ in range(10)]
    out = intervals(data, ["unsafe_unflagged_rate", "med_class_precision"], resamples=100)
    assert out["unsafe_unflagged_rate"] == {"value": 0.0, "low": 0.0, "high": 0.0}
    assert out["med_class_precision"] == {"value": None, "low": None, "high": None}
    assert intervals([], ["parse_rate"])["parse_rate"] == {"value": None, "low": None, "high": None}


def test_each_resample_draws_n_visits_and_groups_move_together():
    counts = draw_counts(5, 50, seed=0)
    assert counts.shape == (50, 5) and (counts.sum(axis=1) == 5).all()
    grouped = draw_counts(4, 50, seed=0, groups=["a", "a", "b", "b"])
    assert np.array_equal(grouped[:, 0], grouped[:, 1]) and np.array_equal(grouped[:, 2], grouped[:, 3])
