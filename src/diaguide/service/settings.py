"""Service settings, read from `DIAGUIDE_*` environment variables (pydantic-settings).

Production is the default: EHR calls need a signed JWT and the page needs a login. Only
`DIAGUIDE_DEMO=1` (the local demo on synthetic patients) turns authentication off.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from diaguide.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///./var/diaguide.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIAGUIDE_", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL, description="SQLAlchemy URL; postgresql+psycopg://... for PostgreSQL"
    )
    demo: bool = Field(False, description="local demo on synthetic patients: no login, clearly labelled")
    cds_auth: Literal["jwt", "off"] | None = Field(None, description="EHR JWT check; default jwt, off only in demo")
    cds_trusted_issuers: dict[str, str] = Field(
        default_factory=dict, description='JSON: {"iss": "https://ehr/.well-known/jwks.json" or "/path/jwks.json"}'
    )
    jwks_cache_seconds: int = Field(300, ge=0)
    jwt_leeway_seconds: int = Field(60, ge=0, description="clock skew allowed on exp/iat")
    jwt_max_age_seconds: int = Field(3600, gt=0, description="a token issued longer ago than this is refused")
    public_base_url: str | None = Field(
        None, description="the URL the EHR calls (behind a proxy); used for JWT aud and card links"
    )
    region: Literal["ada", "cds"] = "ada"
    max_body_bytes: int = Field(2 * 1024 * 1024, gt=0, description="larger requests get 413")
    cors_origins: list[str] = Field(default_factory=list, description="EHR front ends allowed to call from a browser")
    secret_key: str | None = Field(None, description="signs login sessions; random per process when unset")
    session_hours: float = Field(12.0, gt=0)
    login_free_failures: int = Field(3, ge=1, description="failed logins per account before delays start")
    login_lockout_failures: int = Field(10, ge=2, description="failed logins that lock an account")
    login_address_free_failures: int = Field(20, ge=1, description="failed logins per client address before delays")
    login_address_lockout_failures: int = Field(100, ge=2, description="failed logins that lock a client address")
    login_lockout_seconds: float = Field(900.0, gt=0, description="the longest delay; a locked key waits this long")
    api_docs: Literal["open", "login", "off"] | None = Field(
        None, description="/docs, /redoc, /openapi.json: open, behind a login, or off; default open only in demo"
    )
    metrics: Literal["open", "login", "off"] | None = Field(
        None, description="/metrics: open, behind a login or metrics_token, or off; default open only in demo"
    )
    metrics_token: str | None = Field(None, description="a bearer token a Prometheus scraper may use for /metrics")
    admin_username: str | None = Field(None, description="created at startup when missing")
    admin_password: str | None = None
    samples: str | None = Field(None, description="visits.jsonl file or demo folder with sample patients")
    narrator: str = Field(
        "diaguide.service.narrative:plan_narrator", description="module:function (visit, plan) -> narrative text"
    )
    model_version: str = Field("rules", description="recorded in every audit record")
    adapter_version: str | None = None
    fhir_timeout_seconds: float = Field(5.0, gt=0)
    fhir_servers: list[str] = Field(
        default_factory=list,
        description="FHIR base URLs the service may read as fhirServer, for any caller (JSON list); "
        "empty and no issuer's own: none (docs/security.md#fhir-servers)",
    )
    cds_issuer_fhir_servers: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON: {"iss": ["https://fhir.ehr/r4"]}: FHIR bases a trusted issuer\'s calls may name',
    )

    @model_validator(mode="after")
    def _auth_default(self) -> Settings:
        if self.cds_auth is None:
            self.cds_auth = "off" if self.demo else "jwt"
        if self.api_docs is None:
            self.api_docs = "open" if self.demo else "login"
        if self.metrics is None:
            self.metrics = "open" if self.demo else "login"
        return self

    @cached_property
    def auth_enabled(self) -> bool:
        """Whether the page and REST API need a login (everything but the demo)."""
        return not self.demo


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with keyword overrides (tests); a bad value is a ConfigError."""
    try:
        return Settings(**overrides)
    except ValueError as exc:
        first = str(exc).splitlines()
        raise ConfigError(" ".join(first[:3]), source="environment") from None
