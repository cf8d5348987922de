"""The FastAPI application: CDS Hooks, the REST API, the physician page, operations endpoints.

`create_app()` reads settings from `DIAGUIDE_*`, migrates the store, and wires routers;
`diaguide serve` runs it with uvicorn.
"""

from __future__ import annotations

import ipaddress
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from diaguide import __version__
from diaguide.errors import ConfigError, InputError
from diaguide.service import logging as service_logging
from diaguide.service.auth_jwt import JWTVerifier
from diaguide.service.auth_throttle import Limits, Throttle
from diaguide.service.auth_users import SessionSigner, create_user, dummy_hash
from diaguide.service.deps import Context, Unauthorized, current_user, require_user
from diaguide.service.metrics import render
from diaguide.service.middleware import ServiceMiddleware
from diaguide.service.narrative import NarrativeCache, load_narrator
from diaguide.service.samples import load_samples
from diaguide.service.settings import Settings, load_settings
from diaguide.service.store import Store

log = logging.getLogger("diaguide.service")
HERE = Path(__file__).resolve().parent


def refuse_unsafe_demo(settings: Settings, store: Store, host: str | None = None) -> None:
    """Demo mode (every caller an admin, no login) only on loopback and on a database that is a demo's own:
    a ConfigError, logged as critical, otherwise (docs/security.md#demo-mode). Production is refused on a demo's
    database too: anyone could have written to it."""
    wanted = "demo" if settings.demo else "production"
    problem = None
    if settings.demo and host is not None and not _loopback(host):
        problem = f"demo mode (no login, every caller an admin) refused on host {host!r}: serve it on 127.0.0.1"
    elif store.mode(wanted) != wanted:
        problem = f"{'demo mode' if settings.demo else 'production'} refused on a {store.mode(wanted)} database: " + (
            "point DIAGUIDE_DATABASE_URL at the demo's own database"
            if settings.demo
            else "anyone could write a demo's database; use a new one"
        )
    if problem:
        log.critical(problem, extra={"event": "config_refused"})
        raise ConfigError(problem, field="DIAGUIDE_DEMO")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_context(settings: Settings) -> Context:
    store = Store(settings.database_url)
    try:
        refuse_unsafe_demo(settings, store)
    except ConfigError:
        store.close()
        raise
    store.purge_tokens()
    dummy_hash()  # computed now, so the first login of an unknown user costs what any other does
    if settings.admin_username and settings.admin_password:
        create_user(store, settings.admin_username, settings.admin_password, role="admin")
    if not settings.secret_key and not settings.demo:
        log.warning(
            "DIAGUIDE_SECRET_KEY unset: sessions end at restart and differ between workers",
            extra={"event": "config_warning"},
        )
    narrator = load_narrator(settings.narrator)
    prepare = getattr(narrator, "prepare", None)
    if callable(prepare):  # a model narrator probes its engine in a child process, in the background
        prepare()
    return Context(
        settings=settings,
        store=store,
        verifier=JWTVerifier(settings, store),
        signer=SessionSigner(settings.secret_key, settings.session_hours),
        narratives=NarrativeCache(store, narrator, settings.model_version),
        samples=load_samples(settings.samples),
        throttle=Throttle(
            store,
            Limits(settings.login_free_failures, settings.login_lockout_failures, settings.login_lockout_seconds),
            Limits(
                settings.login_address_free_failures,
                settings.login_address_lockout_failures,
                settings.login_lockout_seconds,
            ),
        ),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service app. Without `settings`, they come from the environment."""
    settings = settings or load_settings()
    service_logging.configure()
    ctx = build_context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        ctx.narratives.close()
        ctx.store.close()

    app = FastAPI(
        title="DiaGuide",
        version=__version__,
        description="CDS Hooks services, REST API and physician page for diabetes outpatient care."
        + (" **DEMO MODE: synthetic patients, no authentication.**" if settings.demo else ""),
        lifespan=lifespan,
        # docs/security.md#settings: in production the API's own description is behind a login or off
        docs_url="/docs" if settings.api_docs == "open" else None,
        redoc_url="/redoc" if settings.api_docs == "open" else None,
        openapi_url="/openapi.json" if settings.api_docs == "open" else None,
    )
    app.state.ctx = ctx
    _routes(app, ctx)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(ServiceMiddleware, ctx_getter=lambda: app.state.ctx)
    return app


def _routes(app: FastAPI, ctx: Context) -> None:
    from diaguide.service import cds_hooks, page, rest

    app.include_router(cds_hooks.router)
    app.include_router(rest.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    if ctx.settings.api_docs == "login":
        _docs_behind_login(app)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> Response:
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": exc.line()}, status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the middleware has logged the exception's type with this request id; nothing of the exception
        # (its text may quote the input) reaches the client or the log (docs/security.md, "Logs")
        request_id = request.scope.get("state", {}).get("request_id")
        return JSONResponse({"detail": "internal server error", "request_id": request_id}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # one line per problem, without echoing the input back (it may be patient text)
        problems = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()[:20]]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/healthz", tags=["operations"], summary="the process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="store reachable, engines and narrator loaded; the model engine's state when a model narrates",
    )
    def readyz() -> JSONResponse:
        checks: dict = {
            "store": _store_ok(ctx),
            "engines": _engines_ok(),
            "narrator": ctx.narratives.narrator is not None,
        }
        ok = all(checks.values())
        status = "ready" if ok else "not ready"
        readiness = getattr(ctx.narratives.narrator, "readiness", None)
        if callable(readiness):
            checks["model"] = readiness()
            # the cards (guideline + safety) do not need the model: without it the service is degraded, not down
            if ok and checks["model"]["ok"] is not True:
                status = "degraded" if checks["model"]["ok"] is False else "starting model"
        return JSONResponse({"status": status, "checks": checks}, status_code=200 if ok else 503)

    if ctx.settings.metrics != "off":

        @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (open, or a login / metrics_token)")
        def metrics(request: Request) -> Response:
            if ctx.settings.metrics == "login" and not _may_scrape(request, ctx):
                raise Unauthorized()
            body, content_type = render()
            return Response(body, media_type=content_type)


def _may_scrape(request: Request, ctx: Context) -> bool:
    import hmac

    token = ctx.settings.metrics_token
    auth = request.headers.get("authorization", "")
    if token and hmac.compare_digest(auth.encode(), f"Bearer {token}".encode()):
        return True
    return current_user(request, ctx) is not None


def _docs_behind_login(app: FastAPI) -> None:
    """/openapi.json, /docs and /redoc for logged-in users only (page cookie or bearer token)."""
    login = [Depends(require_user)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=login)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=login)
    def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

    @app.get("/redoc", include_in_schema=False, dependencies=login)
    def redoc() -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} API")


def _store_ok(ctx: Context) -> bool:
    try:
        with ctx.store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except Exception:
        return False


def _engines_ok() -> bool:
    try:
        import diaguide.knowledge.guideline  # noqa: F401
        import diaguide.records.fhir  # noqa: F401
        import diaguide.safety.checker  # noqa: F401
    except ImportError:
        return False
    return True


# log_config None: uvicorn keeps its hands off logging, so its lines go through service_logging's JSON formatter
UVICORN_OPTIONS = {"log_level": "warning", "proxy_headers": True, "log_config": None}


def serve_command(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> int:
    """`diaguide serve`: run the service with uvicorn (settings from DIAGUIDE_* variables)."""
    import uvicorn

    settings = load_settings()
    service_logging.configure()
    store = Store(settings.database_url)  # migrate once, before workers race to do it
    try:
        refuse_unsafe_demo(settings, store, host)
    finally:
        store.close()
    if settings.cds_auth == "jwt" and not settings.cds_trusted_issuers:
        log.warning("no trusted EHR issuers: every CDS Hooks call will be refused", extra={"event": "config_warning"})
    if workers < 1:
        raise ConfigError("workers must be at least 1", field="--workers")
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, **UVICORN_OPTIONS)
    else:
        uvicorn.run(
            "diaguide.service.app:create_app", factory=True, host=host, port=port, workers=workers, **UVICORN_OPTIONS
        )
    return 0
