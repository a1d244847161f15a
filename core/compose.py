"""What each recipient receives: the campaign's messages as LINE JSON for one profile.

Composition is Liquid first, then UTM (contract section 4): every templated field is rendered
for the profile (None: the blank profile of a test send, so defaults apply), then the campaign's
UTM parameters are merged into every http(s) link. Templated fields (docs/personalisation.md):

- textV2: `text` (attribute values brace-escaped, since the result is textV2 text);
- imagemap: `altText`, each action's `linkUri`, `text`, `clipboardText` and `label`, and the
  video's `externalLink.linkUri` and `externalLink.label` (plain text to LINE, not escaped).

Asset URLs (`baseUrl`, the video's content and preview URLs) are never templated nor given UTM
parameters: LINE fetches and caches them, and they are the same for every recipient. UTM goes to
every http(s) URL in a textV2 `text`, to imagemap `uri` actions and to the video's external link,
never to `tel:`/`line:` links, message or clipboard actions.

For a delivery loop, build one `Composer` per campaign and call `bundle(profile)` per recipient:
the LINE JSON skeleton and the UTM parameters are then worked out once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from core.models import Campaign, CampaignSpec, Profile, message_to_line
from core.personalize import TemplateError, render
from core.personalize import is_personalised as text_is_personalised
from core.utm import (
    apply_utm,
    area_content,
    campaign_parameters,
    find_urls,
    link_content,
    video_content,
    with_content,
)

UNASSIGNED_CAMPAIGN_ID = "cmp-000000000000"
"""`{{campaign.id}}` for a campaign not stored yet (a fixture being previewed or validated): the
shape and length of a real id, so URL lengths come out as they will be."""

Params = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class LinkRef:
    """One link a recipient can tap. `message` is 0-based; `where` is the JSON path inside the
    message (`text`, `actions[0].linkUri`, `video.externalLink.linkUri`); `original` is the link
    after Liquid and before UTM, `url` its final form."""

    message: int
    where: str
    original: str
    url: str


@dataclass(frozen=True)
class TemplateField:
    """A field composition renders with Liquid: `messages[message].where`."""

    message: int
    where: str
    text: str
    textv2: bool
    """True for textV2 text, where attribute values are brace-escaped."""

    @property
    def path(self) -> str:
        return f"messages[{self.message}].{self.where}"


def campaign_id_of(campaign: CampaignSpec, campaign_id: str | None = None) -> str:
    """The id `{{campaign.id}}` renders to: the given one, the stored campaign's, or a stand-in."""
    if campaign_id:
        return campaign_id
    if isinstance(campaign, Campaign):
        return campaign.id
    return UNASSIGNED_CAMPAIGN_ID


_ACTION_FIELDS = ("linkUri", "text", "clipboardText", "label")


def _template_fields_of(index: int, line: dict[str, Any]) -> list[TemplateField]:
    kind = line.get("type")
    fields: list[TemplateField] = []
    if kind == "textV2":
        text = line.get("text")
        if isinstance(text, str):
            fields.append(TemplateField(index, "text", text, True))
    elif kind == "imagemap":
        alt = line.get("altText")
        if isinstance(alt, str):
            fields.append(TemplateField(index, "altText", alt, False))
        for number, action in enumerate(line.get("actions") or []):
            if not isinstance(action, dict) or action.get("type") not in (
                "uri",
                "message",
                "clipboard",
            ):
                continue
            for name in _ACTION_FIELDS:
                value = action.get(name)
                if isinstance(value, str):
                    fields.append(TemplateField(index, f"actions[{number}].{name}", value, False))
        link = (line.get("video") or {}).get("externalLink")
        if isinstance(link, dict):
            for name in ("linkUri", "label"):
                value = link.get(name)
                if isinstance(value, str):
                    fields.append(TemplateField(index, f"video.externalLink.{name}", value, False))
    return fields


