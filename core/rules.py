"""LINE's rules on message objects as LINE receives them: the JSON after rendering.

Everything here works on plain JSON values (dicts, lists, strings), never on our models, so the
same checks serve the sandbox's validate endpoint (a request body from anywhere) and pre-launch
validation (each recipient's rendered bundle, Liquid and UTM already applied). A message that
passes must never be refused by LINE, so where LINE's documentation is vague we take the stricter
reading and say so in `docs/validation.md`.

Each rule has a stable `code` (registered in `RULES`), reports the field path relative to the
request (`messages[1].actions[0].linkUri`) and a message for people that states the number found
and LINE's limit. Every problem is reported, never only the first.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel


class Tab(enum.StrEnum):
    """The seeds' five campaign tabs (contract section 8 names them in lowercase)."""

    AUDIENCE = "audience"
    CONTENT = "content"
    SCHEDULE = "schedule"
    ACTIVATION = "activation"
    UTM = "utm"

    @property
    def label(self) -> str:
        """The tab's name as the console and Engage Studio show it."""
        return TAB_TITLES[self]


TAB_TITLES = {
    Tab.AUDIENCE: "Target Audience",
    Tab.CONTENT: "Campaign Content",
    Tab.SCHEDULE: "Delivery Schedule",
    Tab.ACTIVATION: "Activation",
    Tab.UTM: "UTM Tracking",
}


class Issue(BaseModel):
    """One problem that blocks a launch (contract section 8)."""

    tab: Tab
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class Rule:
    """A rule's stable code, what it demands, and where the number comes from."""

    code: str
    tab: Tab
    demands: str
    source: str


RULES: dict[str, Rule] = {}

MSG_API = "line-messaging-api.md"


def register(code: str, demands: str, source: str, tab: Tab = Tab.CONTENT) -> str:
    """Add a rule to the registry (docs/validation.md lists every registered code)."""
    if code in RULES:
        raise ValueError(f"rule code {code!r} registered twice")
    RULES[code] = Rule(code=code, tab=tab, demands=demands, source=source)
    return code


# --- LINE's numbers ----------------------------------------------------------------------------

MIN_MESSAGES, MAX_MESSAGES = 1, 5
MAX_BODY_BYTES = 2_000_000
"""LINE says "max 2MB" (413 above it); the decimal reading is the stricter one."""
TEXT_MAX = 5000
SUBSTITUTION_MAX = 100
EMOJI_MAX = 20
SUBSTITUTION_KEY = re.compile(r"^[0-9a-zA-Z_]{1,20}$")
URL_MAX = 2000
LINK_URI_MAX = 1000
LINK_SCHEMES = ("http", "https", "line", "tel")
ALT_TEXT_MAX = 1500
IMAGEMAP_WIDTH = 1040
IMAGEMAP_ACTIONS_MAX = 50
MESSAGE_ACTION_TEXT_MAX = 400
CLIPBOARD_TEXT_MAX = 1000
IMAGEMAP_LABEL_MAX = 100
VIDEO_LABEL_MAX = 30
QUICK_REPLY_ITEMS_MAX = 13
QUICK_REPLY_LABEL_MAX = 20
QUICK_REPLY_ACTION_TEXT_MAX = 300
POSTBACK_DATA_MAX = 300
SENDER_NAME_MAX = 20

SENDABLE_TYPES = ("textV2", "imagemap")
QUICK_REPLY_ACTIONS = (
    "postback",
    "message",
    "uri",
    "datetimepicker",
    "camera",
    "cameraRoll",
    "location",
    "clipboard",
)

# --- the rules ---------------------------------------------------------------------------------

S31 = f"{MSG_API} §3.1 [S1][S5]"
S33 = f"{MSG_API} §3.3 [S1][S5]"
S34 = f"{MSG_API} §3.4 [S1][S5][S13]"

