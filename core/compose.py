"""What each recipient receives: the campaign's messages as LINE JSON for one profile.

This is the seam between composition (Liquid personalisation, UTM links) and delivery.
"""

from __future__ import annotations

from typing import Any

from core.models import Campaign, Profile, message_to_line


def render_bundle(campaign: Campaign, profile: Profile | None) -> list[dict[str, Any]]:
    """The message objects for `profile` (None: the blank profile of a test send)."""
    return [message_to_line(message) for message in campaign.messages]


def is_personalised(campaign: Campaign) -> bool:
    """Whether two profiles can receive different content (then it is one push each)."""
    return False
