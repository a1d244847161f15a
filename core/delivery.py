"""Delivery: a launched campaign's audience becomes LINE requests and delivery-log rows."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from core.audience import classify, iter_profiles
from core.clock import Clock, unix_seconds
from core.compose import render_bundle
from core.delivery_log import make_row
from core.errors import NotFound
from core.line_client import LineClient
from core.models import Campaign, SenderAccount
from core.store import Store

RETRY_KEY_NAMESPACE = uuid.UUID("6f1c2b0e-8a4e-4d43-9a51-2f0d3c7b9e11")
LOG_BATCH = 5000


def retry_key(campaign_id: str, request_index: int, content: Any) -> str:
    """The same logical request always gets the same key, across attempts and restarts."""
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{campaign_id}:{request_index}:{digest}"))


@dataclass(frozen=True)
class DeliveryProgress:
    """A snapshot for progress bars: the console's and the headless commands' on stderr."""

    sent: int
    failed: int
    remaining: int
    rate: float
    """Requests per second over the recent past."""
    eta_s: float | None


@dataclass
class DeliverySummary:
    requests: int = 0
    delivered: int = 0
    failed: int = 0
    excluded: int = 0


async def deliver(
    store: Store,
    campaign: Campaign,
    account: SenderAccount,
    client: LineClient,
    clock: Clock,
    *,
    progress: Callable[[DeliveryProgress], None] | None = None,
) -> DeliverySummary:
    if campaign.audience is None:
        raise NotFound(f"campaign {campaign.id} has no audience")
    segment = store.directory.segment(campaign.audience.parent_segment, campaign.audience.segment)
    if segment is None:
        raise NotFound(f"segment {campaign.audience.key!r} is gone")
    log = store.delivery_log(campaign.id)
    summary = DeliverySummary()
    rows: list[dict[str, Any]] = []
    types = [message.type for message in campaign.messages]
    for profile, exclusion in classify(iter_profiles(segment)):
        if exclusion is not None:
            summary.excluded += 1
            summary.failed += 1
            now = unix_seconds(clock.now())
            for index, message_type in enumerate(types):
                rows.append(
                    make_row(
                        time=now,
                        campaign_id=campaign.id,
                        channel_name=account.name,
                        line_user_id=profile.line_user_id,
                        message_type=message_type,
                        success=False,
                        error_code=exclusion.value,
                        profile_id=profile.profile_id,
                        message_index=index,
                    )
                )
            continue
        assert profile.line_user_id is not None
        bundle = render_bundle(campaign, profile)
        key = retry_key(campaign.id, summary.requests, {"to": profile.line_user_id, "m": bundle})
        summary.requests += 1
        result = await client.push(profile.line_user_id, bundle, retry_key=key)
        success = result.accepted
        if success:
            summary.delivered += 1
        else:
            summary.failed += 1
        now = unix_seconds(clock.now())
        for index, message_type in enumerate(types):
            rows.append(
                make_row(
                    time=now,
                    campaign_id=campaign.id,
                    channel_name=account.name,
                    line_user_id=profile.line_user_id,
                    message_type=message_type,
                    success=success,
                    error_code=""
                    if success
                    else (str(result.status) if result.status else "timeout"),
                    profile_id=profile.profile_id,
                    message_index=index,
                    request_id=result.accepted_request_id or result.request_id,
                )
            )
        if len(rows) >= LOG_BATCH:
            log.append(rows)
            rows = []
    log.append(rows)
    return summary