MESSAGES_NOT_ARRAY = register("messages_not_array", "`messages` is a JSON array", S31)
MESSAGES_REQUIRED = register("messages_required", f"at least {MIN_MESSAGES} message object", S31)
TOO_MANY_MESSAGES = register(
    "too_many_messages", f"at most {MAX_MESSAGES} message objects per request", S31
)
REQUEST_TOO_LARGE = register(
    "request_too_large",
    f"the serialised push request body is at most {MAX_BODY_BYTES:,} bytes (2 MB)",
    f"{MSG_API} §3.1 [S5]",
)
MESSAGE_NOT_OBJECT = register("message_not_object", "each message is a JSON object", S31)
FIELD_REQUIRED = register(
    "field_required", "LINE's required properties are present and not empty", f"{MSG_API} §3"
)
FIELD_TYPE = register(
    "field_type", "each property has the JSON type LINE takes", f"{MSG_API} §3 [S1]"
)
UNKNOWN_FIELD = register(
    "unknown_field",
    "no property LINE's message object does not define (a typo is never sent)",
    f"{MSG_API} §3 [S1]",
)
UNSUPPORTED_MESSAGE_TYPE = register(
    "unsupported_message_type",
    "the message type is one this channel sends: textV2 or imagemap",
    "seed 001 (Add Messages: Text or Imagemap)",
)
TEXT_EMPTY = register("text_empty", "text has at least 1 character", S33)
TEXT_TOO_LONG = register(
    "text_too_long", f"text is at most {TEXT_MAX} UTF-16 code units (an emoji counts 2)", S33
)
BRACE_UNBALANCED = register(
    "brace_unbalanced",
    "every `{` and `}` is paired; literal braces are written `{{` and `}}`",
    S33,
)
PLACEHOLDER_INVALID = register(
    "placeholder_invalid",
    "a `{key}` placeholder names a possible substitution key (0-9 a-z A-Z _, 1 to 20)",
    S33,
)
PLACEHOLDER_UNDEFINED = register(
    "placeholder_undefined", "every `{key}` placeholder is defined in `substitution`", S33
)
SUBSTITUTION_KEY_INVALID = register(
    "substitution_key_invalid", "substitution keys match `^[0-9a-zA-Z_]{1,20}$`", S33
)
TOO_MANY_SUBSTITUTIONS = register(
    "too_many_substitutions", f"at most {SUBSTITUTION_MAX} substitution objects", S33
)
TOO_MANY_EMOJI = register(
    "too_many_emoji",
    f"at most {EMOJI_MAX} emoji per message (each use of an emoji substitution in the text)",
    S33,
)
MENTION_NOT_ALLOWED = register(
    "mention_not_allowed",
    "no mention substitutions: LINE honours them only in group and multi-person chats, "
    "and a campaign sends to each friend one to one",
    S33,
)
SUBSTITUTION_TYPE_UNSUPPORTED = register(
    "substitution_type_unsupported", "substitution type is `emoji` (or `mention`)", S33
)
URL_NOT_HTTPS = register("url_not_https", "image, video and icon URLs use https", S34)
URL_TOO_LONG = register(
    "url_too_long", f"image, video and icon URLs are at most {URL_MAX} characters", S34
)
URL_INVALID = register("url_invalid", "an http(s) URL has a host", S34)
URL_NOT_ENCODED = register(
    "url_not_encoded",
    "URLs are percent-encoded UTF-8: only URL characters, `%` followed by two hex digits",
    S31,
)
BASE_URL_HAS_EXTENSION = register(
    "base_url_has_extension",
    "baseUrl is a base path without a file extension (LINE appends /240 ... /1040)",
    S34,
)
ALT_TEXT_EMPTY = register("alt_text_empty", "altText has at least 1 character", S34)
ALT_TEXT_TOO_LONG = register(
    "alt_text_too_long", f"altText is at most {ALT_TEXT_MAX} characters", S34
)
BASE_WIDTH_NOT_1040 = register(
    "base_width_not_1040", f"baseSize.width is exactly {IMAGEMAP_WIDTH}", S34
)
BASE_HEIGHT_NOT_POSITIVE = register(
    "base_height_not_positive", "baseSize.height is at least 1", S34
)
ACTIONS_REQUIRED = register("actions_required", "an imagemap has at least 1 action", S34)
TOO_MANY_ACTIONS = register(
    "too_many_actions", f"an imagemap has at most {IMAGEMAP_ACTIONS_MAX} actions", S34
)
UNSUPPORTED_ACTION_TYPE = register(
    "unsupported_action_type", "imagemap actions are uri, message or clipboard", S34
)
URI_EMPTY = register("uri_empty", "a link URI is not empty", S34)
URI_TOO_LONG = register("uri_too_long", f"a link URI is at most {LINK_URI_MAX} characters", S34)
URI_SCHEME_NOT_ALLOWED = register(
    "uri_scheme_not_allowed", "a link URI's scheme is http, https, line or tel", S34
)
ACTION_TEXT_EMPTY = register(
    "action_text_empty", "a message action's text has at least 1 character", S34
)
ACTION_TEXT_TOO_LONG = register(
    "action_text_too_long",
    f"a message action's text is at most {MESSAGE_ACTION_TEXT_MAX} characters "
    f"({QUICK_REPLY_ACTION_TEXT_MAX} in a quick reply)",
    f"{S34}; {MSG_API} §3.5",
)
CLIPBOARD_TEXT_EMPTY = register(
    "clipboard_text_empty", "clipboardText has at least 1 character", S34
)
CLIPBOARD_TEXT_TOO_LONG = register(
    "clipboard_text_too_long", f"clipboardText is at most {CLIPBOARD_TEXT_MAX} characters", S34
)
LABEL_EMPTY = register("label_empty", "a label, when given, has at least 1 character", S34)
LABEL_TOO_LONG = register(
    "label_too_long",
    f"labels: imagemap action {IMAGEMAP_LABEL_MAX}, video link {VIDEO_LABEL_MAX}, "
    f"quick reply {QUICK_REPLY_LABEL_MAX} characters at most",
    f"{S34}; {MSG_API} §3.1",
)
AREA_NEGATIVE = register("area_negative", "an area's x and y are 0 or more", S34)
AREA_NOT_POSITIVE = register("area_not_positive", "an area's width and height are 1 or more", S34)
AREA_OUTSIDE_IMAGE = register(
    "area_outside_image",
    "an area lies inside baseSize (x + width <= 1040, y + height <= height)",
    f"{S34} (LINE's coordinates are in baseSize; the stricter reading of §10.5)",
)
QUICK_REPLY_ITEMS_OUT_OF_RANGE = register(
    "quick_reply_items_out_of_range",
    f"quickReply holds 1 to {QUICK_REPLY_ITEMS_MAX} items",
    S31,
)
QUICK_REPLY_ACTION_UNSUPPORTED = register(
    "quick_reply_action_unsupported",
    "quick reply actions are postback, message, uri, datetimepicker, camera, cameraRoll, "
    "location or clipboard",
    S31,
)
POSTBACK_DATA_TOO_LONG = register(
    "postback_data_too_long", f"postback data is 1 to {POSTBACK_DATA_MAX} characters", S31
)
SENDER_NAME_EMPTY = register("sender_name_empty", "sender.name, when given, is not empty", S31)
SENDER_NAME_TOO_LONG = register(
    "sender_name_too_long", f"sender.name is at most {SENDER_NAME_MAX} characters", S31
)
SENDER_NAME_RESERVED = register(
    "sender_name_reserved",
    "sender.name does not use the word LINE (LINE: 'certain words such as LINE may not be used')",
    S31,
)

