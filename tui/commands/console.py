"""`lcc` and `lcc demo`: open the console (the only commands that import Textual)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core.demo import seed_demo
from core.service import Services
from core.settings import SANDBOX
from tui.output import EXIT_OK, settings_from

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    demo = getattr(args, "command", None) == "demo"
    if demo:
        folder = Path(tempfile.mkdtemp(prefix="lcc-demo-"))
        settings = settings.model_copy(
            update={"data_dir": folder, "line_api_base": SANDBOX, "capi_base": SANDBOX}
        )
    services = Services.open(settings)
    if demo:
        seed_demo(services, FIXTURES)
    from tui.app import ConsoleApp

    ConsoleApp(services, demo=demo).run()
    return EXIT_OK
