"""`lcc kill-switch ACCOUNT_ID --reason TEXT [--json]`: stop one sender account's sending now.

The console's `K` from a shell, for a server that runs `lcc scheduler` with no console open:
every Active campaign of the account is suspended (a delivery in another process stops within a
second) and its Planned ones are held. 0 pulled (even if nothing was Active), 2 an unknown
account or no reason.
"""

from __future__ import annotations

import argparse
import getpass

from rich.text import Text

from core.errors import InputError, NotFound
from core.service import Services
from tui.output import EXIT_OK, print_json, settings_from, stdout_console


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def run(args: argparse.Namespace) -> int:
    services = Services.open(settings_from(args))
    account = services.store.directory.account(args.account_id)
    if account is None:
        raise NotFound(f"no sender account {args.account_id!r} in {services.store.data_dir}")
    if not args.reason.strip():
        raise InputError("say why: each campaign's history keeps the reason", source="--reason")
    held = [c.id for c in services.kill_switch_targets().get(account.id, ([], []))[1]]
    suspended = services.kill_switch(account.id, actor=actor(), reason=args.reason)
    if args.json:
        print_json(
            {
                "account": account.id,
                "suspended": [c.id for c in suspended],
                "held": held,
            }
        )
        return EXIT_OK
    console = stdout_console()
    console.print(
        Text(
            f"{account.name} ({account.id}): {len(suspended)} Active campaign(s) suspended, "
            f"{len(held)} Planned held."
        )
    )
    for campaign in suspended:
        console.print(Text(f"  suspended {campaign.id}  {campaign.name}"))
    for campaign_id in held:
        console.print(Text(f"  held      {campaign_id}"))
    return EXIT_OK