def template_fields(campaign: CampaignSpec) -> list[TemplateField]:
    """Every field of the campaign's messages that holds (or may hold) Liquid."""
    fields: list[TemplateField] = []
    for index, message in enumerate(campaign.messages):
        fields.extend(_template_fields_of(index, message_to_line(message)))
    return fields


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (an orjson round trip: several times faster than deepcopy)."""
    return orjson.loads(orjson.dumps(value))


class Composer:
    """One campaign's composition, prepared once and applied per recipient."""

    def __init__(self, campaign: CampaignSpec, *, campaign_id: str | None = None) -> None:
        self.campaign_id = campaign_id_of(campaign, campaign_id)
        self.campaign_name = campaign.name
        self.params: list[tuple[str, str]] = campaign_parameters(
            campaign.utm, campaign_id=self.campaign_id, campaign_name=campaign.name
        )
        self.per_area_content = campaign.utm.per_area_content
        self._skeletons = [message_to_line(message) for message in campaign.messages]
        self._frozen = [orjson.dumps(line) for line in self._skeletons]
        self._fields = [
            _template_fields_of(index, line) for index, line in enumerate(self._skeletons)
        ]
        self.personalised = any(
            text_is_personalised(field.text) for fields in self._fields for field in fields
        )
        self._shared: tuple[list[dict[str, Any]], list[LinkRef]] | None = None

    def _render(self, field: TemplateField, profile: Profile | None) -> str:
        try:
            return render(
                field.text,
                profile,
                campaign_id=self.campaign_id,
                campaign_name=self.campaign_name,
                braces=field.textv2,
            )
        except TemplateError as error:
            raise error.at(field.path) from None

    def _params_for(self, content: str) -> Params:
        return with_content(self.params, content) if self.per_area_content else self.params

    def _compose(self, profile: Profile | None) -> tuple[list[dict[str, Any]], list[LinkRef]]:
        bundle: list[dict[str, Any]] = []
        links: list[LinkRef] = []
        for index in range(len(self._skeletons)):
            bundle.append(self._compose_one(index, profile, links))
        return bundle, links

    def _compose_one(
        self, index: int, profile: Profile | None, links: list[LinkRef]
    ) -> dict[str, Any]:
        line: dict[str, Any] = orjson.loads(self._frozen[index])
        for field in self._fields[index]:
            _assign(line, field.where, self._render(field, profile))
        if line.get("type") == "textV2" and isinstance(line.get("text"), str):
            line["text"] = self._text_links(index, line["text"], links)
        elif line.get("type") == "imagemap":
            self._imagemap_links(index, line, links)
        return line

    def __len__(self) -> int:
        return len(self._skeletons)

    def message(self, index: int, profile: Profile | None) -> tuple[dict[str, Any], list[LinkRef]]:
        """One message for `profile` with its links, so one broken template spoils only its
        own message (the preview shows the others)."""
        links: list[LinkRef] = []
        return self._compose_one(index, profile, links), links

    def skeleton(self, index: int) -> dict[str, Any]:
        """The message as written (templates unrendered, no UTM): a copy."""
        copied: dict[str, Any] = orjson.loads(self._frozen[index])
        return copied

    def message_personalised(self, index: int) -> bool:
        return any(text_is_personalised(field.text) for field in self._fields[index])

    def _text_links(self, index: int, text: str, links: list[LinkRef]) -> str:
        spans = find_urls(text)
        if not spans or not self.params:
            links.extend(LinkRef(index, "text", span.url, span.url) for span in spans)
            return text
        out: list[str] = []
        position = 0
        for ordinal, span in enumerate(spans, start=1):
            final = apply_utm(span.url, self._params_for(link_content(index + 1, ordinal)))
            links.append(LinkRef(index, "text", span.url, final))
            out.append(text[position : span.start])
            out.append(final)
            position = span.end
        out.append(text[position:])
        return "".join(out)

    def _imagemap_links(self, index: int, line: dict[str, Any], links: list[LinkRef]) -> None:
        for number, action in enumerate(line.get("actions") or []):
            if not isinstance(action, dict) or action.get("type") != "uri":
                continue
            original = action.get("linkUri")
            if not isinstance(original, str):
                continue
            final = apply_utm(original, self._params_for(area_content(index + 1, number + 1)))
            action["linkUri"] = final
            links.append(LinkRef(index, f"actions[{number}].linkUri", original, final))
        link = (line.get("video") or {}).get("externalLink")
        if isinstance(link, dict) and isinstance(link.get("linkUri"), str):
            original = link["linkUri"]
            final = apply_utm(original, self._params_for(video_content(index + 1)))
            link["linkUri"] = final
            links.append(LinkRef(index, "video.externalLink.linkUri", original, final))

    def _result(self, profile: Profile | None) -> tuple[list[dict[str, Any]], list[LinkRef]]:
        if self.personalised:
            return self._compose(profile)
        if self._shared is None:
            self._shared = self._compose(None)
        return self._shared

    def bundle(self, profile: Profile | None) -> list[dict[str, Any]]:
        """The LINE message objects for `profile`; a fresh copy the caller may change.

        Raises TemplateError (with `.field` set) when a template cannot render for `profile`.
        """
        bundle, _links = self._result(profile)
        return _copy(bundle) if not self.personalised else bundle

    def links(self, profile: Profile | None = None) -> list[LinkRef]:
        """Every link in the bundle for `profile`, in message order."""
        return list(self._result(profile)[1])


def _assign(line: dict[str, Any], where: str, value: str) -> None:
    """Set `line[where]` for the paths `_template_fields_of` produces."""
    target: Any = line
    parts = where.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[parts[-1]] = value


def render_bundle(
    campaign: CampaignSpec, profile: Profile | None, *, campaign_id: str | None = None
) -> list[dict[str, Any]]:
    """The message objects for `profile` (None: the blank profile of a test send).

    `campaign_id` defaults to the stored campaign's id. For many recipients prefer one
    `Composer(campaign).bundle(profile)` per recipient.
    """
    return Composer(campaign, campaign_id=campaign_id).bundle(profile)


def is_personalised(campaign: CampaignSpec) -> bool:
    """Whether two profiles can receive different content (then it is one push each)."""
    return any(text_is_personalised(field.text) for field in template_fields(campaign))


def campaign_links(
    campaign: CampaignSpec, profile: Profile | None = None, *, campaign_id: str | None = None
) -> list[LinkRef]:
    """Every link of the campaign for `profile` (blank by default), in its final form."""
    return Composer(campaign, campaign_id=campaign_id).links(profile)