MESSAGE_RULES = frozenset(RULES)
"""The codes `message_issues` can report (validation registers its own besides)."""


# --- counting and parsing ----------------------------------------------------------------------


def utf16_length(text: str) -> int:
    """LINE counts characters in UTF-16 code units: a character outside the BMP counts 2."""
    if text.isascii():
        return len(text)
    # two bytes a unit; a lone surrogate (JSON can carry one) is one unit
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


@dataclass(frozen=True)
class Placeholder:
    key: str
    start: int
    """Index of the opening brace in the text (code points)."""


@dataclass(frozen=True)
class BraceProblem:
    char: str
    position: int


@dataclass(frozen=True)
class ParsedTextV2:
    placeholders: tuple[Placeholder, ...]
    unpaired: tuple[BraceProblem, ...]


def parse_text_v2(text: str) -> ParsedTextV2:
    """Read textV2's braces left to right as LINE does.

    `{{` and `}}` are literal braces; `{key}` is a placeholder; any other brace is unpaired.
    A `{` whose next brace is another `{` (or none) is unpaired, so placeholders never nest.
    """
    placeholders: list[Placeholder] = []
    unpaired: list[BraceProblem] = []
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char not in "{}":
            next_brace = _next_brace(text, index)
            index = size if next_brace < 0 else next_brace
            continue
        if index + 1 < size and text[index + 1] == char:
            index += 2
            continue
        if char == "{":
            close = _next_brace(text, index + 1)
            if close >= 0 and text[close] == "}":
                placeholders.append(Placeholder(key=text[index + 1 : close], start=index))
                index = close + 1
                continue
        unpaired.append(BraceProblem(char=char, position=index))
        index += 1
    return ParsedTextV2(placeholders=tuple(placeholders), unpaired=tuple(unpaired))


def _next_brace(text: str, start: int) -> int:
    opening, closing = text.find("{", start), text.find("}", start)
    if opening < 0:
        return closing
    if closing < 0:
        return opening
    return min(opening, closing)


def escape_braces(text: str) -> str:
    """Literal text as textV2 takes it: `{` -> `{{`, `}` -> `}}`."""
    return text.replace("{", "{{").replace("}", "}}")


def excerpt(text: str, position: int, width: int = 12) -> str:
    """A short quoted window of `text` around `position`, for a message people can act on."""
    start, end = max(0, position - width), min(len(text), position + width + 1)
    head = "…" if start else ""
    tail = "…" if end < len(text) else ""
    window = text[start:end].replace("\n", "⏎")
    return f"“{head}{window}{tail}”"


_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_FILE_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")
"""`.png`, `.jpeg`, `.webp`: a file name; `v1.0` (a version folder) is not."""
_RESERVED_SENDER_WORD = re.compile(r"(?<![A-Za-z])line(?![A-Za-z])", re.IGNORECASE)


def push_body_bytes(messages: Any) -> int:
    """Size of the serialised push request that would carry `messages` (the largest form).

    Measured with a full-length user id, a 30-character aggregation unit and
    `notificationDisabled`, so the figure is never below what the delivery engine sends.
    """
    body = {
        "to": "U" + "0" * 32,
        "messages": messages,
        "notificationDisabled": False,
        "customAggregationUnits": ["_" * 30],
    }
    return len(orjson.dumps(body))


