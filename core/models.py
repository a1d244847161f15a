"""Domain models: what a campaign is made of, as pydantic v2 models.

Message objects keep LINE's own field names (`baseUrl`, `altText`, ...) so that a model dumps to the
exact JSON LINE's API takes. Parsing checks shape and types only; LINE's limits (lengths, counts,
schemes) are checked by validation, which reports every problem at once on its tab instead of
stopping at the first.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)


class StrictModel(BaseModel):
    """Unknown keys are refused, so a typo in a fixture is never silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- message objects ------------------------------------------------------------------------


class Area(StrictModel):
    x: int
    y: int
    width: int
    height: int


class BaseSize(StrictModel):
    width: int
    height: int


class UriAction(StrictModel):
    type: Literal["uri"] = "uri"
    linkUri: str
    label: str | None = None
    area: Area


class MessageAction(StrictModel):
    type: Literal["message"] = "message"
    text: str
    label: str | None = None
    area: Area


class ClipboardAction(StrictModel):
    type: Literal["clipboard"] = "clipboard"
    clipboardText: str
    label: str | None = None
    area: Area


class UnsupportedAction(BaseModel):
    """An imagemap action of a type LINE does not offer for imagemaps; validation refuses it."""

    model_config = ConfigDict(extra="allow")
    type: str
    area: Area | None = None


def _action_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("uri", "message", "clipboard") else "unsupported"


ImagemapAction = Annotated[
    Annotated[UriAction, Tag("uri")]
    | Annotated[MessageAction, Tag("message")]
    | Annotated[ClipboardAction, Tag("clipboard")]
    | Annotated[UnsupportedAction, Tag("unsupported")],
    Discriminator(_action_tag),
]


class ExternalLink(StrictModel):
    linkUri: str
    label: str


class ImagemapVideo(StrictModel):
    originalContentUrl: str
    previewImageUrl: str
    area: Area
    externalLink: ExternalLink | None = None


class Sender(StrictModel):
    name: str | None = None
    iconUrl: str | None = None


class EmojiSubstitution(StrictModel):
    type: Literal["emoji"] = "emoji"
    productId: str
    emojiId: str


class MentionSubstitution(BaseModel):
    """Kept only so validation can refuse it by name: mentions work in group chats only."""

    model_config = ConfigDict(extra="allow")
    type: Literal["mention"] = "mention"
    mentionee: dict[str, Any] = Field(default_factory=dict)


Substitution = Annotated[EmojiSubstitution | MentionSubstitution, Field(discriminator="type")]


class TextV2Message(StrictModel):
    type: Literal["textV2"] = "textV2"
    text: str
    substitution: dict[str, Substitution] | None = None
    quoteToken: str | None = None
    quickReply: dict[str, Any] | None = None
    sender: Sender | None = None


class ImagemapMessage(StrictModel):
    type: Literal["imagemap"] = "imagemap"
    baseUrl: str
    altText: str
    baseSize: BaseSize
    actions: list[ImagemapAction] = Field(default_factory=list)
    video: ImagemapVideo | None = None
    quickReply: dict[str, Any] | None = None
    sender: Sender | None = None


class UnsupportedMessage(BaseModel):
    """A message object of a type this channel does not send; validation refuses it."""

    model_config = ConfigDict(extra="allow")
    type: str


def _message_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("textV2", "imagemap") else "unsupported"


Message = Annotated[
    Annotated[TextV2Message, Tag("textV2")]
    | Annotated[ImagemapMessage, Tag("imagemap")]
    | Annotated[UnsupportedMessage, Tag("unsupported")],
    Discriminator(_message_tag),
]

MESSAGE_TYPES = ("textV2", "imagemap")
MAX_MESSAGES = 5


def message_to_line(message: BaseModel) -> dict[str, Any]:
    """The JSON object LINE's API takes for one message."""
    return message.model_dump(mode="json", exclude_none=True)


# --- schedule, UTM, activation --------------------------------------------------------------


class ImmediateSchedule(StrictModel):
    type: Literal["immediate"] = "immediate"


