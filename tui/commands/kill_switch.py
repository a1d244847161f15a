"""`lcc kill-switch ACCOUNT_ID --reason TEXT [--json]`: stop one sender account's sending now.

The console's `K` from a shell, for a server that runs `lcc scheduler` with no console open:
every Active campaign of the account is suspended (a delivery in another process stops within a
second) and its Planned ones are held. 0 pulled (even if nothing was Active), 2 an unknown
account or no reason.
"""

from __future__ import annotations

import argparse

from rich.text import Text

from core.errors import InputError, NotFound
from core.service import Services
from tui.output import EXIT_OK, actor, print_json, settings_from, stdout_console


def run(args: argparse.Namespace) -> int:
    services = Services.open(settings_from(args))
    account = services.store.directory.account(args.account_id)
    if account is None:
        raise NotFound(f"no sender account {args.account_id!r} in {services.store.data_dir}")
    if not args.reason.strip():
        raise InputError("say why: each campaign's history keeps the reason", source="--reason")
    outcome = services.pull_kill_switch(account.id, actor=actor("cli"), reason=args.reason)
    if args.json:
        print_json(
            {
                "account": account.id,
                "suspended": [c.id for c in outcome.suspended],
                "held": [c.id for c in outcome.held],
            }
        )
        return EXIT_OK
    console = stdout_console()
    console.print(
        Text(
            f"{account.name} ({account.id}): {len(outcome.suspended)} Active campaign(s) "
            f"suspended, {len(outcome.held)} Planned held."
        )
    )
    for campaign in outcome.suspended:
        console.print(Text(f"  suspended {campaign.id}  {campaign.name}"))
    for campaign in outcome.held:
        console.print(Text(f"  held      {campaign.id}"))
    return EXIT_OK
