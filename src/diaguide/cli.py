"""`diaguide` — one entry point. Each subcommand calls one function of the package.

The functions take the parsed options as keyword arguments and return an exit status
(0 ok, 1 some inputs failed but the good ones were processed). A `DiaGuideError` becomes
one line on stderr and exit status 2; nothing here prints a traceback to a user.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from diaguide import __version__
from diaguide.errors import DiaGuideError

# command -> "module:function"; imported only when the command runs, so `diaguide check`
# does not pay for torch.
COMMANDS: dict[str, str] = {
    "schema": "diaguide.records.schema:print_schema",
    "ingest": "diaguide.records.ingest:ingest_command",
    "cohort": "diaguide.cohort.generate:cohort_command",
    "dataset": "diaguide.prompts.dataset:dataset_command",
    "recommend": "diaguide.recommend:recommend_command",
    "check": "diaguide.safety.checker:check_command",
    "train": "diaguide.training.recipe:train_command",
    "export": "diaguide.training.export:export_command",
    "evaluate": "diaguide.evaluation.run:evaluate_command",
    "serve": "diaguide.service.app:serve_command",
    "bench": "diaguide.bench:bench_command",
    "demo": "diaguide.demo:demo_command",
    "doctor": "diaguide.doctor:doctor_command",
    "synthea": "diaguide.synthea:synthea_command",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diaguide", description="LLM-assisted diabetes outpatient care.")
    p.add_argument("--version", action="version", version=f"diaguide {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("schema", help="print the JSON Schema of Visit, Plan, Finding")
    s.add_argument("model", nargs="?", default=None)

    s = sub.add_parser("ingest", help="read FHIR bundles or HIS exports into visits.jsonl")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--format", dest="fmt", choices=["fhir", "csv", "jsonl"], required=True)
    s.add_argument("--mapping", default=None, help="YAML column mapping (csv/jsonl)")
    s.add_argument("--deidentify", action="store_true", help="replace identifiers and shift dates")
    s.add_argument("--salt", default=None, help="de-identification secret (default: $DIAGUIDE_DEID_SALT)")
    s.add_argument("--out", required=True)
    s.add_argument("--no-progress", dest="progress", action="store_false")
    s.add_argument(
        "--plans", action="store_true", help="write {visit, plan} records: the physician's plan read from each record"
    )
    s.add_argument(
        "--lab-days",
        type=int,
        default=30,
        help="--plans, FHIR without lab orders: results this many days after a visit count as ordered",
    )

    s = sub.add_parser("cohort", help="write a synthetic outpatient cohort")
    s.add_argument("--patients", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--lang", choices=["en", "zh", "mixed"], default="en")
    s.add_argument("--out", required=True)
    s.add_argument("--fhir", action="store_true", help="also write FHIR R4 bundles of the same patients")

    s = sub.add_parser("dataset", help="build prompt/target training pairs split by patient")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--cohort", help="cohort folder (visits.jsonl)")
    where.add_argument("--records", help="a {visit, plan} JSONL file, e.g. from `diaguide ingest --plans`")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-history", dest="history", action="store_false", help="leave visit history out")
    s.add_argument(
        "--guidance",
        action="store_true",
        help="put the guideline engine's decisions in each prompt and replace train/val targets that depart from them",
    )
    s.add_argument("--region", choices=["ada", "cds"], default="ada", help="guideline region for --guidance")
    s.add_argument(
        "--notes-facts",
        action="store_true",
        help="a line of the facts read in the notes in each prompt (docs/notes.md)",
    )

    s = sub.add_parser("recommend", help="a Plan (with safety findings) for one visit")
    s.add_argument("--engine", choices=["rules", "model"], default="rules")
    s.add_argument("--input", required=True)
    s.add_argument("--format", dest="fmt", choices=["fhir", "visit"], default="visit")
    s.add_argument("--region", choices=["ada", "cds"], default=None)
    s.add_argument("--adapter", default=None, help="adapter folder (model engine)")

    s = sub.add_parser("check", help="safety findings for a plan against a visit")
    s.add_argument("--input", required=True)
    s.add_argument("--format", dest="fmt", choices=["fhir", "visit"], default="visit")
    s.add_argument("--plan", required=True)
    s.add_argument("--region", choices=["ada", "cds"], default=None)

    s = sub.add_parser("train", help="fine-tune with LoRA, P-tuning v2 or QLoRA")
    s.add_argument("--config", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--max-steps", type=int, default=None)
    s.add_argument("--resume", action="store_true")
    s.add_argument("overrides", nargs="*", metavar="KEY=VALUE")

    s = sub.add_parser("export", help="export an adapter: merged model and/or GGUF")
    s.add_argument("--adapter", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--merge", action="store_true")
    s.add_argument("--gguf", action="store_true")
    s.add_argument("--publish", action="store_true", help="copy as a shipped model (fp16 weights + model card)")
    s.add_argument("--metrics", default=None, help="evaluation metrics.json to quote in the model card")

    s = sub.add_parser("evaluate", help="score engines on the held-out split")
    s.add_argument("--out", required=True)
    s.add_argument(
        "--engines",
        default="base,lora,ptuning_v2,rules,carry_forward",
        help="engines to score; the carry_forward baseline is added when missing",
    )
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--lang", choices=["en", "zh"], default=None)
    s.add_argument("--dataset", default=None)
    s.add_argument(
        "--ablation", default="all", help="model engines also run without the visit history: all, none or a list"
    )
    s.add_argument("--cases", default=None, help="a folder of hand-written cases to check each engine against")
    s.add_argument("--cases-engines", default=None, help="only these engines on the cases (default: all)")

    s = sub.add_parser("serve", help="serve CDS Hooks, the REST API and the physician page")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)

    s = sub.add_parser("bench", help="benchmarks; JSON out with a same-run baseline")
    s.add_argument("what", choices=["ingest", "train", "generate", "serve", "llamacpp"])
    s.add_argument("--out", required=True)
    s.add_argument("--quick", action="store_true", help="a smaller run (smoke test)")
    s.add_argument(
        "--build",
        action="append",
        metavar="NAME=WHEEL",
        help="llamacpp: another llama.cpp build to compare (repeatable)",
    )

    s = sub.add_parser("demo", help="build the demo cohort, load the default model, serve the page")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--no-serve", dest="serve", action="store_false", help="prepare and summarise only")

    s = sub.add_parser("synthea", help="a Synthea population as outside records (docs/evaluation.md)")
    act = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    g = act.add_parser("generate", help="simulate patients; write the FHIR bundles of those with diabetes")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--min-train", type=int, default=300, help="stop once the training split has this many visits")
    g.add_argument("--min-test", type=int, default=100, help="... and the test split this many")
    g.add_argument("--split-seed", type=int, default=0, help="the seed `diaguide dataset` will split with")
    g.add_argument("--max-patients", type=int, default=20000)
    g.add_argument("--since", default=None, help="count visits from this day (default: from the diagnosis)")
    g.add_argument("--reference-date", default=None, help="the simulation's today (default 2025-01-01)")
    g = act.add_parser("select", help="keep the ingested visits with diabetes in the study window")
    g.add_argument("records")
    g.add_argument("--since", default=None, help="first day kept (default: every visit with diabetes)")
    g.add_argument("--out", required=True)
    g.add_argument(
        "--keep-treatment", action="store_true", help="keep the plans' treatment text (Synthea's: the note's plan)"
    )

    s = sub.add_parser("doctor", help="check this install: versions, CPU, llama.cpp build, database, model, engine")
    s.add_argument("--no-probe", dest="probe", action="store_false", help="do not start the engine in a child process")
    s.add_argument("--json", dest="as_json", action="store_true")
    return p


def _resolve(target: str) -> Callable[..., int | None]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    # No weights or data from a hub at run time, ever: libraries that would look one up fail fast instead.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = vars(_parser().parse_args(argv))
    command = args.pop("command")
    try:
        status = _resolve(COMMANDS[command])(**args)
    except DiaGuideError as exc:
        print(f"diaguide {command}: error: {exc.line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug of ours: one line for the user, the traceback only on request
        if os.environ.get("DIAGUIDE_DEBUG"):
            raise
        print(
            f"diaguide {command}: internal error: {type(exc).__name__}: {exc} (DIAGUIDE_DEBUG=1 shows more)",
            file=sys.stderr,
        )
        return 3
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
