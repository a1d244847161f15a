"""`lcc scheduler [--once]`: start due campaigns, resume interrupted ones, run due exports.

Without `--once` it is a daemon (for a server or tmux): a pass every `LCC_SCHEDULER_INTERVAL_S`
seconds (15). SIGTERM or ctrl+c stops it cleanly: no new request is sent, requests in flight
finish and are recorded, and the campaigns stay Active for the next scheduler to resume.
Exit 0, or 1 when a campaign failed (suspended at its due time or by a fatal answer, or an error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable

from core.scheduler import PassReport, ProgressFor, Scheduler, run_pass
from core.service import Services
from tui.output import EXIT_FAILED, EXIT_OK, settings_from, stderr
from tui.progress import Callback, DeliveryBars, delivery_bars


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    services = Services.open(settings)
    failed = asyncio.run(_once(services) if args.once else _daemon(services))
    return EXIT_FAILED if failed else EXIT_OK


def _say(line: str) -> None:
    stderr.print(f"scheduler: {line}", markup=False, highlight=False)


def _progress_for(services: Services, bars: DeliveryBars) -> ProgressFor:
    def factory(campaign_id: str) -> Callback:
        campaign = services.store.campaigns.find(campaign_id)
        return bars.callback(campaign_id, campaign.name if campaign else campaign_id)

    return factory


def _install_stop(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)


async def _once(services: Services) -> bool:
    _install_stop(lambda: services.stop_deliveries("the scheduler was interrupted"))
    with delivery_bars(stderr) as bars:
        report: PassReport = await run_pass(
            services, progress=_progress_for(services, bars), listener=_say
        )
    if not report.lines():
        _say("nothing to do")
    return report.failed


async def _daemon(services: Services) -> bool:
    with delivery_bars(stderr) as bars:
        scheduler = Scheduler(services, progress=_progress_for(services, bars), listener=_say)
        _install_stop(scheduler.stop)
        _say(
            f"running every {scheduler.interval_s:g} s on {services.store.data_dir} "
            "(ctrl+c or SIGTERM stops it cleanly)"
        )
        await scheduler.run()
    _say("stopped")
    return scheduler.failed