class ScheduledSchedule(StrictModel):
    type: Literal["scheduled"] = "scheduled"
    at: AwareDatetime
    timezone: str | None = None
    """The IANA zone the operator chose; `at` already carries the offset."""


class RecurringSchedule(BaseModel):
    """Offered by Engage Studio's Always-On campaigns only; validation refuses it here."""

    model_config = ConfigDict(extra="allow")
    type: Literal["recurring"] = "recurring"


Schedule = Annotated[
    ImmediateSchedule | ScheduledSchedule | RecurringSchedule, Field(discriminator="type")
]


class UtmSettings(StrictModel):
    utm_source: str = "line"
    utm_medium: str = "social"
    utm_campaign: str = ""
    """Empty means: the campaign name (seed 000's table)."""
    utm_content: str | None = None
    utm_term: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)
    per_area_content: bool = False
    """Off by default: when on, `utm_content` becomes `m{message}-a{area}` for area attribution."""


class ActivationPolicy(StrictModel):
    """How hard delivery tries before recording a failure (the seeds' Activation tab)."""

    max_attempts: int = 5
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0


# --- accounts, audiences ----------------------------------------------------------------------


class Workspace(StrictModel):
    name: str


class SenderAccount(StrictModel):
    """A LINE Official Account channel the operator may send from.

    `token_env` names the environment variable that holds the channel access token; the token
    itself is never stored.
    """

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    channel_id: str = ""
    workspaces: list[str] = Field(default_factory=list)
    token_env: str | None = None


AttributeValue = str | int | float | bool | None


class Profile(StrictModel):
    profile_id: str
    line_user_id: str | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)


class AudienceRef(StrictModel):
    parent_segment: str
    segment: str

    @property
    def key(self) -> str:
        return segment_key(self.parent_segment, self.segment)


def segment_key(parent_segment: str, segment: str) -> str:
    return f"{parent_segment}/{segment}"


class Segment(StrictModel):
    """A segment from Audience Studio; large audiences live in a CSV file (`profiles_file`)."""

    parent_segment: str
    segment: str
    profiles: list[Profile] | None = None
    profiles_file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Segment:
        if (self.profiles is None) == (self.profiles_file is None):
            raise ValueError("give exactly one of 'profiles' or 'profiles_file'")
        return self

    @property
    def key(self) -> str:
        return segment_key(self.parent_segment, self.segment)


# --- campaigns --------------------------------------------------------------------------------


class CampaignState(enum.StrEnum):
    DRAFT = "Draft"
    PLANNED = "Planned"
    ACTIVE = "Active"
    FINISHED = "Finished"
    SUSPENDED = "Suspended"


class CampaignSpec(StrictModel):
    """What an operator composes on the five tabs (and what a fixture's `campaign` holds)."""

    name: str = Field(min_length=1)
    sender_account: str | None = None
    audience: AudienceRef | None = None
    messages: list[Message] = Field(default_factory=list)
    schedule: Schedule = Field(default_factory=ImmediateSchedule)
    utm: UtmSettings = Field(default_factory=UtmSettings)
    activation: ActivationPolicy = Field(default_factory=ActivationPolicy)


class Campaign(CampaignSpec):
    """A stored campaign: the composed spec plus identity and lifecycle."""

    id: str
    workspace: str
    state: CampaignState = CampaignState.DRAFT
    created_at: AwareDatetime
    updated_at: AwareDatetime
    launched_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    suspend_reason: str | None = None
    aggregation_unit: str | None = None
    """LINE's `customAggregationUnits` name, fixed at launch (Insight statistics per campaign)."""

    def spec(self) -> CampaignSpec:
        return CampaignSpec.model_validate(self.model_dump(include=set(CampaignSpec.model_fields)))


class Transition(StrictModel):
    """One recorded state change: who did what, when and why."""

    campaign_id: str
    action: str
    from_state: CampaignState
    to_state: CampaignState
    at: datetime
    actor: str
    reason: str | None = None