# --- the checker -------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class _Checker:
    """Collects issues; the helpers check one property's presence, type and length."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, code: str, field: str, message: str) -> None:
        assert code in RULES, code
        self.issues.append(Issue(tab=RULES[code].tab, field=field, code=code, message=message))

    def obj(
        self, parent: dict[str, Any], key: str, path: str, *, required: bool
    ) -> dict[str, Any] | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.add(FIELD_REQUIRED, f"{path}.{key}", f"{key} is required")
            return None
        if not isinstance(value, dict):
            self.add(FIELD_TYPE, f"{path}.{key}", f"{key} must be an object; found {_kind(value)}")
            return None
        return value

    def string(self, parent: dict[str, Any], key: str, path: str, *, required: bool) -> str | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.add(FIELD_REQUIRED, f"{path}.{key}", f"{key} is required")
            return None
        if not isinstance(value, str):
            self.add(FIELD_TYPE, f"{path}.{key}", f"{key} must be a string; found {_kind(value)}")
            return None
        return value

    def integer(self, parent: dict[str, Any], key: str, path: str) -> int | None:
        value = parent.get(key)
        if value is None:
            self.add(FIELD_REQUIRED, f"{path}.{key}", f"{key} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(FIELD_TYPE, f"{path}.{key}", f"{key} must be an integer; found {_kind(value)}")
            return None
        return value

    def known_keys(
        self, value: dict[str, Any], allowed: tuple[str, ...], path: str, what: str
    ) -> None:
        for key in value:
            if key not in allowed:
                self.add(
                    UNKNOWN_FIELD,
                    f"{path}.{key}",
                    f"{what} has no property {key!r} (LINE's properties: {', '.join(allowed)})",
                )

    def length(
        self,
        value: str,
        field: str,
        name: str,
        *,
        maximum: int,
        empty_code: str | None,
        long_code: str,
    ) -> None:
        """1..maximum characters, counted as LINE counts them (UTF-16 code units)."""
        count = utf16_length(value)
        if count == 0 and empty_code is not None:
            self.add(empty_code, field, f"{name} is empty; LINE needs 1 to {maximum} characters")
        elif count > maximum:
            self.add(long_code, field, f"{name} is {count} characters; LINE allows {maximum}")

    def url_characters(self, value: str, field: str, name: str) -> None:
        match = _URL_CHARS.match(value)
        end = match.end() if match else 0
        if end < len(value):
            char = value[end]
            if char == " ":
                shown = "a space"
            elif char.isprintable() and not char.isspace():
                shown = repr(char)
            else:
                shown = f"U+{ord(char):04X}"
            self.add(
                URL_NOT_ENCODED,
                field,
                f"{name} holds {shown} at character {end + 1}; LINE needs URLs percent-encoded "
                "as UTF-8",
            )
            return
        bad = _BAD_PERCENT.search(value)
        if bad:
            self.add(
                URL_NOT_ENCODED,
                field,
                f"{name} has a '%' at character {bad.start() + 1} that is not followed by two hex "
                "digits; write a literal % as %25",
            )

    def https_url(self, value: str, field: str, name: str) -> None:
        """An image, video or icon URL: https, at most 2000 characters, percent-encoded."""
        if not value:
            self.add(FIELD_REQUIRED, field, f"{name} is empty")
            return
        if not value.lower().startswith("https://"):
            scheme = value.split(":", 1)[0] if ":" in value else "no scheme"
            self.add(URL_NOT_HTTPS, field, f"{name} must start with https:// (found {scheme!r})")
        elif not _host(value):
            self.add(URL_INVALID, field, f"{name} has no host name after https://")
        if len(value) > URL_MAX:
            self.add(
                URL_TOO_LONG, field, f"{name} is {len(value)} characters; LINE allows {URL_MAX}"
            )
        self.url_characters(value, field, name)

    def link_uri(self, value: str, field: str, name: str) -> None:
        """A tap target: http, https, line or tel, at most 1000 characters, percent-encoded."""
        if not value:
            self.add(URI_EMPTY, field, f"{name} is empty; give the link to open")
            return
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme not in LINK_SCHEMES:
            found = f"{scheme!r}" if scheme else "no scheme"
            self.add(
                URI_SCHEME_NOT_ALLOWED,
                field,
                f"{name} uses {found}; LINE allows http, https, line and tel",
            )
        elif scheme in ("http", "https") and not _host(value):
            self.add(URL_INVALID, field, f"{name} has no host name after {scheme}://")
        if len(value) > LINK_URI_MAX:
            self.add(
                URI_TOO_LONG,
                field,
                f"{name} is {len(value)} characters; LINE allows {LINK_URI_MAX}",
            )
        self.url_characters(value, field, name)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


# --- entry point -------------------------------------------------------------------------------


def message_issues(raw_messages: Any) -> list[Issue]:
    """Every rule LINE applies to a request's `messages` array (fields relative to the request).

    This is what the sandbox's validate endpoint answers with, and what pre-launch validation runs
    on each rendered bundle.
    """
    checker = _Checker()
    if not isinstance(raw_messages, list):
        checker.add(
            MESSAGES_NOT_ARRAY,
            "messages",
            f"messages must be an array of message objects; found {_kind(raw_messages)}",
        )
        return checker.issues
    count = len(raw_messages)
    if count < MIN_MESSAGES:
        checker.add(
            MESSAGES_REQUIRED,
            "messages",
            f"add at least one message; LINE takes {MIN_MESSAGES} to {MAX_MESSAGES}",
        )
    elif count > MAX_MESSAGES:
        checker.add(
            TOO_MANY_MESSAGES,
            "messages",
            f"{count} messages; LINE allows {MAX_MESSAGES} in one request",
        )
    for index, message in enumerate(raw_messages):
        _message(checker, message, f"messages[{index}]")
    try:
        size = push_body_bytes(raw_messages)
    except TypeError:  # not JSON at all: the shape issues above already say why
        size = 0
    if size > MAX_BODY_BYTES:
        checker.add(
            REQUEST_TOO_LARGE,
            "messages",
            f"the push request body is {size:,} bytes; LINE allows {MAX_BODY_BYTES:,} (2 MB)",
        )
    return checker.issues


TEXT_V2_KEYS = ("type", "text", "substitution", "quoteToken", "quickReply", "sender")
IMAGEMAP_KEYS = (
    "type",
    "baseUrl",
    "altText",
    "baseSize",
    "actions",
    "video",
    "quickReply",
    "sender",
)


def _message(checker: _Checker, message: Any, path: str) -> None:
    if not isinstance(message, dict):
        checker.add(
            MESSAGE_NOT_OBJECT, path, f"a message must be a JSON object; found {_kind(message)}"
        )
        return
    kind = checker.string(message, "type", path, required=True)
    if kind is None:
        return
    if kind == "textV2":
        checker.known_keys(message, TEXT_V2_KEYS, path, "a textV2 message")
        _text_v2(checker, message, path)
    elif kind == "imagemap":
        checker.known_keys(message, IMAGEMAP_KEYS, path, "an imagemap message")
        _imagemap(checker, message, path)
    else:
        hint = " (write it as textV2: the same text, with {{ and }} for literal braces)"
        checker.add(
            UNSUPPORTED_MESSAGE_TYPE,
            f"{path}.type",
            f"message type {kind!r} is not sent on this channel; it sends textV2 and imagemap "
            f"messages{hint if kind == 'text' else ''}",
        )
        return
    _quick_reply(checker, message, path)
    _sender(checker, message, path)


# --- textV2 ------------------------------------------------------------------------------------


def _text_v2(checker: _Checker, message: dict[str, Any], path: str) -> None:
    text = checker.string(message, "text", path, required=True)
    substitution = checker.obj(message, "substitution", path, required=False)
    checker.string(message, "quoteToken", path, required=False)
    emoji_keys = _substitutions(checker, substitution or {}, f"{path}.substitution")
    if text is None:
        return
    field = f"{path}.text"
    checker.length(
        text, field, "text", maximum=TEXT_MAX, empty_code=TEXT_EMPTY, long_code=TEXT_TOO_LONG
    )
    parsed = parse_text_v2(text)
    for problem in parsed.unpaired:
        double = problem.char * 2
        checker.add(
            BRACE_UNBALANCED,
            field,
            f"unpaired {problem.char!r} at character {problem.position + 1} in "
            f"{excerpt(text, problem.position)}; LINE reads {{key}} as a substitution, so write "
            f"{double!r} for a literal brace",
        )
    defined = substitution or {}
    reported: set[str] = set()
    for placeholder in parsed.placeholders:
        key = placeholder.key
        if key in reported:
            continue
        reported.add(key)
        if not SUBSTITUTION_KEY.match(key):
            checker.add(
                PLACEHOLDER_INVALID,
                field,
                f"{{{key}}} at character {placeholder.start + 1} is not a substitution key "
                "(1 to 20 of 0-9 a-z A-Z _); for literal braces write {{ and }}",
            )
        elif key not in defined:
            checker.add(
                PLACEHOLDER_UNDEFINED,
                field,
                f"placeholder {{{key}}} at character {placeholder.start + 1} is not defined in "
                "substitution; define it or write {{ and }} for literal braces",
            )
    emoji = sum(1 for p in parsed.placeholders if p.key in emoji_keys)
    if emoji > EMOJI_MAX:
        checker.add(
            TOO_MANY_EMOJI,
            field,
            f"the text holds {emoji} emoji; LINE allows {EMOJI_MAX} per message",
        )


EMOJI_KEYS = ("type", "productId", "emojiId")


def _substitutions(checker: _Checker, substitution: dict[str, Any], path: str) -> set[str]:
    """Check every substitution object; returns the keys that are emoji."""
    if len(substitution) > SUBSTITUTION_MAX:
        checker.add(
            TOO_MANY_SUBSTITUTIONS,
            path,
            f"substitution holds {len(substitution)} objects; LINE allows {SUBSTITUTION_MAX}",
        )
    emoji: set[str] = set()
    for key, value in substitution.items():
        where = f"{path}.{key}"
        if not SUBSTITUTION_KEY.match(key):
            checker.add(
                SUBSTITUTION_KEY_INVALID,
                where,
                f"substitution key {key!r} ({len(key)} characters) must be 1 to 20 of "
                "0-9 a-z A-Z _",
            )
        if not isinstance(value, dict):
            checker.add(
                FIELD_TYPE, where, f"substitution {key!r} must be an object; found {_kind(value)}"
            )
            continue
        kind = checker.string(value, "type", where, required=True)
        if kind == "emoji":
            emoji.add(key)
            checker.known_keys(value, EMOJI_KEYS, where, "an emoji substitution")
            for name in ("productId", "emojiId"):
                found = checker.string(value, name, where, required=True)
                if found == "":
                    checker.add(FIELD_REQUIRED, f"{where}.{name}", f"{name} is empty")
        elif kind == "mention":
            checker.add(
                MENTION_NOT_ALLOWED,
                where,
                f"substitution {key!r} is a mention: LINE honours mentions only in group chats, "
                "and a campaign sends to each friend one to one; remove it or use an emoji",
            )
        elif kind is not None:
            checker.add(
                SUBSTITUTION_TYPE_UNSUPPORTED,
                f"{where}.type",
                f"substitution type {kind!r} does not exist; LINE offers emoji (and mention, "
                "for group chats only)",
            )
    return emoji


# --- imagemap ----------------------------------------------------------------------------------

URI_ACTION_KEYS = ("type", "linkUri", "label", "area")
MESSAGE_ACTION_KEYS = ("type", "text", "label", "area")
CLIPBOARD_ACTION_KEYS = ("type", "clipboardText", "label", "area")
AREA_KEYS = ("x", "y", "width", "height")
VIDEO_KEYS = ("originalContentUrl", "previewImageUrl", "area", "externalLink")
EXTERNAL_LINK_KEYS = ("linkUri", "label")


@dataclass(frozen=True)
class _Frame:
    """The imagemap's base size, as far as it is known, for checking areas."""

    width: int | None
    height: int | None


