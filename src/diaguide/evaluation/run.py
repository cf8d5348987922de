"""`diaguide evaluate`: every engine on the held-out visits, scored part by part, with intervals.

Writes `OUT/metrics.json` (figures with bootstrap 95% intervals per engine, overall, by
language and by complexity stratum), `OUT/visits/<engine>.jsonl` (per-visit scores, ids and
drug classes only: no patient text), `OUT/predictions/<engine>.jsonl` (the model engines'
answers, so a stopped run resumes; see cache.py) and `OUT/report.html`. Model engines are
also run without the visit history, as `<engine>@no_history` (`--ablation` picks which).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diaguide.errors import DiaGuideError, InputError
from diaguide.evaluation import bootstrap, cache
from diaguide.evaluation.candidates import (
    CANDIDATES,
    MODEL_CANDIDATES,
    NO_HISTORY,
    Candidate,
    CandidateUnavailable,
    CarryForwardCandidate,
    Prediction,
    RulesCandidate,
)
from diaguide.evaluation.cases import cases_fingerprint, load_cases, score_cases
from diaguide.evaluation.data import Example, default_dataset, read_examples, sha256_of, training_cohort
from diaguide.evaluation.lineup import build_candidate
from diaguide.evaluation.metrics import visit_columns
from diaguide.evaluation.model_candidates import adapter_dir
from diaguide.evaluation.scoring import action_confusion, score_predictions
from diaguide.knowledge import guideline
from diaguide.knowledge.conditions import facts_once
from diaguide.knowledge.regions import resolve_region
from diaguide.safety.complexity import complexity

RULE_BASED = (RulesCandidate, CarryForwardCandidate)  # quick and deterministic: not saved, no history ablation
LEVELS = ("low", "moderate", "high")
CHUNK = 8  # visits generated between two saves of the predictions
LANGUAGES = ("en", "zh")
BASELINES = ("carry_forward",)  # run whatever engines are asked for


def _strata(rows: list[dict[str, Any]], resamples: int, seed: int, unit: str) -> dict[str, Any]:
    def block(subset: list[dict[str, Any]]) -> dict[str, Any]:
        cols = [r["columns"] for r in subset]
        groups = [r["patient_id"] for r in subset] if unit == "patient" else None
        return {"n": len(subset), "metrics": bootstrap.intervals(cols, resamples=resamples, seed=seed, groups=groups)}

    return {
        "overall": block(rows),
        "by_language": {lang: block([r for r in rows if r["language"] == lang]) for lang in LANGUAGES},
        "by_complexity": {lvl: block([r for r in rows if r["complexity"] == lvl]) for lvl in LEVELS},
    }


def _run_engine(
    engine: Candidate, label: str, examples: list[Example], include_history: bool, context: dict[str, Any]
) -> dict[str, Any]:
    visits = [e.visit for e in examples]

    def predict(indices: list[int]) -> list[Prediction]:
        got = engine.predict([visits[i] for i in indices], include_history)
        if len(got) != len(indices):
            raise RuntimeError(f"engine {label} returned {len(got)} predictions for {len(indices)} visits")
        return got

    saved = _saved_answers(engine, context["out"], f"{label}.jsonl")
    stamp = cache.fingerprint(
        label=label,
        model=getattr(engine, "info", None),
        include_history=include_history,
        region=context["region"],
        dataset=context["dataset_sha256"],
    )
    started = time.perf_counter()
    predictions, reused = cache.predict_resumable(saved, stamp, [e.id for e in examples], predict, chunk=CHUNK)
    seconds = time.perf_counter() - started
    if reused:
        print(f"diaguide evaluate: {label}: reused {reused} saved predictions", file=sys.stderr)
    rows = score_predictions(examples, predictions, context["guideline"], context["levels"], context["region"])
    for example, row in zip(examples, rows, strict=True):
        row["patient_id"] = example.patient_id
    status = {s: sum(p.status == s for p in predictions) for s in ("ok", "partial", "no_suggestion")}
    return {
        "label": label,
        "rows": rows,
        "summary": {
            "n": len(examples),
            "include_history": include_history,
            "model": getattr(engine, "info", None),
            "guideline_line": getattr(engine, "guideline_line", False),
            "status": status,
            "seconds": round(seconds, 3),
            "reused_predictions": reused,
            "visits_per_s": round((len(examples) - reused) / seconds, 3)
            if seconds > 0 and reused < len(examples)
            else None,
            **_strata(rows, context["resamples"], context["seed"], context["unit"]),
            "action_confusion": action_confusion(rows),
        },
    }


def _saved_answers(engine: Candidate, out: Path, name: str) -> Path | None:
    """Where a model engine's answers are kept for resuming (None for the rules engine: quick, not saved)."""
    return None if isinstance(engine, RULE_BASED) else out / "predictions" / name


