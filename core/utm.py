"""UTM parameters on every link a recipient can tap (seeds 000 and 001; docs/utm.md).

LINE reports no per-user clicks, so UTM parameters are the only link-level attribution there is.
The merge rule is seed 000's: a parameter already on the URL keeps its place and its value unless
the campaign sets the same key, in which case the campaign's value wins (in place); the
campaign's other keys are appended in a stable order; the fragment stays last. Nothing else in the
URL is decoded, re-encoded or reordered, so applying the parameters twice equals applying them
once.

Finding URLs in free text (a Text v2 body) follows the rules in docs/utm.md: a URL is ASCII,
starts with `http://` or `https://`, and ends before whitespace, non-ASCII text (Japanese and
full-width punctuation), `<>"` and a lone textV2 brace; trailing punctuation and closing brackets
or quotes that are not balanced inside the URL are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote

from core.models import UtmSettings
from core.personalize import (
    CAMPAIGN_VARIABLES,
    TemplateError,
    render,
    template_errors,
    variable_paths,
)

STANDARD_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
"""Names an operator may add: URL-unreserved characters only, so a name never needs encoding."""

ParamsFor = Callable[[int], Sequence[tuple[str, str]]]
"""Parameters for the n-th link (1-based) of a text."""

# --- finding URLs in text -------------------------------------------------------------------

_START = re.compile(r"https?://", re.IGNORECASE)
_SCHEME_CHAR = re.compile(r"[A-Za-z0-9]")
_URL_CHARACTERS = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)
"""RFC 3986's characters (unreserved, reserved, '%'); anything else ends a URL."""
_TRAILING = frozenset(".,;:!?*")
_CLOSERS = {")": "(", "]": "["}
_SPLIT_BEFORE = ".,;!)]'"
"""An `http(s)://` right after one of these starts a new URL (`a.com,https://b.com`)."""
_URL_RUN = re.compile(
    "(?:"
    f"[{re.escape(_URL_CHARACTERS.replace('h', '').replace('H', ''))}]+"
    f"|(?<![{re.escape(_SPLIT_BEFORE)}])[hH]"
    "|[hH](?!(?i:ttps?://))"
    r"|\{\{|\}\}"
    ")*"
)
"""The run of URL characters after `//`: an `h` is one unless it starts an `http(s)://` right
after one of `_SPLIT_BEFORE`; textV2's `{{`/`}}` (an escaped brace) count as part of the URL as
LINE shows it, a lone brace ends it. One regex match: walking the run a character at a time in
Python cost 3-4 us per URL, paid for every recipient of a personalised push (0.4 us now)."""


@dataclass(frozen=True)
class UrlSpan:
    """A URL found in text: `text[start:end] == url`."""

    start: int
    end: int
    url: str


def _scan_end(text: str, start: int) -> int:
    """The end of the run of URL characters from `start` (textV2's `{{`/`}}` count as one)."""
    run = _URL_RUN.match(text, text.index("//", start) + 2)
    assert run is not None  # the pattern matches the empty run
    return run.end()


def _trim(candidate: str) -> str:
    """Drop trailing punctuation and closing brackets/quotes that the URL does not open."""
    while candidate:
        last = candidate[-1]
        if last in _TRAILING:
            candidate = candidate[:-1]
        elif last in _CLOSERS:
            if candidate.count(last) > candidate.count(_CLOSERS[last]):
                candidate = candidate[:-1]
            else:
                break
        elif last == "'":
            if candidate.count("'") % 2 == 1:
                candidate = candidate[:-1]
            else:
                break
        else:
            break
    return candidate


def _has_host(candidate: str) -> bool:
    rest = candidate[candidate.index("//") + 2 :]
    return bool(rest) and rest[0] not in "/?#"


def _iter_urls(text: str) -> Iterator[UrlSpan]:
    position = 0
    while True:
        match = _START.search(text, position)
        if match is None:
            return
        start = match.start()
        if start > 0 and _SCHEME_CHAR.match(text[start - 1]):
            position = match.end()  # `xhttps://` is not a URL start
            continue
        end = _scan_end(text, start)
        candidate = _trim(text[start:end])
        if len(candidate) > len(match.group()) and _has_host(candidate):
            yield UrlSpan(start, start + len(candidate), candidate)
            position = start + len(candidate)
        else:
            position = match.end()


def find_urls(text: str) -> list[UrlSpan]:
    """The http(s) URLs in free text, in order (the rules: docs/utm.md)."""
    if "://" not in text:
        return []
    return list(_iter_urls(text))


