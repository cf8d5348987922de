"""`diaguide bench generate --quick` writes the JSON a reader of bench/results expects."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
@pytest.mark.native("llama.cpp")
def test_quick_bench_writes_every_engine_and_goal(tmp_path) -> None:
    from diaguide.bench.generate import bench_generate

    out = tmp_path / "generate.json"
    assert bench_generate(out=str(out), quick=True) == 0
    data = json.loads(out.read_text())
    assert data["machine"]["cpu_count"] and data["model"]["base"]
    tf = data["engines"]["transformers"]
    for run in (tf["one_at_a_time"], tf["batched"]):
        assert run["visits"] == 3 and run["new_tokens"] > 0 and run["tokens_per_s"] > 0
        assert 0 <= run["stopped_at_repeated_line"] <= 3
    assert tf["batched_speedup"] == pytest.approx(  # written to 2 decimals
        tf["batched"]["visits_per_s"] / tf["one_at_a_time"]["visits_per_s"], abs=0.006
    )
    assert set(data["goals"]) >= {"batched_speedup"}
    for goal in data["goals"].values():
        assert isinstance(goal["met"], bool)
    cpp = [v for k, v in data["engines"].items() if k.startswith("llama.cpp/")]
    if cpp:  # llama-cpp-python installed: the serving engine was measured, latency included
        single = cpp[0]["single_stream"]
        assert single["tokens_per_s"] > 0 and cpp[0]["latency"]["p50_s"] > 0
        # decoding alone is faster than decoding with the prompt reading counted in
        assert single["first_token_s_mean"] > 0 and single["decode_tokens_per_s"] > single["tokens_per_s"]
        assert {"serving_tokens_per_s", "single_visit_p50_s"} <= set(data["goals"])
        # the bundled base model is always measured in the same run, as this machine's reference
        assert "llama.cpp/bundled_q4_1" in data["engines"]
        goal = data["goals"]["serving_tokens_per_s"]
        assert goal["value"] == single["decode_tokens_per_s"] and goal["with_prompt_reading"] == single["tokens_per_s"]
        if data["model"]["fine_tuned"]:  # the base model measured beside it, both ways
            ref = goal["base_q4_1_same_run"]
            assert ref["decode"] > ref["with_prompt_reading"] > 0
            assert goal["decode_vs_base_q4_1"] == pytest.approx(goal["value"] / ref["decode"], abs=0.001)
