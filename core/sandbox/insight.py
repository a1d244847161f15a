"""Per-unit statistics the sandbox derives from what it delivered with that unit.

LINE only counts what users do; the sandbox has no users, so each recipient's behaviour is drawn
from a hash of (unit, user, bubble, URL): the same deliveries always give the same figures, and
more recipients give proportionally more impressions and clicks. LINE's privacy rule applies:
a figure under 20, or one whose unique-user count is under 20, comes back null.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PRIVACY_THRESHOLD = 20
IMPRESSION_RATE = 0.62
CLICK_RATE = 0.22
"""Share of users who saw a bubble and then opened a given link in it."""
MEDIA_RATE = 0.35
MEDIA_QUARTILES = (1.0, 0.8, 0.6, 0.45, 0.3)
"""Share of players reaching the start, 25%, 50%, 75% and 100% of a video."""

_URL = re.compile(r"https?://[^\s<>\"'{}|\\^`]+")


@dataclass(frozen=True)
class UnitDelivery:
    user: str
    messages: list[dict[str, Any]]


def _chance(*parts: object) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def message_urls(message: dict[str, Any]) -> list[str]:
    """The links a user can open in one bubble, in order."""
    urls: list[str] = []
    text = message.get("text")
    if isinstance(text, str):
        urls += [match.group(0).rstrip(".,;:!?)") for match in _URL.finditer(text)]
    for action in message.get("actions") or []:
        if isinstance(action, dict) and isinstance(action.get("linkUri"), str):
            urls.append(action["linkUri"])
    video = message.get("video")
    if isinstance(video, dict):
        link = video.get("externalLink")
        if isinstance(link, dict) and isinstance(link.get("linkUri"), str):
            urls.append(link["linkUri"])
    return list(dict.fromkeys(urls))


def _has_media(message: dict[str, Any]) -> bool:
    return message.get("type") in ("video", "audio") or isinstance(message.get("video"), dict)


@dataclass
class _Bubble:
    impression: int = 0
    viewers: set[str] = field(default_factory=set)
    played: list[int] = field(default_factory=lambda: [0] * 5)
    players: list[set[str]] = field(default_factory=lambda: [set() for _ in range(5)])


@dataclass
class _Link:
    click: int = 0
    users: set[str] = field(default_factory=set)


def _shown(total: int, unique: int) -> int | None:
    return total if total >= PRIVACY_THRESHOLD and unique >= PRIVACY_THRESHOLD else None


def unit_statistics(unit: str, deliveries: Iterable[UnitDelivery]) -> dict[str, Any]:
    """The body of `GET /v2/bot/insight/message/event/aggregation` for these deliveries."""
    bubbles: dict[int, _Bubble] = {}
    links: dict[tuple[int, str], _Link] = {}
    saw: set[str] = set()
    clicked: set[str] = set()
    played: set[str] = set()
    played_all: set[str] = set()
    occurrences: dict[str, int] = {}
    for delivery in deliveries:
        user = delivery.user
        # The n-th delivery to a user, not the n-th overall: concurrency cannot change figures.
        number = occurrences[user] = occurrences.get(user, -1) + 1
        for seq, message in enumerate(delivery.messages, start=1):
            bubble = bubbles.setdefault(seq, _Bubble())
            if _chance(unit, user, number, "impression", seq) >= IMPRESSION_RATE:
                continue
            saw.add(user)
            bubble.viewers.add(user)
            bubble.impression += 1 + int(_chance(unit, user, number, "views", seq) * 3)
            for url in message_urls(message):
                link = links.setdefault((seq, url), _Link())
                if _chance(unit, user, number, "click", seq, url) < CLICK_RATE:
                    clicked.add(user)
                    link.users.add(user)
                    link.click += 1 + int(_chance(unit, user, number, "clicks", seq, url) * 2)
            if _has_media(message) and _chance(unit, user, number, "play", seq) < MEDIA_RATE:
                depth = _chance(unit, user, number, "depth", seq)
                for quartile, share in enumerate(MEDIA_QUARTILES):
                    if depth < share:
                        bubble.played[quartile] += 1
                        bubble.players[quartile].add(user)
                played.add(user)
                if depth < MEDIA_QUARTILES[-1]:
                    played_all.add(user)

    def unique(users: set[str]) -> int | None:
        return len(users) if len(users) >= PRIVACY_THRESHOLD else None

    messages = []
    for seq in sorted(bubbles):
        bubble = bubbles[seq]
        entry: dict[str, Any] = {
            "seq": seq,
            "impression": _shown(bubble.impression, len(bubble.viewers)),
            "uniqueImpression": unique(bubble.viewers),
        }
        suffixes = ("", "25Percent", "50Percent", "75Percent", "100Percent")
        for quartile, suffix in enumerate(suffixes):
            entry[f"mediaPlayed{suffix}"] = _shown(
                bubble.played[quartile], len(bubble.players[quartile])
            )
        for quartile, suffix in enumerate(suffixes):
            entry[f"uniqueMediaPlayed{suffix}"] = unique(bubble.players[quartile])
        messages.append(entry)
    clicks = [
        {
            "seq": seq,
            "url": url,
            "click": _shown(link.click, len(link.users)),
            "uniqueClick": unique(link.users),
            "uniqueClickOfRequest": unique(link.users),
        }
        for (seq, url), link in sorted(links.items(), key=lambda item: item[0])
    ]
    return {
        "overview": {
            "uniqueImpression": unique(saw),
            "uniqueClick": unique(clicked),
            "uniqueMediaPlayed": unique(played),
            "uniqueMediaPlayed100Percent": unique(played_all),
        },
        "messages": messages,
        "clicks": clicks,
    }
