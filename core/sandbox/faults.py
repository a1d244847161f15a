"""Faults the sandbox can inject, from a fixture's `sandbox.faults` or command-line flags.

Every random decision comes from a generator seeded per fault (`SandboxSpec.seed`, or the fault's
own `seed`), so a replay with the same requests in the same order meets the same faults, and
adding one fault never shifts the dice of another.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
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

SEND_ENDPOINTS = frozenset({"push", "multicast", "capi"})
"""What `endpoint: all` means for the delivery faults: every request that sends something."""
EVERY_REQUEST_KINDS = frozenset({"latency", "unauthorized", "forbidden"})
"""Faults that, with `endpoint: all`, hit every API request (quota, statistics, validate too)."""

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

    * `fail_first`: the first `count` requests answer `status` (default 500), not accepted.
    * `random_5xx`: a share `rate` of requests answer `status` (default 500), not accepted.
    * `lost_answer`: a share `rate` of requests are accepted (remembered and delivered), then the
      answer is lost: the connection drops (the client sees a timeout), or, with `status`, the
      client gets that status (e.g. 500) although LINE took the request.
    * `latency`: every request waits `ms` milliseconds (plus up to `jitter_ms`).
    * `permanent_400`: requests to any of `users` answer 400 "Failed to send messages".
    * `monthly_limit`: after `count` messages this month (default 0) LINE's monthly-limit 429.
    * `rate_limit`: a share `rate` of requests answer LINE's rate-limit 429.
    * `unauthorized` / `forbidden`: every request answers 401 / 403.

    `endpoint` narrows a fault to `push`, `multicast` or `capi`; `all` (the default) means every
    send, and for `latency`, `unauthorized` and `forbidden` every API request.
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

    def applies_to(self, endpoint: str) -> bool:
        if self.endpoint != "all":
            return self.endpoint == endpoint
        return self.kind in EVERY_REQUEST_KINDS or endpoint in SEND_ENDPOINTS


class SandboxSpec(StrictModel):
    faults: list[Fault] = Field(default_factory=list)
    monthly_quota: int | None = Field(default=None, ge=0)
    """Messages per month before LINE's monthly-limit 429; None is unlimited."""
    seed: int = 0
    """Seeds every fault's random choices (a fault's own `seed` wins)."""


@dataclass(frozen=True)
class Refusal:
    """A fault's answer instead of LINE's normal one."""

    status: int
    fault: str


class FaultEngine:
    """Decides, request by request, which configured fault (if any) strikes."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self._served = [0] * len(spec.faults)
        self._index: dict[tuple[str, str], list[tuple[int, Fault]]] = {}
        self._rngs = [
            random.Random(fault.seed if fault.seed is not None else spec.seed * 7919 + index)
            for index, fault in enumerate(spec.faults)
        ]

    def _matching(self, kind: str, endpoint: str) -> list[tuple[int, Fault]]:
        """Faults of `kind` for `endpoint`, worked out once (asked several times a request)."""
        key = (kind, endpoint)
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = [
                (index, fault)
                for index, fault in enumerate(self.spec.faults)
                if fault.kind == kind and fault.applies_to(endpoint)
            ]
        return found

    def _roll(self, index: int, rate: float | None) -> bool:
        return self._rngs[index].random() < (rate or 0.0)

    def latency_s(self, endpoint: str) -> float:
        total = 0.0
        for index, fault in self._matching("latency", endpoint):
            jitter = self._rngs[index].random() * (fault.jitter_ms or 0.0)
            total += ((fault.ms or 0.0) + jitter) / 1000.0
        return total

    def auth_refusal(self, endpoint: str) -> Refusal | None:
        if self._matching("unauthorized", endpoint):
            return Refusal(401, "unauthorized")
        if self._matching("forbidden", endpoint):
            return Refusal(403, "forbidden")
        return None

    def rate_limited(self, endpoint: str) -> bool:
        return any(
            self._roll(index, fault.rate) for index, fault in self._matching("rate_limit", endpoint)
        )

    def refused_recipient(self, endpoint: str, recipients: list[str]) -> str | None:
        for _, fault in self._matching("permanent_400", endpoint):
            chosen = set(fault.users or ())
            for user in recipients:
                if user in chosen:
                    return user
        return None

    def monthly_cap(self, endpoint: str) -> int | None:
        caps = [fault.count or 0 for _, fault in self._matching("monthly_limit", endpoint)]
        return min(caps) if caps else None

    def failure(self, endpoint: str) -> Refusal | None:
        """fail_first, then random_5xx: the request fails before LINE accepts it."""
        for index, fault in self._matching("fail_first", endpoint):
            if self._served[index] < (fault.count or 0):
                self._served[index] += 1
                return Refusal(fault.status or 500, "fail_first")
        for index, fault in self._matching("random_5xx", endpoint):
            if self._roll(index, fault.rate):
                return Refusal(fault.status or 500, "random_5xx")
        return None

    def lost_answer(self, endpoint: str) -> Refusal | None:
        """Accepted, but the client will not hear it: status 0 means the connection drops."""
        for index, fault in self._matching("lost_answer", endpoint):
            if self._roll(index, fault.rate):
                return Refusal(fault.status or 0, "lost_answer")
        return None


def spec_from_flags(
    *,
    faults: list[Fault] | None = None,
    fail_first: int | None = None,
    random_5xx: float | None = None,
    lost_answer: float | None = None,
    latency_ms: float | None = None,
    monthly_quota: int | None = None,
    seed: int | None = None,
) -> SandboxSpec:
    """`lcc sandbox`'s fault flags (and a `--faults FILE` list) as one spec."""
    rules = list(faults or [])
    if fail_first:
        rules.append(Fault(kind="fail_first", count=fail_first))
    if random_5xx:
        rules.append(Fault(kind="random_5xx", rate=random_5xx))
    if lost_answer:
        rules.append(Fault(kind="lost_answer", rate=lost_answer))
    if latency_ms:
        rules.append(Fault(kind="latency", ms=latency_ms))
    return SandboxSpec(faults=rules, monthly_quota=monthly_quota, seed=seed or 0)
