"""The region setting: which guideline's thresholds apply (ADA by default, or the Chinese CDS guideline).

Order of precedence: an explicit argument, then `$DIAGUIDE_REGION`, then `ada`.
"""

from __future__ import annotations

import os

from diaguide.errors import ConfigError

REGIONS: tuple[str, ...] = ("ada", "cds")
DEFAULT_REGION = "ada"
ENV_VAR = "DIAGUIDE_REGION"


def resolve_region(region: str | None = None) -> str:
    """The region to use: `region` if given, else `$DIAGUIDE_REGION`, else `ada`.

    Raises:
        ConfigError: the value is not one of `ada`, `cds`.
    """
    chosen = region if region not in (None, "") else os.environ.get(ENV_VAR) or DEFAULT_REGION
    value = str(chosen).strip().lower()
    if value not in REGIONS:
        where = "region" if region not in (None, "") else ENV_VAR
        raise ConfigError(f"unknown region {chosen!r}; expected one of {', '.join(REGIONS)}", field=where)
    return value
