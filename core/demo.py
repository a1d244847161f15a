"""Seeding a demo data dir from the fixtures, so a new user sees the whole product at once."""

from __future__ import annotations

from pathlib import Path

from core.errors import InputError
from core.fixture import load_fixture
from core.service import Services


def seed_demo(services: Services, fixtures: Path) -> list[str]:
    """Import every fixture's world and campaign as a Draft; returns the campaign ids."""
    ids: list[str] = []
    for path in sorted(fixtures.glob("*.json")):
        try:
            loaded = load_fixture(path)
        except InputError:
            continue
        ids.append(services.import_fixture(loaded.fixture).id)
    return ids
