"""The sandbox's stand-in for the LINE Conversion API (`POST /v1/{tag_id}/events`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute


@dataclass
class CapiState:
    """Batches of conversion events the sandbox accepted."""

    batches: list[dict[str, Any]] = field(default_factory=list)


def capi_routes(state: CapiState) -> list[BaseRoute]:
    """Routes mounted into the sandbox app (filled in by the Conversion API work)."""
    return []
