"""`lcc` and `lcc demo`: open the console (the only commands that import Textual).

`lcc demo` seeds a fresh temporary data dir from every fixture in `fixtures/` and runs against
the sandbox; it prints nothing on stdout before the console starts, and removes the folder when
the console closes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from core.service import Services
from core.settings import SANDBOX, Settings
from tui.output import EXIT_FAILED, EXIT_OK, settings_from

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def demo_settings(settings: Settings) -> Settings:
    """The demo's settings: a new temporary data dir, LINE and CAPI both on the sandbox."""
    folder = Path(tempfile.mkdtemp(prefix="lcc-demo-"))
    return settings.model_copy(
        update={"data_dir": folder, "line_api_base": SANDBOX, "capi_base": SANDBOX}
    )


def open_services(args: argparse.Namespace) -> tuple[Services, bool]:
    """The services the console runs on, and whether this is the demo (seeded, throwaway)."""
    from core.demo import seed_demo

    settings = settings_from(args)
    demo = getattr(args, "command", None) == "demo"
    if demo:
        settings = demo_settings(settings)
    services = Services.open(settings)
    if demo:
        seed_demo(services, FIXTURES)
    return services, demo


def run(args: argparse.Namespace) -> int:
    from tui.config import load_config

    services, demo = open_services(args)
    config = load_config()
    mouse = config.mouse and not getattr(args, "no_mouse", False)
    from tui.app import ConsoleApp

    app = ConsoleApp(services, demo=demo, config=config, contain_errors=True)
    try:
        app.run(mouse=mouse)
    finally:
        if demo:
            shutil.rmtree(services.settings.data_dir, ignore_errors=True)
    return EXIT_OK if not app.return_code else EXIT_FAILED
