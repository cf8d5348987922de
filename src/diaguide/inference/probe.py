"""Can the model engine start here? Asked in a child process, so a native crash answers "no" instead of killing
the caller (`diaguide doctor`, the service's readiness, docs/llamacpp.md).

The child (`python -m diaguide.inference.probe`) loads the generator the way serving does (`registry.generator_for`: the
default adapter, merged and exported to GGUF once, then cached) and generates a few tokens: llama.cpp's AMX crash
comes on the first inference, not at load. It prints one JSON line; the parent reads it, or the signal that ended
the child.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

PROBE_TOKENS = 4
TIMEOUT_S = 600.0  # the first probe may merge the adapter and write its GGUF (~1 min on 2 cores)


@dataclasses.dataclass
class ProbeResult:
    ok: bool
    reason: str  # what happened, one line: the engine and model when ok, why not otherwise
    engine: str | None = None
    model: str | None = None
    adapter_version: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def signal_name(number: int) -> str:
    """`SIGSEGV` for 11; `signal N` for a number with no name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def probe_engine(
    adapter: str | None = None,
    kind: str | None = None,
    timeout: float = TIMEOUT_S,
    command: list[str] | None = None,
) -> ProbeResult:
    """Start the serving engine in a child process and generate `PROBE_TOKENS` tokens.

    Args:
        adapter: the adapter folder; None: the default one (`registry.default_adapter`).
        kind: the engine kind; None: the one serving would pick.
        timeout: seconds before the child is killed and the probe fails.
        command: the child's command line instead of this module's (it must print the same JSON line).
    """
    from diaguide.machine import cpu_line

    cmd = command or [sys.executable, "-m", "diaguide.inference.probe"]
    if adapter and command is None:
        cmd += ["--adapter", str(adapter)]
    if kind and command is None:
        cmd += ["--engine", kind]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ})
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"the engine did not answer within {timeout:.0f} s", seconds=timeout)
    seconds = round(time.perf_counter() - t0, 1)
    if done.returncode < 0:
        number = -done.returncode
        return ProbeResult(
            False,
            f"the model engine crashed: killed by {signal_name(number)} (signal {number}) on {cpu_line()}",
            seconds=seconds,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        # the child's last stderr line is the error a user would have seen (never patient text: it has none)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return ProbeResult(False, f"the model engine did not start (exit {done.returncode}): {last}", seconds=seconds)
    answer = json.loads(lines[-1])
    answer["seconds"] = seconds
    return ProbeResult(**answer)


def _child(adapter: str | None, kind: str | None) -> dict:
    from diaguide.errors import DiaGuideError
    from diaguide.inference.registry import generator_for

    try:
        generator = generator_for(kind=kind, adapter=adapter)
        reply = generator.generate(["Say OK."], max_new_tokens=PROBE_TOKENS)[0]
    except DiaGuideError as exc:
        return {"ok": False, "reason": exc.line()}
    version = getattr(generator, "adapter_version", None)
    return {
        "ok": True,
        "reason": f"{generator.kind} serves {generator.model_name}"
        + (f" with adapter {version}" if version else " (base model)")
        + f"; {reply.new_tokens} tokens generated",
        "engine": generator.kind,
        "model": generator.model_name,
        "adapter_version": version,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m diaguide.inference.probe")
    p.add_argument("--adapter", default=None)
    p.add_argument("--engine", dest="kind", default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(_child(args.adapter, args.kind)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