def _imagemap(checker: _Checker, message: dict[str, Any], path: str) -> None:
    base_url = checker.string(message, "baseUrl", path, required=True)
    if base_url is not None:
        field = f"{path}.baseUrl"
        checker.https_url(base_url, field, "baseUrl")
        try:
            base_path = urlsplit(base_url).path
        except ValueError:
            base_path = ""
        extension = _FILE_EXTENSION.search(base_path)
        if extension:
            checker.add(
                BASE_URL_HAS_EXTENSION,
                field,
                f"baseUrl ends in {extension.group()!r}: LINE fetches baseUrl/240 ... "
                "baseUrl/1040, so give the base path without a file extension",
            )
    alt_text = checker.string(message, "altText", path, required=True)
    if alt_text is not None:
        checker.length(
            alt_text,
            f"{path}.altText",
            "altText",
            maximum=ALT_TEXT_MAX,
            empty_code=ALT_TEXT_EMPTY,
            long_code=ALT_TEXT_TOO_LONG,
        )
    frame = _base_size(checker, message, path)
    _actions(checker, message, path, frame)
    video = checker.obj(message, "video", path, required=False)
    if video is not None:
        _video(checker, video, f"{path}.video", frame)


def _base_size(checker: _Checker, message: dict[str, Any], path: str) -> _Frame:
    size = checker.obj(message, "baseSize", path, required=True)
    if size is None:
        return _Frame(None, None)
    where = f"{path}.baseSize"
    checker.known_keys(size, ("width", "height"), where, "baseSize")
    width = checker.integer(size, "width", where)
    height = checker.integer(size, "height", where)
    if width is not None and width != IMAGEMAP_WIDTH:
        checker.add(
            BASE_WIDTH_NOT_1040,
            f"{where}.width",
            f"baseSize.width is {width}; LINE requires exactly {IMAGEMAP_WIDTH}",
        )
    if height is not None and height < 1:
        checker.add(
            BASE_HEIGHT_NOT_POSITIVE,
            f"{where}.height",
            f"baseSize.height is {height}; give the image's height at a width of 1040 (1 or more)",
        )
    return _Frame(
        width if width is not None and width > 0 else None,
        height if height is not None and height > 0 else None,
    )


