"""One ASGI middleware for every request: size limit (413), request id, metrics, JSON access
log, and — for CDS Hooks, REST and page posts — an audit record committed *before* the
response starts, so a client that got an answer can trust its audit record exists (even if
the server is killed the next instant). Failures (4xx, 5xx) are audited too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from diaguide.service.clinical import rule_version
from diaguide.service.inputs import storable
from diaguide.service.metrics import LATENCY, REQUESTS
from diaguide.service.store import AuditRecord

log = logging.getLogger("diaguide.service")
AUDITED_PREFIXES = ("/cds-services", "/api/v1", "/login", "/logout")


# docs/security.md#headers: no framing (clickjacking), no MIME sniffing, no referrer carrying a record's URL,
# nothing kept in a browser's or proxy's cache, scripts and styles from this origin only
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
DOCS_CSP = "frame-ancestors 'none'"  # the API docs load Swagger UI / ReDoc from their CDN with inline scripts
DOCS_PATHS = ("/docs", "/redoc")


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", (DOCS_CSP if path.startswith(DOCS_PATHS) else CSP).encode()),
    ]
    if not path.startswith("/static/"):
        headers.append((b"cache-control", b"no-store"))
    return headers


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")


def _audited(method: str, path: str) -> bool:
    # every EHR call, every API call, and every page view or post that touches a patient's record
    return path.startswith(AUDITED_PREFIXES) or path.startswith("/page/")


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    return {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "too_large", 422: "invalid"}.get(
        status, "client_error" if status < 500 else "server_error"
    )


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, ctx_getter):
        self.app = app
        self.ctx_getter = ctx_getter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = self.ctx_getter()
        limit = ctx.settings.max_body_bytes
        start = time.perf_counter()
        method, path = scope["method"], scope["path"]
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # for the 500 handler's answer (app.py)
        note: dict[str, Any] = scope["state"].setdefault("audit", {})
        digest, size = hashlib.sha256(), 0
        audit = _audited(method, path)
        status_box = {"status": 500, "sent": False}

        async def receive_counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
                digest.update(chunk)
            return message

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers += security_headers(path)
                if audit:
                    audit_id = await self._audit(ctx, scope, note, message["status"], start, digest if size else None)
                    headers.append((b"x-audit-id", audit_id.encode()))
                message = {**message, "headers": headers}
                status_box["sent"] = True
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await self._reply(send_wrapped, 413, b'{"detail":"request body too large"}')
            else:
                await self.app(scope, receive_counted, send_wrapped)
        except Exception:
            # the catch-all (docs/security.md#logs): the exception's type and the request id are logged (the
            # JSON formatter writes no traceback, no message); the client gets a generic 500 with the id
            log.exception("unhandled error", extra={"event": "error", "request_id": request_id, "route": path})
            if status_box["sent"]:
                raise  # too late for an answer of our own
            note.setdefault("outcome", "server_error")
            body = json.dumps({"detail": "internal server error", "request_id": request_id}).encode()
            await self._reply(send_wrapped, 500, body)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            seconds = time.perf_counter() - start
            REQUESTS.labels(method, template, str(status_box["status"])).inc()
            LATENCY.labels(template).observe(seconds)
            if path not in ("/healthz", "/readyz", "/metrics"):
                log.info(
                    "request",
                    extra={
                        "event": "request",
                        "request_id": request_id,
                        "method": method,
                        "route": template,
                        "status": status_box["status"],
                        "duration_ms": round(seconds * 1000, 1),
                    },
                )

    @staticmethod
    async def _reply(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _audit(self, ctx, scope: Scope, note: dict[str, Any], status: int, start: float, digest) -> str:
        route = scope.get("route")
        record = AuditRecord(
            id=str(uuid.uuid4()),
            method=scope["method"],
            route=storable(getattr(route, "path", scope["path"]), 200),  # an unmatched path is as it came
            hook=note.get("hook"),
            status_code=status,
            outcome=note.get("outcome")
            if status < 400 or note.get("outcome") not in (None, "ok")
            else _outcome(status),
            request_hash=digest.hexdigest() if digest is not None else None,
            record_hash=note.get("record_hash"),
            recommendation_id=note.get("recommendation_id"),
            principal=note.get("principal"),
            reason=note.get("reason"),
            model_version=ctx.settings.model_version,
            adapter_version=ctx.settings.adapter_version,
            rule_version=rule_version(),
            duration_ms=round((time.perf_counter() - start) * 1000, 2),
            engine_ms=note.get("engine_ms"),
            cards_info=note.get("cards_info", 0),
            cards_warning=note.get("cards_warning", 0),
            cards_critical=note.get("cards_critical", 0),
        )
        if record.outcome is None:
            record.outcome = _outcome(status)
        await anyio.to_thread.run_sync(ctx.store.add, record)
        return record.id