# --- the merge ------------------------------------------------------------------------------


def is_web_url(url: str) -> bool:
    """http and https only: never `tel:`, `line:` or anything else."""
    return _START.match(url) is not None


def encode_value(value: str) -> str:
    """Percent-encoded UTF-8, every reserved character included (`a b/c` -> `a%20b%2Fc`).

    A final `.` is encoded too (`v1.` -> `v1%2E`): a URL at the end of a sentence loses its
    trailing dot to the URL finder (and to LINE's own link detection), and the value must not.
    """
    encoded = quote(value, safe="")
    return encoded[:-1] + "%2E" if encoded.endswith(".") else encoded


def _key_of(piece: str) -> str:
    return unquote(piece.split("=", 1)[0].replace("+", " "))


def apply_utm(url: str, params: Sequence[tuple[str, str]]) -> str:
    """`url` with the campaign's `params` merged in (only http(s); idempotent).

    Existing parameters keep their place, spelling and encoding; one whose key the campaign sets
    takes the campaign's value in place (a repeat of that key is dropped, so the campaign's value
    is the only one); the campaign's other keys are appended in `params` order; the fragment
    stays last.
    """
    if not params or not is_web_url(url):
        return url
    return _apply(url, tuple(params))


@lru_cache(maxsize=256)
def _encoded(params: tuple[tuple[str, str], ...]) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for key, value in params:
        wanted.setdefault(key, encode_value(value))
    return wanted


@lru_cache(maxsize=8192)
def _apply(url: str, params: tuple[tuple[str, str], ...]) -> str:
    """The merge, cached: a campaign's links are mostly the same for every recipient."""
    wanted = _encoded(params)
    base, hash_mark, fragment = url.partition("#")
    path, _question, query = base.partition("?")
    pieces = query.split("&") if query else []
    merged: list[str] = []
    placed: set[str] = set()
    for piece in pieces:
        key = _key_of(piece) if piece else ""
        if key in wanted:
            if key in placed:
                continue
            placed.add(key)
            raw_key = piece.split("=", 1)[0]
            merged.append(f"{raw_key}={wanted[key]}")
        else:
            merged.append(piece)
    appended = [f"{key}={value}" for key, value in wanted.items() if key not in placed]
    if appended and merged and merged[-1] == "":
        merged.pop()  # `?a=1&` already ends with the separator the first new key needs
    merged.extend(appended)
    return f"{path}?{'&'.join(merged)}{hash_mark}{fragment}"


def rewrite_text(text: str, params: Sequence[tuple[str, str]]) -> str:
    """Every http(s) URL in `text` with `params` merged in; the text around them untouched."""
    if not params:
        return text
    return rewrite_text_links(text, lambda _ordinal: params)


def rewrite_text_links(text: str, params_for: ParamsFor) -> str:
    """Like `rewrite_text`, with parameters chosen per link (`params_for(1)` for the first)."""
    spans = find_urls(text)
    if not spans:
        return text
    out: list[str] = []
    position = 0
    for ordinal, span in enumerate(spans, start=1):
        out.append(text[position : span.start])
        out.append(apply_utm(span.url, params_for(ordinal)))
        position = span.end
    out.append(text[position:])
    return "".join(out)


# --- the campaign's parameters --------------------------------------------------------------


def _render_value(value: str, campaign_id: str, campaign_name: str) -> str:
    return render(
        value, None, campaign_id=campaign_id, campaign_name=campaign_name, braces=False
    ).strip()


def _written(utm: UtmSettings, campaign_name: str) -> list[tuple[str, str, str]]:
    """(field path, key, value as written) in the order the parameters are appended."""
    campaign_value = utm.utm_campaign if utm.utm_campaign.strip() else campaign_name
    rows = [
        ("utm.utm_source", "utm_source", utm.utm_source),
        ("utm.utm_medium", "utm_medium", utm.utm_medium),
        ("utm.utm_campaign", "utm_campaign", campaign_value),
        ("utm.utm_content", "utm_content", utm.utm_content or ""),
        ("utm.utm_term", "utm_term", utm.utm_term or ""),
    ]
    rows.extend((f"utm.extra.{key}", key, value) for key, value in utm.extra.items())
    return rows