def _actions(checker: _Checker, message: dict[str, Any], path: str, frame: _Frame) -> None:
    actions = message.get("actions")
    where = f"{path}.actions"
    if actions is None:
        checker.add(ACTIONS_REQUIRED, where, "an imagemap needs at least one tap area (actions)")
        return
    if not isinstance(actions, list):
        checker.add(FIELD_TYPE, where, f"actions must be an array; found {_kind(actions)}")
        return
    if not actions:
        checker.add(ACTIONS_REQUIRED, where, "an imagemap needs at least one tap area (actions)")
    elif len(actions) > IMAGEMAP_ACTIONS_MAX:
        checker.add(
            TOO_MANY_ACTIONS,
            where,
            f"{len(actions)} actions; LINE allows {IMAGEMAP_ACTIONS_MAX} per imagemap",
        )
    for index, action in enumerate(actions):
        _action(checker, action, f"{where}[{index}]", frame)


def _action(checker: _Checker, action: Any, path: str, frame: _Frame) -> None:
    if not isinstance(action, dict):
        checker.add(FIELD_TYPE, path, f"an action must be an object; found {_kind(action)}")
        return
    kind = checker.string(action, "type", path, required=True)
    if kind == "uri":
        checker.known_keys(action, URI_ACTION_KEYS, path, "a uri action")
        link = checker.string(action, "linkUri", path, required=True)
        if link is not None:
            checker.link_uri(link, f"{path}.linkUri", "linkUri")
    elif kind == "message":
        checker.known_keys(action, MESSAGE_ACTION_KEYS, path, "a message action")
        text = checker.string(action, "text", path, required=True)
        if text is not None:
            checker.length(
                text,
                f"{path}.text",
                "text",
                maximum=MESSAGE_ACTION_TEXT_MAX,
                empty_code=ACTION_TEXT_EMPTY,
                long_code=ACTION_TEXT_TOO_LONG,
            )
    elif kind == "clipboard":
        checker.known_keys(action, CLIPBOARD_ACTION_KEYS, path, "a clipboard action")
        text = checker.string(action, "clipboardText", path, required=True)
        if text is not None:
            checker.length(
                text,
                f"{path}.clipboardText",
                "clipboardText",
                maximum=CLIPBOARD_TEXT_MAX,
                empty_code=CLIPBOARD_TEXT_EMPTY,
                long_code=CLIPBOARD_TEXT_TOO_LONG,
            )
    elif kind is not None:
        checker.add(
            UNSUPPORTED_ACTION_TYPE,
            f"{path}.type",
            f"imagemap action type {kind!r} does not exist; LINE offers uri, message and clipboard",
        )
    label = checker.string(action, "label", path, required=False)
    if label is not None:
        checker.length(
            label,
            f"{path}.label",
            "label",
            maximum=IMAGEMAP_LABEL_MAX,
            empty_code=LABEL_EMPTY,
            long_code=LABEL_TOO_LONG,
        )
    area = checker.obj(action, "area", path, required=True)
    if area is not None:
        _area(checker, area, f"{path}.area", frame)


