"""Small widgets shared by several screens."""

from __future__ import annotations

from textual.widgets import Static


class SandboxBadge(Static):
    """A bar that cannot be missed while the embedded LINE sandbox is in use."""

    def __init__(self) -> None:
        super().__init__(
            "SANDBOX · messages go to the embedded LINE simulator, not to phones",
            id="sandbox-badge",
        )