@facts_once()  # each visit's facts read once for the guideline reference, the complexity, every candidate and the scores
def evaluate(
    out: str | Path,
    engines: Sequence[str | Candidate] = CANDIDATES,
    limit: int | None = None,
    lang: str | None = None,
    dataset: str | Path | None = None,
    region: str | None = None,
    resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = bootstrap.DEFAULT_SEED,
    history_ablation: bool | Sequence[str] = True,
    bootstrap_unit: str = "visit",
    cases: str | Path | None = None,
    cases_engines: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score the engines on the dataset's test split; write metrics.json, visits/ and report.html.

    Args:
        out: output folder.
        engines: engine names (`base`, `lora`, `ptuning_v2`, `rules`, `carry_forward`) or engine objects;
            `carry_forward` is added when missing (`with_baselines`; named in `config.baselines_added`).
        limit: score only N test visits (after the language filter), spread evenly over the split.
        lang: keep only visits in this language (`en` or `zh`).
        dataset: a dataset folder with test.jsonl; None builds the default cohort under var/.
        region: guideline region for the rules engine and the safety checker.
        resamples: bootstrap resamples; seed: their seed (same seed, same intervals).
        history_ablation: also run the model engines without the visit history: True for
            every model engine, False for none, or the names of those to run.
        bootstrap_unit: `visit` (resample visits) or `patient` (resample whole patients, which
            accounts for visits of one patient being alike; wider intervals).
        cases: a folder of hand-written cases (see cases.py); each engine's plans for them are
            checked against the guideline's expectations, under `cases` in its summary.
        cases_engines: the engines checked on the cases (None: every engine).

    Returns:
        The metrics.json content, plus `skipped` (engine -> reason) and `errors` (bad dataset lines).

    Raises:
        InputError: bad `lang`/`limit`, or a dataset folder without test.jsonl.
    """
    if lang not in (None, *LANGUAGES):
        raise InputError(f"unknown language {lang!r}; expected en or zh", field="lang")
    if limit is not None and limit < 1:
        raise InputError("must be at least 1", field="limit")
    if bootstrap_unit not in ("visit", "patient"):
        raise InputError(
            f"unknown bootstrap unit {bootstrap_unit!r}; expected visit or patient", field="bootstrap_unit"
        )
    region = resolve_region(region)
    engines, added = with_baselines(engines)
    for name in added:
        print(f"diaguide evaluate: added engine {name}: no evaluation leaves out this baseline", file=sys.stderr)
    case_list = load_cases(cases) if cases is not None else None
    cohort, cohort_source = training_cohort([d for d in map(adapter_dir, MODEL_CANDIDATES) if d is not None])
    folder = Path(dataset) if dataset is not None else default_dataset(cohort=cohort)
    examples, errors = read_examples(folder)
    total = len(examples)
    if lang:
        examples = [e for e in examples if e.language == lang]
    if limit is not None and limit < len(examples):
        # spread over the split (visits are grouped by patient): a short run still sees many patients
        examples = [examples[i * len(examples) // limit] for i in range(limit)]
    if not examples:
        raise InputError("no test visits left to score" + (f" in language {lang}" if lang else ""), source=str(folder))
    context = {
        "out": Path(out),
        "dataset_sha256": sha256_of(folder / "test.jsonl"),
        "region": region,
        "resamples": resamples,
        "seed": seed,
        "unit": bootstrap_unit,
        "guideline": [guideline.recommend(e.visit, region=region) for e in examples],
        "levels": [complexity(e.visit, region=region).level for e in examples],
    }
    results: dict[str, Any] = {}
    per_visit: dict[str, list[dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    for item in engines:
        try:
            engine = build_candidate(item, region=region) if isinstance(item, str) else item
        except CandidateUnavailable as exc:
            skipped[exc.name] = exc.reason
            print(f"diaguide evaluate: skipped engine {exc.name}: {exc.reason}", file=sys.stderr)
            continue
        runs = [(engine.name, True)]
        ablate = history_ablation if isinstance(history_ablation, bool) else engine.name in history_ablation
        if ablate and not isinstance(engine, RULE_BASED):
            runs.append((engine.name + NO_HISTORY, False))
        for label, include_history in runs:
            try:
                done = _run_engine(engine, label, examples, include_history, context)
            except DiaGuideError as exc:  # e.g. a model that fails to generate: the others still run
                skipped[label] = f"failed while generating: {exc.line()}"
                print(f"diaguide evaluate: skipped engine {label}: {skipped[label]}", file=sys.stderr)
                continue
            results[label], per_visit[label] = done["summary"], done["rows"]
            if case_list is not None and include_history and (cases_engines is None or engine.name in cases_engines):
                try:
                    saved = _saved_answers(engine, context["out"], f"{label}.cases.jsonl")
                    stamp = cache.fingerprint(
                        label=label, model=getattr(engine, "info", None), cases=cases_fingerprint(case_list)
                    )
                    results[label]["cases"] = score_cases(engine, case_list, saved=saved, stamp=stamp)
                except DiaGuideError as exc:
                    print(f"diaguide evaluate: {label}: hand-written cases failed: {exc.line()}", file=sys.stderr)
    metrics = {
        "engines": results,
        "reference": _physician_reference(examples, context),
        "skipped": skipped,
        "dataset": {
            "path": str(folder),
            "file": "test.jsonl",
            "sha256": context["dataset_sha256"],
            "n": len(examples),
            "n_in_split": total,
            "bad_lines": len(errors),
            "default_cohort": {**cohort, "from": cohort_source} if dataset is None else None,
        },
        "config": {
            "engines": [e if isinstance(e, str) else e.name for e in engines],
            "baselines_added": added,
            "limit": limit,
            "lang": lang,
            "region": region,
            "bootstrap": {"resamples": resamples, "seed": seed, "unit": bootstrap_unit, "interval": "percentile 95%"},
            "cases": str(cases) if cases is not None else None,
            "history_ablation": history_ablation if isinstance(history_ablation, bool) else list(history_ablation),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "machine": _machine(),
    }
    _write(Path(out), metrics, per_visit)
    return {**metrics, "errors": errors}


def with_baselines(engines: Sequence[str | Candidate]) -> tuple[list[str | Candidate], list[str]]:
    """The engines with every baseline of `BASELINES` they lack appended, and the names appended: a model is
    only worth serving where it beats doing nothing (docs/evaluation.md, baselines)."""
    names = {e if isinstance(e, str) else e.name for e in engines}
    added = [b for b in BASELINES if b not in names]
    return [*engines, *added], added


def _physician_reference(examples: list[Example], context: dict[str, Any]) -> dict[str, Any]:
    """How often the physicians' own glucose-lowering classes equal the guideline engine's: the
    ceiling context for every engine's `guideline_concordance`."""
    rows = []
    for example, reference in zip(examples, context["guideline"], strict=True):
        columns = visit_columns(
            truth=example.plan,
            proposed=example.plan,
            output=example.plan,
            parsed=True,
            proposed_findings=[],
            output_findings=[],
            guideline=reference,
            text={},
        )
        rows.append(columns)
    cell = bootstrap.intervals(rows, ["guideline_concordance"], context["resamples"], context["seed"])
    return {"physician_guideline_concordance": cell["guideline_concordance"]}


def _machine() -> dict[str, Any]:
    from diaguide.machine import machine_info

    return machine_info()


def _write(out: Path, metrics: dict[str, Any], per_visit: dict[str, list[dict[str, Any]]]) -> None:
    from diaguide.evaluation.report import write_report

    try:
        (out / "visits").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder ({exc.strerror})", source=str(out), field="out") from None
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for label, rows in per_visit.items():
        with (out / "visits" / f"{label}.jsonl").open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    write_report(out, metrics, per_visit)


def evaluate_command(
    out: str,
    engines: str = ",".join(CANDIDATES),
    limit: int | None = None,
    lang: str | None = None,
    dataset: str | None = None,
    ablation: str = "all",
    cases: str | None = None,
    cases_engines: str | None = None,
) -> int:
    """`diaguide evaluate`: 0 when every engine ran and every test line was read, else 1.

    `ablation`: which model engines also run without the visit history (`all`, `none`, or
    names separated by commas)."""
    names = _engine_names(engines, "engines", CANDIDATES)
    ablate: bool | list[str] = (
        True
        if ablation == "all"
        else False
        if ablation == "none"
        else _engine_names(ablation, "ablation", MODEL_CANDIDATES)
    )
    result = evaluate(
        out,
        engines=names,
        limit=limit,
        lang=lang,
        dataset=dataset,
        history_ablation=ablate,
        cases=cases,
        cases_engines=_engine_names(cases_engines, "cases_engines", CANDIDATES) if cases_engines else None,
    )
    for line in result["errors"]:
        print(f"diaguide evaluate: error: {line}", file=sys.stderr)
    for label, summary in result["engines"].items():
        m = summary["overall"]["metrics"]
        print(
            f"{label:<24} n={summary['n']:<5} med_class_f1={_fmt(m['med_class_f1']['value'])} "
            f"drug_f1={_fmt(m['drug_f1']['value'])} drug_jaccard={_fmt(m['drug_jaccard']['value'])} "
            f"action_f1.change={_fmt(m['action_f1.change']['value'])} "
            f"parse_rate={_fmt(m['parse_rate']['value'])} unsafe_unflagged={_fmt(m['unsafe_unflagged_rate']['value'])}"
            + (
                f" cases={summary['cases']['concordant']}/{summary['cases']['n']}"
                f" unsafe_unflagged_cases={summary['cases']['unsafe_unflagged']}"
                if "cases" in summary
                else ""
            )
        )
    print(f"wrote {Path(out) / 'metrics.json'} and {Path(out) / 'report.html'}")
    return 1 if result["skipped"] or result["errors"] else 0


def _engine_names(text: str, field: str, allowed: Sequence[str]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise InputError(f"unknown engine {', '.join(unknown) or '(none)'}; expected {','.join(allowed)}", field=field)
    return names


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
