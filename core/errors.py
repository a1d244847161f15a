"""Typed errors. Each one carries what went wrong and where, in words an operator can act on."""

from __future__ import annotations


class LccError(Exception):
    """Base of every error the console reports to people instead of a traceback."""


class InputError(LccError):
    """Bad input: a fixture, a CSV, a form field or an HTTP response we cannot use.

    `source` names the file (or form, or URL); `location` the JSON path, line or column.
    """

    def __init__(self, message: str, *, source: str | None = None, location: str | None = None):
        self.message = message
        self.source = source
        self.location = location
        super().__init__(self.describe())

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled whole (a freeze's process reports it through a pipe)."""
        return rebuild_error, (
            type(self),
            self.message,
            {"source": self.source, "location": self.location},
        )

    def describe(self) -> str:
        where = ": ".join(part for part in (self.source, self.location) if part)
        return f"{where}: {self.message}" if where else self.message


class IllegalTransition(LccError):
    """An action that the campaign's current state does not allow."""

    def __init__(self, state: str, action: str, detail: str | None = None):
        self.state = state
        self.action = action
        text = f"cannot {action} a campaign that is {state}"
        super().__init__(f"{text}: {detail}" if detail else text)


class StoreError(LccError):
    """The data directory cannot be read or written safely."""


class StoreCorrupt(StoreError):
    """A store file exists but is not what we wrote; we never overwrite it."""


class StoreLocked(StoreError):
    """Another console holds the data directory's write lock for too long."""


class NotFound(LccError):
    """An unknown campaign, account or segment."""


def rebuild_error(kind: type[Exception], message: str, fields: dict[str, object]) -> Exception:
    """An error with keyword-only fields, back from a pickle."""
    return kind(message, **fields)