def _area(checker: _Checker, area: dict[str, Any], path: str, frame: _Frame) -> None:
    checker.known_keys(area, AREA_KEYS, path, "an area")
    values = {name: checker.integer(area, name, path) for name in AREA_KEYS}
    for name in ("x", "y"):
        value = values[name]
        if value is not None and value < 0:
            checker.add(
                AREA_NEGATIVE, f"{path}.{name}", f"area.{name} is {value}; LINE needs 0 or more"
            )
    for name in ("width", "height"):
        value = values[name]
        if value is not None and value < 1:
            checker.add(
                AREA_NOT_POSITIVE, f"{path}.{name}", f"area.{name} is {value}; LINE needs 1 or more"
            )
    for origin, extent, limit, axis in (
        ("x", "width", frame.width, "wide"),
        ("y", "height", frame.height, "high"),
    ):
        start, size = values[origin], values[extent]
        if start is None or size is None or limit is None or size < 1:
            continue
        if start + size > limit:
            checker.add(
                AREA_OUTSIDE_IMAGE,
                f"{path}.{extent}",
                f"the area reaches {origin}={start + size} ({origin} {start} + {extent} "
                f"{size}); the image is {limit} {axis}",
            )


def _video(checker: _Checker, video: dict[str, Any], path: str, frame: _Frame) -> None:
    checker.known_keys(video, VIDEO_KEYS, path, "an imagemap video")
    for name in ("originalContentUrl", "previewImageUrl"):
        url = checker.string(video, name, path, required=True)
        if url is not None:
            checker.https_url(url, f"{path}.{name}", name)
    area = checker.obj(video, "area", path, required=True)
    if area is not None:
        _area(checker, area, f"{path}.area", frame)
    link = checker.obj(video, "externalLink", path, required=False)
    if link is None:
        return
    where = f"{path}.externalLink"
    checker.known_keys(link, EXTERNAL_LINK_KEYS, where, "a video's externalLink")
    uri = checker.string(link, "linkUri", where, required=True)
    if uri is not None:
        checker.link_uri(uri, f"{where}.linkUri", "linkUri")
    label = checker.string(link, "label", where, required=True)
    if label is not None:
        checker.length(
            label,
            f"{where}.label",
            "label",
            maximum=VIDEO_LABEL_MAX,
            empty_code=LABEL_EMPTY,
            long_code=LABEL_TOO_LONG,
        )


