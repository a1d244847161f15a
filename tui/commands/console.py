"""`lcc` and `lcc demo`: open the console (the only commands that import Textual).

The console draws its first frame straight away and opens the data dir in a worker (see
`tui.app`), so nothing heavy is imported here. `lcc demo` seeds a fresh temporary data dir from
every fixture in `fixtures/` while the list is on screen, delivering each against the sandbox
the way its fixture expects, so the list fills with every state and real logs; it prints
nothing on stdout, and the folder is removed when the console closes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tui.output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from core.service import Services
    from core.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def demo_settings(settings: Settings, folder: Path) -> Settings:
    """The demo's settings: a new temporary data dir, LINE and CAPI both on the sandbox."""
    from core.settings import SANDBOX

    return settings.model_copy(
        update={"data_dir": folder, "line_api_base": SANDBOX, "capi_base": SANDBOX}
    )


def open_services(args: argparse.Namespace, demo_dir: Path | None = None) -> Services:
    """The services the console runs on; for the demo, on a throwaway data dir."""
    from core.service import Services
    from tui.output import settings_from

    settings = settings_from(args)
    if demo_dir is None:
        return Services.open(settings)
    return Services.open(demo_settings(settings, demo_dir))


def seed(services: Services) -> None:
    """The demo's data: every fixture imported, then delivered as its fixture expects, while
    the list is already on screen (it follows the campaigns as they change)."""
    from core.demo import seed_conversions, seed_demo

    seed_demo(services, FIXTURES, deliver=True)
    seed_conversions(
        services, FIXTURES / "conversions" / "sample.csv", services.store.data_dir / "demo"
    )


def run(args: argparse.Namespace) -> int:
    from tui.app import ConsoleApp
    from tui.config import load_config

    demo = getattr(args, "command", None) == "demo"
    demo_dir = Path(tempfile.mkdtemp(prefix="lcc-demo-")) if demo else None
    config = load_config()
    mouse = config.mouse and not getattr(args, "no_mouse", False)
    app = ConsoleApp(
        open_services=lambda: open_services(args, demo_dir),
        prepare=seed if demo else None,
        demo=demo,
        config=config,
        contain_errors=True,
    )
    try:
        app.run(mouse=mouse)
    finally:
        if demo_dir is not None:
            shutil.rmtree(demo_dir, ignore_errors=True)
    # a bad setting (exit 2) or an internal error (1) was printed by the app as it closed
    if app.return_code == EXIT_BAD_INPUT:
        return EXIT_BAD_INPUT
    return EXIT_OK if not app.return_code else EXIT_FAILED
