"""Liquid personalisation: `{{ profile.ATTR | default: '...' }}` rendered per recipient.

Liquid is rendered first; what remains is LINE's textV2 text (contract section 4). Two rules keep
the two syntaxes apart:

- A profile attribute value is brace-escaped (`{` -> `{{`, `}` -> `}}`) before it reaches the
  template, so a value such as `{bob}` reaches the phone as the literal text `{bob}` and can never
  become a textV2 placeholder. Fields that are plain text to LINE (an imagemap's `altText`, a URL)
  are rendered with `braces=False`.
- The blank profile (`None`, Engage Studio's test send) has no attributes at all, so every
  `profile.*` is nil and `default` applies. Undefined variables render empty instead of raising.

Templates are compiled once per distinct source text and cached: a million-profile campaign
renders the same few templates a million times. There are no template files, so `include` and
`render` are refused as syntax errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from liquid import BoundTemplate, Environment, Undefined
from liquid.ast import Node
from liquid.exceptions import LiquidError, LiquidSyntaxError
from liquid.stream import TokenStream
from liquid.tag import Tag

from core.errors import rebuild_error
from core.models import Profile

CAMPAIGN_VARIABLES = frozenset({"id", "name"})
"""What `campaign.*` offers a template."""

KNOWN_ROOTS = frozenset({"profile", "campaign"})

_LIQUID_MARKERS = ("{{", "{%")


class TemplateError(Exception):
    """A template that cannot render: what is wrong and where (1-based line and column)."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ):
        self.message = message
        self.line = line
        self.column = column
        self.field = field
        """Where the template lives when known (`messages[0].text`); set by composition."""
        super().__init__(self.describe())

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled whole (a freeze's process reports it through a pipe)."""
        fields = {"line": self.line, "column": self.column, "field": self.field}
        return rebuild_error, (type(self), self.message, fields)

    def describe(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        if self.line is None:
            return text
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{text} ({where})"

    def at(self, field: str) -> TemplateError:
        """The same error, placed in a field of the campaign."""
        return TemplateError(self.message, line=self.line, column=self.column, field=field)


class _RefusedTag(Tag):
    """`include` and `render` load template files; a campaign has none."""

    block = False

    def parse(self, stream: TokenStream) -> Node:
        raise LiquidSyntaxError(
            f"the '{self.name}' tag is not available: campaign messages have no template files",
            token=stream.current,
        )


class _RefusedInclude(_RefusedTag):
    name = "include"


class _RefusedRender(_RefusedTag):
    name = "render"


class _CampaignEnvironment(Environment):
    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        self.add_tag(_RefusedInclude)
        self.add_tag(_RefusedRender)


_ENV = _CampaignEnvironment(undefined=Undefined, strict_filters=True)


_UNCLOSED = re.compile(r"expected tag end(\w+)")


def _unclosed(message: str, source: str) -> TemplateError:
    """Liquid reports an unclosed block at the end of the text; point at the block's opening."""
    match = _UNCLOSED.search(message)
    if match is None:
        return TemplateError(message)
    tag = match.group(1)
    opening = list(re.finditer(r"\{%-?\s*(" + re.escape(tag) + r")\b", source))
    if not opening:
        return TemplateError(message)
    return _locate(
        f"'{{% {tag} %}}' is never closed (add '{{% end{tag} %}}')",
        source,
        re.compile(re.escape(opening[-1].group(0))),
        start=opening[-1].start(),
    )


def _from_liquid(error: LiquidError, source: str = "") -> TemplateError:
    message = str(error.message) if error.message is not None else type(error).__name__
    try:
        context = error.context()
    except ValueError:
        context = None
    if context is None:
        return _unclosed(message, source) if source else TemplateError(message)
    line, column, *_ = context
    return TemplateError(message, line=line, column=column + 1)


def is_template(text: str) -> bool:
    """Whether Liquid has anything to do with `text` (plain text is returned as it is)."""
    return any(marker in text for marker in _LIQUID_MARKERS)


@lru_cache(maxsize=4096)
def _compile(text: str) -> BoundTemplate | TemplateError:
    try:
        return _ENV.from_string(text)
    except LiquidError as error:
        return _from_liquid(error, text)


def compile_template(text: str) -> BoundTemplate:
    """The parsed template for `text`, from the cache; raises TemplateError on a syntax error."""
    compiled = _compile(text)
    if isinstance(compiled, TemplateError):
        # a fresh instance: re-raising the cached one would grow its traceback on every call
        raise TemplateError(compiled.message, line=compiled.line, column=compiled.column)
    return compiled


def template_errors(text: str) -> list[TemplateError]:
    """Syntax problems in `text`, with location; empty when it compiles."""
    if not is_template(text):
        return []
    compiled = _compile(text)
    if isinstance(compiled, TemplateError):
        return [TemplateError(compiled.message, line=compiled.line, column=compiled.column)]
    return [
        _locate(f"unknown filter '{name}'", text, re.compile(r"\|\s*(" + re.escape(name) + r")\b"))
        for name in compiled.filter_names()
        if name not in _ENV.filters
    ]


def _locate(message: str, text: str, pattern: re.Pattern[str], *, start: int = 0) -> TemplateError:
    match = pattern.search(text, start)
    if match is None:
        return TemplateError(message)
    start = match.start(match.lastindex or 0)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return TemplateError(message, line=line, column=column)


def escape_braces(value: str) -> str:
    """textV2's escape for a literal brace: `{` -> `{{`, `}` -> `}}`."""
    return value.replace("{", "{{").replace("}", "}}")


def _attributes(profile: Profile | None, braces: bool) -> Mapping[str, Any]:
    if profile is None:
        return {}
    if not braces:
        return profile.attributes
    return {
        key: escape_braces(value) if isinstance(value, str) else value
        for key, value in profile.attributes.items()
    }


def render(
    text: str,
    profile: Profile | None,
    *,
    campaign_id: str,
    campaign_name: str,
    braces: bool = True,
) -> str:
    """`text` with Liquid rendered for `profile` (None: the blank profile, defaults apply).

    With `braces` (textV2 text), attribute values and campaign fields are brace-escaped. Raises
    TemplateError when the template cannot compile or fails while rendering.
    """
    if not is_template(text):
        return text
    plan = _plan(text)
    if plan is not None:
        return _render_plan(plan, profile, campaign_id, campaign_name, braces)
    return render_with_liquid(
        text, profile, campaign_id=campaign_id, campaign_name=campaign_name, braces=braces
    )


def render_with_liquid(
    text: str,
    profile: Profile | None,
    *,
    campaign_id: str,
    campaign_name: str,
    braces: bool = True,
) -> str:
    """`render` always through python-liquid (the reference the fast path is tested against)."""
    template = compile_template(text)
    if braces:
        campaign = {"id": escape_braces(campaign_id), "name": escape_braces(campaign_name)}
    else:
        campaign = {"id": campaign_id, "name": campaign_name}
    try:
        return template.render(profile=_attributes(profile, braces), campaign=campaign)
    except LiquidError as error:
        raise _from_liquid(error, text) from None


# --- the fast path --------------------------------------------------------------------------
# Most campaign text is literal text plus `{{ profile.x | default: '...' }}` outputs. Such a
# template is rendered by joining strings, with exactly Liquid's output rules (tested against
# Liquid itself); anything else goes through python-liquid.

_SIMPLE_OUTPUT = re.compile(
    r"\{\{\s*(profile|campaign)\.([A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\|\s*default\s*:\s*(?:'([^'\\{}]*)'|\"([^\"\\{}]*)\")\s*)?\}\}"
)

_Part = str | tuple[str, str, str | None]


@lru_cache(maxsize=4096)
def _plan(text: str) -> tuple[_Part, ...] | None:
    """`text` as literal strings and (root, key, default) outputs, or None when it needs Liquid."""
    if "{%" in text:
        return None
    parts: list[_Part] = []
    position = 0
    for match in _SIMPLE_OUTPUT.finditer(text):
        literal = text[position : match.start()]
        if "{{" in literal or literal.endswith("{"):
            return None
        if literal:
            parts.append(literal)
        default = match.group(3) if match.group(3) is not None else match.group(4)
        parts.append((match.group(1), match.group(2), default))
        position = match.end()
    rest = text[position:]
    if "{{" in rest:
        return None
    if rest:
        parts.append(rest)
    return tuple(parts)


def _liquid_string(value: object) -> str:
    """Liquid's output of a scalar: nil is empty, booleans are lowercase."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render_plan(
    plan: tuple[_Part, ...],
    profile: Profile | None,
    campaign_id: str,
    campaign_name: str,
    braces: bool,
) -> str:
    attributes = profile.attributes if profile is not None else {}
    campaign = {"id": campaign_id, "name": campaign_name}
    out: list[str] = []
    for part in plan:
        if isinstance(part, str):
            out.append(part)
            continue
        root, key, default = part
        value = (attributes if root == "profile" else campaign).get(key)
        if default is not None and (value is None or value is False or value == ""):
            out.append(default)  # Liquid's `default`: nil, false and "" (never 0) take it
            continue
        text = _liquid_string(value)
        out.append(escape_braces(text) if braces and isinstance(value, str) else text)
    return "".join(out)


@lru_cache(maxsize=4096)
def _variable_paths(text: str) -> tuple[tuple[str, ...], ...]:
    compiled = _compile(text)
    if isinstance(compiled, TemplateError):
        return ()
    paths = []
    for segments in compiled.global_variable_segments():
        paths.append(tuple(str(part) for part in segments if not isinstance(part, list)))
    return tuple(paths)


def variable_paths(text: str) -> list[tuple[str, ...]]:
    """Every global variable the template reads, as path segments (`('profile', 'first_name')`).

    A template that does not compile reads nothing (its syntax error is reported separately).
    """
    if not is_template(text):
        return []
    return list(_variable_paths(text))


def is_personalised(text: str) -> bool:
    """Whether `text` refers to `profile.*` at all (two recipients can then see different text)."""
    return any(path and path[0] == "profile" for path in variable_paths(text))


def referenced_attributes(text: str) -> set[str]:
    """The profile attributes `text` reads (`{{ profile.first_name }}` -> `{'first_name'}`)."""
    return {path[1] for path in variable_paths(text) if len(path) > 1 and path[0] == "profile"}


def unknown_variables(text: str) -> set[str]:
    """Variables that always render empty: roots other than profile/campaign, or unknown
    `campaign.*` fields (`{{ first_name }}` where `{{ profile.first_name }}` was meant)."""
    unknown = set()
    for path in variable_paths(text):
        if not path:
            continue
        unknown_root = path[0] not in KNOWN_ROOTS
        unknown_field = path[0] == "campaign" and (
            len(path) < 2 or path[1] not in CAMPAIGN_VARIABLES
        )
        if unknown_root or unknown_field:
            unknown.add(".".join(path))
    return unknown
