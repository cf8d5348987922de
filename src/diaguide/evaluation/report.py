"""`OUT/report.html`: one self-contained page (plots inlined as PNG) a physician can read.

Sections: what was compared; the main figures as bars with 95% intervals; the same by
complexity and by language; F1 by action; text-overlap scores (for comparison with the literature only);
per-class recall; a confusion view of medication actions; the worst misses; the numbers.
`OUT/report.md` holds the headline figures as a markdown table (`markdown_table`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from diaguide.drugs import classes as drug_classes
from diaguide.evaluation import plots
from diaguide.evaluation.metrics import ACTIONS, MAIN_METRICS, SCORED_CLASSES
from diaguide.evaluation.text_metrics import TEXT_METRICS

LABELS = {
    "med_class_f1": "Drug classes (F1)",
    "med_class_precision": "Drug classes: precision",
    "med_class_recall": "Drug classes: recall",
    "drug_f1": "Drugs (F1)",
    "drug_precision": "Drugs: precision",
    "drug_recall": "Drugs: recall",
    "drug_jaccard": "Drugs (Jaccard, CHIP-2025)",
    **{f"action_f1.{a}": f"F1 of {a}" for a in ACTIONS},
    "action_f1.change": "F1 of start/stop/adjust",
    "med_action_accuracy": "Same action on a shared class",
    "lab_f1": "Lab tests (F1)",
    "parse_rate": "Usable answer",
    "guideline_concordance": "Glucose-lowering classes = guideline",
    "unsafe_proposed_rate": "Proposed a flagged drug",
    "unsafe_unflagged_rate": "Flagged drug shown WITHOUT its warning",
    "contradiction_rate": "Said what the record contradicts (shown as a caution)",
    "bleu4": "BLEU-4 (characters)",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
}
CLASS_NAMES = drug_classes.labels()  # drugs/classes.yaml: `metformin`, `SGLT2 inhibitor` ...
EXPLAIN = [
    (
        "Drug classes (F1)",
        "agreement of the drug classes started, continued or adjusted with the physician's plan "
        "(1 = the same classes, 0 = none in common); precision penalises extra classes, recall missed ones.",
    ),
    (
        "Drugs (F1)",
        "the same agreement over the drugs themselves (formulary names; a drug it does not know by its own name): "
        "starting empagliflozin where the physician started dapagliflozin is a class hit but a drug miss.",
    ),
    (
        "Drugs (Jaccard, CHIP-2025)",
        "drugs in both plans over drugs in either, per visit, averaged (both plans keep no drug: 1; no usable "
        "answer: 0). The CHIP-2025 shared task's measure; its published figures are on another dataset.",
    ),
    (
        "F1 of start / stop / adjust / continue",
        "agreement of the (drug, action) pairs of one action; start/stop/adjust pooled is what a plan that "
        "changes nothing (carry_forward) never gets right.",
    ),
    ("Same action on a shared class", "for classes both plans order: the same action (start, continue, adjust, stop)."),
    ("Lab tests (F1)", "agreement of the laboratory tests ordered (LOINC codes) with the physician's plan."),
    ("Usable answer", "share of visits where the engine gave a plan that could be read."),
    (
        "Glucose-lowering classes = guideline",
        "share of visits where the glucose-lowering classes are exactly those "
        "of the guideline engine (ADA 2025 or CDS 2020 rules).",
    ),
    (
        "Proposed a flagged drug",
        "share of visits where the raw suggestion contained a drug the safety checker "
        "warns about (before the safety pass).",
    ),
    (
        "Flagged drug shown WITHOUT its warning",
        "share of visits where such a drug reached the output without its warning attached. Must be 0.",
    ),
    ("@no_history", "the same model shown only the current visit, without earlier visits (ablation)."),
    ("Whiskers", "95% bootstrap intervals (resampling visits)."),
]


def _e(value: object) -> str:
    return html.escape(str(value))


def _cells(engines: Mapping[str, Any], where: Sequence[str], metric: str) -> dict[str, Any]:
    out = {}
    for name, summary in engines.items():
        node: Any = summary
        for key in where:
            node = node[key]
        out[name] = node["metrics"].get(metric)
    return out


def _img(uri: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{uri}">'


def _main_figure(engines: Mapping[str, Any]) -> str:
    series = {name: s["overall"]["metrics"] for name, s in engines.items()}
    return _img(
        plots.grouped_bars(MAIN_METRICS, series, "All test visits", "share (0-1)", group_labels=LABELS),
        "main metrics per engine with 95% intervals",
    )


def _strata_figures(engines: Mapping[str, Any]) -> str:
    parts = []
    for key, title in (("by_complexity", "by record complexity"), ("by_language", "by language")):
        groups = [g for g in next(iter(engines.values()))[key] if any(s[key][g]["n"] for s in engines.values())]
        for metric in ("med_class_f1", "guideline_concordance"):
            series = {name: {g: s[key][g]["metrics"].get(metric) for g in groups} for name, s in engines.items()}
            labels = {g: f"{g} (n={next(iter(engines.values()))[key][g]['n']})" for g in groups}
            uri = plots.grouped_bars(groups, series, f"{LABELS[metric]} {title}", "share (0-1)", group_labels=labels)
            parts.append(_img(uri, f"{metric} {title}"))
    return "\n".join(parts)


def _action_figure(engines: Mapping[str, Any]) -> str:
    groups = [f"action_f1.{a}" for a in (*ACTIONS, "change")]
    series = {name: s["overall"]["metrics"] for name, s in engines.items()}
    uri = plots.grouped_bars(groups, series, "F1 by action (drug, action) pairs", "F1", group_labels=LABELS)
    return _img(uri, "F1 by action per engine")


def _text_figure(engines: Mapping[str, Any]) -> str:
    series = {name: s["overall"]["metrics"] for name, s in engines.items()}
    uri = plots.grouped_bars(
        TEXT_METRICS,
        series,
        "Text overlap with the physician's plan text",
        "score (0-100)",
        ylim=(0, 100),
        group_labels=LABELS,
    )
    return _img(uri, "text overlap scores")


def _class_figure(engines: Mapping[str, Any], per_visit: Mapping[str, Sequence[dict[str, Any]]]) -> str:
    present = [
        c for c in SCORED_CLASSES if any(r["columns"][f"truth.{c}"] for rows in per_visit.values() for r in rows)
    ]
    if not present:
        return "<p>No drug class in the physician plans of these visits.</p>"
    series = {
        name: {c: s["overall"]["metrics"].get(f"class_recall.{c}") for c in present} for name, s in engines.items()
    }
    title = "Recall per drug class (physician plan = truth)"
    return _img(plots.grouped_bars(present, series, title, "recall", group_labels=CLASS_NAMES), "per-class recall")


def _confusions(engines: Mapping[str, Any]) -> str:
    parts = []
    for name, s in engines.items():
        c = s["action_confusion"]
        parts.append(_img(plots.confusion(c["counts"], c["labels"], name), f"action confusion {name}"))
    return '<div class="row">' + "\n".join(parts) + "</div>"


def _fmt_actions(actions: Mapping[str, Sequence[str]]) -> str:
    return ", ".join(f"{CLASS_NAMES.get(c, c)} ({'/'.join(a)})" for c, a in actions.items()) or "—"


def _names(classes: Sequence[str]) -> str:
    return ", ".join(CLASS_NAMES.get(c, c) for c in classes) or "—"


def _worst(per_visit: Mapping[str, Sequence[dict[str, Any]]], count: int = 5) -> str:
    parts = []
    for name, rows in per_visit.items():
        if name.endswith("@no_history"):
            continue

        def badness(r: dict[str, Any]) -> tuple:
            c = r["columns"]
            return (c["unsafe_unflagged"], c["med_fn"] + c["med_fp"], c["unsafe_proposed"], c["lab_fn"] + c["lab_fp"])

        worst = [r for r in sorted(rows, key=badness, reverse=True)[:count] if any(badness(r))]
        if not worst:
            continue
        body = "".join(
            "<tr>"
            f"<td>{_e(r['id'])}</td><td>{_e(r['language'])}, {_e(r['complexity'])}</td><td>{_e(r['status'])}</td>"
            f"<td>{_e(_fmt_actions(r['physician']))}</td><td>{_e(_fmt_actions(r['predicted']))}</td>"
            f"<td>{_e(_names(r['missed']))}</td><td>{_e(_names(r['extra']))}</td>"
            f"<td>{_e('; '.join(r['findings']) or '—')}</td>"
            f'<td class="bad">{_e("; ".join(r["unflagged"]))}</td>'
            f"<td>{_e(' '.join(r['contradictions']) or '—')}</td></tr>"
            for r in worst
        )
        parts.append(
            f"<h3>{_e(name)}</h3><table><tr><th>case</th><th>language, complexity</th><th>answer</th>"
            "<th>physician plan</th><th>engine plan</th><th>missed</th><th>extra</th>"
            "<th>safety findings attached</th><th>findings missing</th>"
            f"<th>cautions: what the record contradicts</th></tr>{body}</table>"
        )
    return "\n".join(parts) or "<p>No misses.</p>"


def _number(cell: Mapping[str, Any] | None) -> str:
    if not cell or cell.get("value") is None:
        return "n/a"
    v, lo, hi = cell["value"], cell.get("low"), cell.get("high")
    interval = "" if lo is None else f" [{lo:.3f}, {hi:.3f}]"
    return f"{v:.3f}{interval}"


TABLE_EXTRA: tuple[str, ...] = (
    "med_class_precision",
    "med_class_recall",
    "drug_precision",
    "drug_recall",
    *(f"action_f1.{a}" for a in ACTIONS),
)
MARKDOWN_METRICS: tuple[str, ...] = (
    "med_class_f1",
    "drug_precision",
    "drug_recall",
    "drug_f1",
    "drug_jaccard",
    *(f"action_f1.{a}" for a in ACTIONS),
    "action_f1.change",
    "lab_f1",
    "parse_rate",
    "unsafe_unflagged_rate",
)


def markdown_table(metrics: Mapping[str, Any], names: Sequence[str] = MARKDOWN_METRICS) -> str:
    """The headline figures of metrics.json as a markdown table (value [95% interval]), one row per engine: what
    README and docs/evaluation.md quote."""
    engines = metrics["engines"]
    lines = [
        "| engine | visits | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for name, s in engines.items():
        cells = " | ".join(_number(s["overall"]["metrics"].get(m)) for m in names)
        lines.append(f"| {name} | {s['n']} | {cells} |")
    return "\n".join(lines) + "\n"


def _table(engines: Mapping[str, Any]) -> str:
    metrics = [*MAIN_METRICS, *TABLE_EXTRA, *TEXT_METRICS]
    head = "".join(f"<th>{_e(LABELS.get(m, m))}</th>" for m in metrics)
    body = "".join(
        f"<tr><td>{_e(name)}</td><td>{s['n']}</td>"
        + "".join(f"<td>{_number(s['overall']['metrics'].get(m))}</td>" for m in metrics)
        + "</tr>"
        for name, s in engines.items()
    )
    return f"<table><tr><th>engine</th><th>visits</th>{head}</tr>{body}</table>"


def _cases(engines: Mapping[str, Any]) -> str:
    """Hand-written cases: one row per case, one column per engine (met, or what was missed)."""
    with_cases = {name: s["cases"] for name, s in engines.items() if "cases" in s}
    if not with_cases:
        return ""
    names = list(with_cases)
    bad = ' class="bad"'
    summary = "".join(
        f"<tr><td>{_e(n)}</td><td>{c['concordant']} / {c['n']}</td><td>{c['goal_met_rate']:.2f}</td>"
        f"<td>{c['avoids_forbidden_rate']:.2f}</td><td>{c['unsafe_proposed']}</td>"
        f"<td{bad if c['unsafe_unflagged'] else ''}>{c['unsafe_unflagged']}</td></tr>"
        for n, c in with_cases.items()
    )
    rows = {}
    for n in names:
        for r in with_cases[n]["cases"]:
            text = "met" if r["concordant"] else "; ".join(r["errors"])
            if r["unsafe_unflagged"]:
                missing = _e(", ".join(r["unsafe_unflagged"]))
                text = f'<span class="bad">shown without its finding: {missing}</span> ' + _e(text)
            else:
                flagged = _e(", ".join(r["unsafe_proposed"]))
                text = _e(text) + (f" (flagged: {flagged})" if r["unsafe_proposed"] else "")
            rows.setdefault(r["id"], {})[n] = text
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = "".join(
        f"<tr><td>{_e(cid)}</td>" + "".join(f"<td>{cells.get(n, '')}</td>" for n in names) + "</tr>"
        for cid, cells in rows.items()
    )
    parts = ", ".join(next(iter(with_cases.values()))["parts"])
    return f"""<h2>Hand-written cases</h2><p>Each engine's plan against what the guideline requires ({_e(parts)});
