"""The training benchmark's quick mode: both paths measured in one run, JSON a person can read."""

import json

from diaguide.bench.train import bench_train


def test_quick_bench_writes_both_paths_and_their_ratio(tmp_path):
    out = tmp_path / "bench.json"
    assert bench_train(out=str(out), quick=True) == 0
    report = json.loads(out.read_text())
    ours, base = report["ours"], report["baseline"]
    # the same examples once each: the same real tokens, though the baseline also computed padding
    assert ours["tokens"] == base["tokens"] == report["examples"]["real_tokens"]
    assert base["padded_tokens"] > base["tokens"]
    assert ours["tokens_per_s"] > 0 and base["tokens_per_s"] > 0
    assert report["ratio_tokens_per_s"] == round(ours["tokens_per_s"] / base["tokens_per_s"], 3)
    assert "versions" in report["machine"] and report["quick"] is True
