"""Schemathesis against the service's own OpenAPI document: whatever it is sent, no 5xx."""

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings

from diaguide.service.app import create_app
from diaguide.service.settings import Settings

# demo mode: auth off, so generated requests reach the handlers instead of stopping at 401
_DB = tempfile.mkdtemp(prefix="diaguide-fuzz-")
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(demo=True, database_url=f"sqlite:///{_DB}/fuzz.db"))
)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])
