"""Settings (contract section 2): `LCC_` environment variables, a `.env` file, then defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SANDBOX = "sandbox"
_SYSTEM_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("lcc", appauthor=False))


class Settings(BaseSettings):
    """Where the console keeps its data and which LINE it talks to.

    Tokens are deliberately absent: a sender account names the environment variable holding its
    channel access token, read at the moment of use.
    """

    model_config = SettingsConfigDict(
        env_prefix="LCC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    line_api_base: str = SANDBOX
    capi_base: str = SANDBOX
    system_identifier: str = "default"
    workspace: str | None = None
    """The operator's workspace; when unset, the first workspace in the data dir."""
    schedule_grace_minutes: float = Field(default=15.0, ge=0)
    """A Planned campaign found more than this late is flagged for the operator, not launched."""
    delivery_concurrency: int = Field(default=256, ge=1, le=2048)
    """LINE requests in flight at once per campaign (LINE's rate limits apply on top)."""
    scheduler_interval_s: float = Field(default=15.0, gt=0)
    """How often `lcc scheduler` (and the open console) looks for due work."""

    @field_validator("system_identifier")
    @classmethod
    def _check_identifier(cls, value: str) -> str:
        if not _SYSTEM_IDENTIFIER.match(value):
            raise ValueError("system_identifier may hold only letters, digits and '_' (1-64)")
        return value

    @field_validator("line_api_base", "capi_base")
    @classmethod
    def _check_base(cls, value: str) -> str:
        value = value.strip()
        if value != SANDBOX and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected 'sandbox' or an http(s) base URL, got {value!r}")
        return value.rstrip("/") if value != SANDBOX else value

    @property
    def line_is_sandbox(self) -> bool:
        return self.line_api_base == SANDBOX

    @property
    def capi_is_sandbox(self) -> bool:
        return self.capi_base == SANDBOX

    @property
    def delivery_table(self) -> str:
        return f"delivery_line_{self.system_identifier}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line values (those not None) on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)