def campaign_parameters(
    utm: UtmSettings, *, campaign_id: str, campaign_name: str
) -> list[tuple[str, str]]:
    """The (key, value) pairs every link gets, templates rendered, blank values left out.

    An empty `utm_campaign` takes the campaign name (seed 000). A key given twice (an `extra`
    that repeats a standard key) keeps its first value; `check_settings` reports it. A value whose
    template does not render is left out here and reported by `check_settings`.
    """
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    for _field, key, written in _written(utm, campaign_name):
        if key in seen or not written.strip():
            continue
        try:
            value = _render_value(written, campaign_id, campaign_name)
        except TemplateError:
            continue
        if value:
            seen.add(key)
            params.append((key, value))
    return params


def with_content(params: Sequence[tuple[str, str]], content: str) -> list[tuple[str, str]]:
    """`params` with `utm_content` set to `content` (in its standard place)."""
    out = [(key, value) for key, value in params if key != "utm_content"]
    position = next(
        (i for i, (key, _v) in enumerate(out) if key not in STANDARD_KEYS[:3]), len(out)
    )
    out.insert(position, ("utm_content", content))
    return out


def area_content(message: int, area: int) -> str:
    """`utm_content` for imagemap tap area `area` of message `message` (both 1-based): `m2-a3`."""
    return f"m{message}-a{area}"


def link_content(message: int, link: int) -> str:
    """`utm_content` for the `link`-th URL of text message `message` (both 1-based): `m1-l2`."""
    return f"m{message}-l{link}"


def video_content(message: int) -> str:
    """`utm_content` for an imagemap video's external link: `m2-video`."""
    return f"m{message}-video"


# --- checks for the UTM tab -----------------------------------------------------------------


@dataclass(frozen=True)
class UtmProblem:
    """One problem on the UTM tab; `field` is a path into the campaign (`utm.extra.foo`)."""

    field: str
    code: str
    message: str


def _value_problems(field: str, key: str, written: str) -> list[UtmProblem]:
    problems = [
        UtmProblem(field, "template_syntax", f"{key}: {error.describe()}")
        for error in template_errors(written)
    ]
    for path in variable_paths(written):
        if path and path[0] == "campaign" and len(path) == 2 and path[1] in CAMPAIGN_VARIABLES:
            continue
        name = ".".join(path)
        hint = (
            " (UTM values are the same for every recipient, so profile attributes are not"
            " available here)"
            if path and path[0] == "profile"
            else ""
        )
        problems.append(
            UtmProblem(
                field,
                "unknown_variable",
                f"{key} uses {{{{ {name} }}}}; only {{{{campaign.id}}}} and "
                f"{{{{campaign.name}}}} are available{hint}",
            )
        )
    return problems


def check_settings(utm: UtmSettings, *, campaign_id: str, campaign_name: str) -> list[UtmProblem]:
    """Every problem with the UTM tab at once (docs/utm.md lists the codes)."""
    problems: list[UtmProblem] = []
    for key in utm.extra:
        field = f"utm.extra.{key}"
        if not PARAMETER_NAME.match(key):
            problems.append(
                UtmProblem(
                    field,
                    "invalid_parameter_name",
                    f"parameter name {key!r} may hold only letters, digits, '_', '.' and '-' "
                    "(1 to 40 characters)",
                )
            )
        if key in STANDARD_KEYS:
            problems.append(
                UtmProblem(
                    field,
                    "duplicate_parameter",
                    f"{key} has its own field on the UTM tab; set it there, not as an extra "
                    "parameter",
                )
            )
        if not utm.extra[key].strip():
            problems.append(
                UtmProblem(
                    field,
                    "empty_value",
                    f"extra parameter {key!r} has no value, so it would be left off every link",
                )
            )
    for field, key, written in _written(utm, campaign_name):
        if field.startswith("utm.extra.") and not written.strip():
            continue  # reported above
        value_problems = _value_problems(field, key, written)
        problems.extend(value_problems)
        if value_problems:
            continue
        try:
            value = _render_value(written, campaign_id, campaign_name)
        except TemplateError as error:
            problems.append(UtmProblem(field, "template_error", f"{key}: {error.describe()}"))
            continue
        if key in ("utm_source", "utm_medium") and not value:
            default = UtmSettings.model_fields[key].default
            problems.append(
                UtmProblem(
                    field,
                    "required_empty",
                    f"{key} is empty; analytics tools do not attribute a visit without it "
                    f"(the default is {default!r})",
                )
            )
        elif written.strip() and not value:
            problems.append(
                UtmProblem(
                    field,
                    "empty_after_template",
                    f"{key} is {written!r}, which renders to nothing, so it would be left off "
                    "every link",
                )
            )
    return problems
