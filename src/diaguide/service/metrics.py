"""Prometheus metrics (`/metrics`): requests, latencies, cards by indicator, model latency.

Registered once per process on the default registry; several uvicorn workers each expose
their own numbers (scrape them behind the proxy, or use prometheus_client's multiprocess mode).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter("diaguide_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "diaguide_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CARDS = Counter("diaguide_cards_total", "CDS Hooks cards returned", ["indicator"])
MODEL_SECONDS = Histogram(
    "diaguide_model_seconds", "narrative (model) latency", buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120)
)
ENGINE_SECONDS = Histogram(
    "diaguide_engine_seconds",
    "guideline + safety engine latency",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
