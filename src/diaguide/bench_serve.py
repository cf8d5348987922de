"""`diaguide bench serve --out FILE.json`: CDS Hooks patient-view latency under concurrent load.

The service runs in its own process (uvicorn on loopback, SQLite store, EHR JWTs checked as in
production); the load comes from a second process: 10 concurrent callers, each request with a
fresh signed JWT. The same run measures `/healthz` under the same concurrency as a baseline
(the floor set by HTTP + the event loop on this machine). Goal (CDS Hooks' ~500 ms budget):
p95 < 500 ms, 0 errors.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ISSUER = "https://bench-ehr.example"
SERVICE = "/cds-services/diaguide-patient-view"
CONCURRENCY = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], port: int, log_path: Path | None = None, workers: int = 1) -> subprocess.Popen:
    """uvicorn with the service app in a child process on 127.0.0.1:port; waits until /healthz answers."""
    import httpx

    from diaguide.service.store import Store

    Store(env["DIAGUIDE_DATABASE_URL"]).close()  # migrate once here, not in racing workers

    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "diaguide.service.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
        env={**os.environ, **env},
        stdout=log,
        stderr=log,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy in 90 s")


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prefetch(i: int) -> dict[str, Any]:
    """A synthetic outpatient's prefetch; `i` varies the values so record hashes differ."""
    pid = f"bench-{i}"

    def obs(n: int, loinc: str, value: float, unit: str, when: str) -> dict[str, Any]:
        return {
            "resourceType": "Observation", "id": f"o{n}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit},
        }  # fmt: skip

    def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}

    observations = [
        obs(1, "4548-4", 7.0 + (i % 30) / 10, "%", "2026-11-01"),
        obs(2, "4548-4", 7.2, "%", "2026-05-01"),
        obs(3, "33914-3", 25 + (i % 70), "mL/min/{1.73_m2}", "2026-11-01"),
        obs(4, "9318-7", 20 + i % 300, "mg/g", "2026-11-01"),
        obs(5, "13457-7", 90 + i % 60, "mg/dL", "2026-11-01"),
        obs(6, "39156-5", 24 + i % 12, "kg/m2", "2026-11-01"),
        obs(7, "8480-6", 120 + i % 40, "mm[Hg]", "2026-11-01"),
    ]
    return {
        "patient": {"resourceType": "Patient", "id": pid, "gender": "female" if i % 2 else "male",
                    "birthDate": f"{1940 + i % 45}-03-02"},
        "conditions": bundle([{
            "resourceType": "Condition", "id": "c1", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
        }]),
        "observations": bundle(observations),
        "medications": bundle([{
            "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{pid}"}, "authoredOn": "2025-01-01",
            "medicationCodeableConcept": {"text": "metformin 500 MG Oral Tablet"},
        }]),
        "allergies": bundle([]),
    }  # fmt: skip


def _keys(folder: Path) -> tuple[Path, Path]:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    (folder / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "bench", "alg": "ES384"}]}))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (folder / "key.pem").write_bytes(pem)
    return folder / "jwks.json", folder / "key.pem"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


def _stats(latencies: list[float], errors: int, wall: float) -> dict[str, Any]:
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "p50_ms": _percentile(latencies, 0.50),
        "p95_ms": _percentile(latencies, 0.95),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "throughput_rps": round(len(latencies) / wall, 1) if wall else None,
    }


