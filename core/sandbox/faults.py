"""Faults the sandbox can inject, from a fixture's `sandbox.faults` or command-line flags."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.models import StrictModel

FaultKind = Literal[
    "fail_first",
    "random_5xx",
    "lost_answer",
    "latency",
    "permanent_400",
    "monthly_limit",
    "rate_limit",
    "unauthorized",
    "forbidden",
]
FaultEndpoint = Literal["push", "multicast", "capi", "all"]

_NEEDS: dict[str, tuple[str, ...]] = {
    "fail_first": ("count",),
    "random_5xx": ("rate",),
    "lost_answer": ("rate",),
    "latency": ("ms",),
    "permanent_400": ("users",),
    "monthly_limit": (),
    "rate_limit": ("rate",),
    "unauthorized": (),
    "forbidden": (),
}


class Fault(StrictModel):
    """One fault rule.

    * `fail_first`: the first `count` requests answer `status` (default 500).
    * `random_5xx`: a share `rate` of requests answer `status` (default 500).
    * `lost_answer`: a share `rate` of requests are accepted, then the answer is lost.
    * `latency`: every request waits `ms` milliseconds (plus up to `jitter_ms`).
    * `permanent_400`: requests to any of `users` answer 400.
    * `monthly_limit`: after `count` messages (default 0) LINE's monthly-limit 429.
    * `rate_limit`: a share `rate` of requests answer LINE's rate-limit 429.
    * `unauthorized` / `forbidden`: every request answers 401 / 403.
    """

    kind: FaultKind
    endpoint: FaultEndpoint = "all"
    count: int | None = Field(default=None, ge=0)
    rate: float | None = Field(default=None, ge=0.0, le=1.0)
    status: int | None = Field(default=None, ge=400, le=599)
    ms: float | None = Field(default=None, ge=0.0)
    jitter_ms: float | None = Field(default=None, ge=0.0)
    users: list[str] | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _has_parameters(self) -> Fault:
        missing = [name for name in _NEEDS[self.kind] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"fault {self.kind!r} needs {', '.join(missing)}")
        return self


class SandboxSpec(StrictModel):
    faults: list[Fault] = Field(default_factory=list)
    monthly_quota: int | None = Field(default=None, ge=0)
    """Messages per month before LINE's monthly-limit 429; None is unlimited."""