"forbidden" = classes the case says must not be given.</p>
<table><tr><th>engine</th><th>concordant</th><th>goal met</th><th>avoids forbidden</th>
<th>unsafe proposed</th><th>unsafe shown unflagged</th></tr>{summary}</table>
<table><tr><th>case</th>{head}</tr>{body}</table>"""


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3}.bad{color:#b00020;font-weight:bold}.row{display:flex;flex-wrap:wrap;gap:8px}
img{max-width:100%}dt{font-weight:bold}"""


def render_report(metrics: Mapping[str, Any], per_visit: Mapping[str, Sequence[dict[str, Any]]]) -> str:
    """The report page as one HTML string."""
    engines = metrics["engines"]
    d, cfg = metrics["dataset"], metrics["config"]
    skipped = "".join(f"<li><b>{_e(n)}</b>: {_e(r)}</li>" for n, r in metrics.get("skipped", {}).items())
    glossary = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in EXPLAIN)
    intro = (
        f"<p>{d['n']} held-out visits from <code>{_e(d['path'])}</code> (sha256 {_e(d['sha256'][:12])}…), "
        f"guideline region {_e(cfg['region'])}, {cfg['bootstrap']['resamples']} bootstrap resamples "
        f"(seed {cfg['bootstrap']['seed']}). Engines: {_e(', '.join(engines))}.</p>"
    )
    ref = metrics.get("reference", {}).get("physician_guideline_concordance")
    if ref and ref.get("value") is not None:
        intro += (
            f"<p>For context: the physicians' own glucose-lowering classes equal the guideline engine's in "
            f"{_number(ref)} of these visits (value [95% interval]).</p>"
        )
    guided = [n for n, e in engines.items() if e.get("guideline_line")]
    if guided:
        intro += (
            f"<p>{_e(', '.join(guided))}: trained and run with the guideline engine's decisions as one line of the "
            "prompt (its goal and the drugs it starts, adjusts, keeps and stops), so their agreement with the "
            "guideline is not the model's own reasoning alone.</p>"
        )
    added = cfg.get("baselines_added") or []
    if added:
        intro += (
            f"<p>{_e(', '.join(added))}: added to the engines asked for; no evaluation leaves out the baseline "
            "that continues every current drug and orders the labs that are due.</p>"
        )
    if skipped:
        intro += f"<p>Not evaluated:</p><ul>{skipped}</ul>"
    if not engines:
        sections = "<p>No engine could be evaluated.</p>"
    else:
        sections = f"""<h2>Main figures</h2>{_main_figure(engines)}
<h2>By record complexity and language</h2><div class="row">{_strata_figures(engines)}</div>
<h2>F1 by action</h2>
<p>Per action, the (drug, action) pairs of the engine's plan against the physician's; "change" pools start, stop
and adjust.</p>{_action_figure(engines)}
<h2>Recall per drug class</h2>{_class_figure(engines, per_visit)}
<h2>Medication actions: physician vs engine</h2>
<p>Each (visit, drug class) in either plan, by the action each plan gives it; "none" = not in that plan.</p>
{_confusions(engines)}
<h2>Worst misses</h2><p>Per engine, the visits with the most drug classes missed or added (a drug shown
without its warning first, then flagged proposals, then lab tests).</p>{_worst(per_visit)}
<h2>Text overlap (for comparison with published fine-tunes only)</h2>
<p>BLEU-4 on characters and ROUGE on jieba words, as ChatGLM's P-tuning v2 recipe scored; these reward wording,
not clinical correctness.</p>{_text_figure(engines)}
{_cases(engines)}
<h2>All numbers (value [95% interval])</h2>{_table(engines)}"""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>DiaGuide evaluation</title>
<style>{_STYLE}</style></head><body><h1>DiaGuide evaluation</h1>{intro}
<h2>How to read this</h2><dl>{glossary}</dl>{sections}</body></html>
"""


def write_report(out: Path, metrics: Mapping[str, Any], per_visit: Mapping[str, Sequence[dict[str, Any]]]) -> Path:
    """Write `out/report.html` and `out/report.md` (the headline table) and return the page's path."""
    path = Path(out) / "report.html"
    path.write_text(render_report(metrics, per_visit), encoding="utf-8")
    table = markdown_table(metrics) if metrics["engines"] else "No engine could be evaluated.\n"
    (Path(out) / "report.md").write_text(
        "# DiaGuide evaluation\n\nvalue [95% bootstrap interval]; metrics defined in docs/evaluation.md.\n\n" + table,
        encoding="utf-8",
    )
    return path