def load(base: str, requests: int, key_pem: str, deadline_s: float) -> dict[str, Any]:
    """The load generator (runs in its own process): baseline, then patient-view calls."""
    import concurrent.futures as cf
    import uuid

    import httpx
    import jwt

    key = Path(key_pem).read_bytes()

    def token(url: str) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": url, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, "sub": "bench"}
        return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "bench"})

    def run(kind: str, count: int) -> dict[str, Any]:
        stop_at = time.monotonic() + deadline_s
        latencies: list[float] = []
        errors = 0
        statuses: dict[str, int] = {}

        def one(i: int, client: httpx.Client) -> tuple[float, int]:
            start = time.perf_counter()
            if kind == "baseline":
                r = client.get(f"{base}/healthz")
            else:
                url = f"{base}{SERVICE}"
                body = {
                    "hook": "patient-view",
                    "hookInstance": str(uuid.uuid4()),
                    "context": {"patientId": f"bench-{i}", "userId": "Practitioner/1"},
                    "prefetch": prefetch(i),
                }
                r = client.post(url, json=body, headers={"Authorization": f"Bearer {token(url)}"})
            return (time.perf_counter() - start) * 1000, r.status_code

        with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
            start = time.perf_counter()
            with cf.ThreadPoolExecutor(CONCURRENCY) as pool:
                futures = [pool.submit(one, i, client) for i in range(count)]
                for f in futures:
                    try:
                        ms, status = f.result(timeout=max(1.0, stop_at - time.monotonic()))
                    except Exception:
                        errors += 1
                        continue
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    if status == 200:
                        latencies.append(ms)
                    else:
                        errors += 1
            wall = time.perf_counter() - start
        return {**_stats(latencies, errors, wall), "status_codes": statuses, "wall_s": round(wall, 2)}

    run("patient-view", CONCURRENCY)  # warm-up: imports, first JWKS read, SQLite pages
    return {"baseline_healthz": run("baseline", requests), "patient_view": run("patient-view", requests)}


def bench_serve(out: str, quick: bool = False) -> int:
    """Run the service in a child process and load it from another; write JSON to `out`."""
    from diaguide.bench import machine_info

    requests = 40 if quick else 300
    with tempfile.TemporaryDirectory(prefix="diaguide-bench-") as tmp:
        folder = Path(tmp)
        jwks, key = _keys(folder)
        port = free_port()
        env = {
            "DIAGUIDE_DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
            "DIAGUIDE_CDS_AUTH": "jwt",
            "DIAGUIDE_DEMO": "0",
            "DIAGUIDE_CDS_TRUSTED_ISSUERS": json.dumps({ISSUER: str(jwks)}),
            "DIAGUIDE_SECRET_KEY": "bench",
        }
        results: dict[str, Any] = {"load_average_before": os.getloadavg()}
        for workers in (1, 2):
            server = start_server(env, port, folder / f"server-{workers}.log", workers=workers)
            try:
                code = (
                    "import json,sys; from diaguide.bench_serve import load; "
                    f"print(json.dumps(load('http://127.0.0.1:{port}', {requests}, {str(key)!r}, 120.0)))"
                )
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    raise RuntimeError(f"load process failed: {done.stderr.strip().splitlines()[-1:]}")
                run = json.loads(done.stdout.strip().splitlines()[-1])
            finally:
                stop_server(server)
            if workers == 1:  # the default `diaguide serve`: the headline figure and its baseline
                results.update(run)
            else:
                results["patient_view_2_workers"] = run["patient_view"]
        results["load_average_after"] = os.getloadavg()
    pv = results["patient_view"]
    report = {
        "benchmark": "serve",
        "what": f"CDS Hooks patient-view, {CONCURRENCY} concurrent callers from a second process, loopback, "
        "ES384 JWT checked per call, SQLite store; headline: one uvicorn worker (also: two). load_average_*: "
        "the machine is shared, so other jobs' load is recorded with the figures",
        "quick": quick,
        "concurrency": CONCURRENCY,
        "machine": machine_info(),
        **results,
        "goal": {"p95_ms_below": 500, "errors": 0},
        "goal_met": pv["errors"] == 0 and pv["p95_ms"] is not None and pv["p95_ms"] < 500,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"patient-view: p50 {pv['p50_ms']} ms, p95 {pv['p95_ms']} ms, errors {pv['errors']} "
        f"(baseline /healthz p95 {results['baseline_healthz']['p95_ms']} ms) -> {out}"
    )
    return 0 if pv["errors"] == 0 else 1