# --- common properties -------------------------------------------------------------------------


def _quick_reply(checker: _Checker, message: dict[str, Any], path: str) -> None:
    quick = checker.obj(message, "quickReply", path, required=False)
    if quick is None:
        return
    where = f"{path}.quickReply"
    checker.known_keys(quick, ("items",), where, "quickReply")
    items = quick.get("items")
    if not isinstance(items, list):
        if items is None:
            checker.add(FIELD_REQUIRED, f"{where}.items", "items is required")
        else:
            checker.add(
                FIELD_TYPE, f"{where}.items", f"items must be an array; found {_kind(items)}"
            )
        return
    if not items or len(items) > QUICK_REPLY_ITEMS_MAX:
        checker.add(
            QUICK_REPLY_ITEMS_OUT_OF_RANGE,
            f"{where}.items",
            f"quickReply holds {_plural(len(items), 'item')}; LINE allows 1 to "
            f"{QUICK_REPLY_ITEMS_MAX}",
        )
    for index, item in enumerate(items):
        _quick_reply_item(checker, item, f"{where}.items[{index}]")


def _quick_reply_item(checker: _Checker, item: Any, path: str) -> None:
    if not isinstance(item, dict):
        checker.add(FIELD_TYPE, path, f"a quick reply item must be an object; found {_kind(item)}")
        return
    checker.known_keys(item, ("type", "imageUrl", "action"), path, "a quick reply item")
    kind = checker.string(item, "type", path, required=True)
    if kind is not None and kind != "action":
        checker.add(
            FIELD_TYPE, f"{path}.type", f"a quick reply item's type is 'action'; found {kind!r}"
        )
    image = checker.string(item, "imageUrl", path, required=False)
    if image is not None:
        checker.https_url(image, f"{path}.imageUrl", "imageUrl")
    action = checker.obj(item, "action", path, required=True)
    if action is None:
        return
    where = f"{path}.action"
    action_kind = checker.string(action, "type", where, required=True)
    if action_kind is not None and action_kind not in QUICK_REPLY_ACTIONS:
        checker.add(
            QUICK_REPLY_ACTION_UNSUPPORTED,
            f"{where}.type",
            f"quick reply action type {action_kind!r} is not one LINE offers "
            f"({', '.join(QUICK_REPLY_ACTIONS)})",
        )
    label = checker.string(action, "label", where, required=True)
    if label is not None:
        checker.length(
            label,
            f"{where}.label",
            "label",
            maximum=QUICK_REPLY_LABEL_MAX,
            empty_code=LABEL_EMPTY,
            long_code=LABEL_TOO_LONG,
        )
    if action_kind == "uri":
        uri = checker.string(action, "uri", where, required=True)
        if uri is not None:
            checker.link_uri(uri, f"{where}.uri", "uri")
    elif action_kind == "message":
        text = checker.string(action, "text", where, required=True)
        if text is not None:
            checker.length(
                text,
                f"{where}.text",
                "text",
                maximum=QUICK_REPLY_ACTION_TEXT_MAX,
                empty_code=ACTION_TEXT_EMPTY,
                long_code=ACTION_TEXT_TOO_LONG,
            )
    elif action_kind in ("postback", "datetimepicker"):
        data = checker.string(action, "data", where, required=True)
        if data is not None:
            checker.length(
                data,
                f"{where}.data",
                "data",
                maximum=POSTBACK_DATA_MAX,
                empty_code=POSTBACK_DATA_TOO_LONG,
                long_code=POSTBACK_DATA_TOO_LONG,
            )
    elif action_kind == "clipboard":
        text = checker.string(action, "clipboardText", where, required=True)
        if text is not None:
            checker.length(
                text,
                f"{where}.clipboardText",
                "clipboardText",
                maximum=CLIPBOARD_TEXT_MAX,
                empty_code=CLIPBOARD_TEXT_EMPTY,
                long_code=CLIPBOARD_TEXT_TOO_LONG,
            )


def _sender(checker: _Checker, message: dict[str, Any], path: str) -> None:
    sender = checker.obj(message, "sender", path, required=False)
    if sender is None:
        return
    where = f"{path}.sender"
    checker.known_keys(sender, ("name", "iconUrl"), where, "sender")
    name = checker.string(sender, "name", where, required=False)
    if name is not None:
        checker.length(
            name,
            f"{where}.name",
            "sender.name",
            maximum=SENDER_NAME_MAX,
            empty_code=SENDER_NAME_EMPTY,
            long_code=SENDER_NAME_TOO_LONG,
        )
        if _RESERVED_SENDER_WORD.search(name):
            checker.add(
                SENDER_NAME_RESERVED,
                f"{where}.name",
                f"sender.name {name!r} uses the word LINE, which LINE does not allow in a "
                "sender name",
            )
    icon = checker.string(sender, "iconUrl", where, required=False)
    if icon is not None:
        checker.https_url(icon, f"{where}.iconUrl", "iconUrl")
