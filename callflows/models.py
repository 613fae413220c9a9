"""Pydantic models of the AssemblyAI API objects this project uses.

Field names are AssemblyAI's own. Units: every ``start``/``end`` is an integer in **milliseconds**;
``audio_duration`` is in **seconds**; ``confidence`` is 0..1. Sources: AssemblyAI OpenAPI spec
(``Transcript``, ``TranscriptWord``, ``TranscriptUtterance``, ``SentimentAnalysisResult``,
``SentencesResponse``) and ``llm-gateway.yml`` (chat completions). Unknown extra fields are kept
(``extra="allow"``), so newer API fields never break parsing.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Sentiment = Literal["POSITIVE", "NEUTRAL", "NEGATIVE"]
DEFAULT_SPEECH_MODELS = ["universal-3-pro", "universal-2"]


class APIModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class UploadedFile(APIModel):
    """``POST /v2/upload`` response."""

    upload_url: str


class Word(APIModel):
    """One recognised word. ``start``/``end`` in ms; ``speaker`` is set only with speaker labels."""

    text: str
    start: int
    end: int
    confidence: float
    speaker: str | None = None
    channel: str | None = None


class Utterance(APIModel):
    """A continuous turn of one speaker (``start``/``end`` in ms). Present with ``speaker_labels``
    or ``multichannel``."""

    speaker: str
    text: str
    start: int
    end: int
    confidence: float
    words: list[Word] = Field(default_factory=list)
    channel: str | None = None


class SentimentAnalysisResult(APIModel):
    """Sentiment of one sentence (``start``/``end`` in ms). ``speaker`` is None without diarization."""

    text: str
    start: int
    end: int
    sentiment: Sentiment
    confidence: float
    speaker: str | None = None
    channel: str | None = None


class TranscriptStatus(str, Enum):
    queued = "queued"
    processing = "processing"
    completed = "completed"
    error = "error"


class Transcript(APIModel):
    """``GET /v2/transcript/{id}``: the transcript and, once completed, its results."""

    id: str
    status: TranscriptStatus
    audio_url: str | None = None
    text: str | None = None
    words: list[Word] | None = None
    utterances: list[Utterance] | None = None
    sentiment_analysis_results: list[SentimentAnalysisResult] | None = None
    audio_duration: float | None = Field(None, description="seconds")
    confidence: float | None = None
    language_code: str | None = None
    speaker_labels: bool | None = None
    sentiment_analysis: bool | None = None
    multichannel: bool | None = None
    speech_model_used: str | None = None
    error: str | None = None

    @property
    def is_done(self) -> bool:
        return self.status in (TranscriptStatus.completed, TranscriptStatus.error)


class TranscriptListItem(APIModel):
    """One entry of ``GET /v2/transcript``; ``created``/``completed`` are ISO times without a zone."""

    id: str
    status: TranscriptStatus
    audio_url: str | None = None
    created: str | None = None
    completed: str | None = None
    error: str | None = None


class TranscriptList(APIModel):
    """``GET /v2/transcript``: the newest transcripts first (last 90 days)."""

    page_details: dict[str, Any] = Field(default_factory=dict)
    transcripts: list[TranscriptListItem] = Field(default_factory=list)


class SpeakerOptions(APIModel):
    """``speaker_options`` of ``POST /v2/transcript``: bounds on the number of speakers that
    diarization may find, instead of an exact ``speakers_expected`` (AssemblyAI accepts one or the
    other, not both)."""

    min_speakers_expected: int | None = Field(None, ge=1, le=10)
    max_speakers_expected: int | None = Field(None, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> "SpeakerOptions":
        lo, hi = self.min_speakers_expected, self.max_speakers_expected
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_speakers_expected ({lo}) is greater than max_speakers_expected ({hi})")
        return self


# AssemblyAI's PII policy names (the official SDK's PIIRedactionPolicy, assemblyai 1.8.2).
PII_POLICIES = frozenset((
    "account_number banking_information blood_type credit_card_cvv credit_card_expiration "
    "credit_card_number date date_interval date_of_birth drivers_license drug duration email_address "
    "event filename gender gender_sexuality healthcare_number injury ip_address language location "
    "location_address location_address_street location_city location_coordinate location_country "
    "location_state location_zip marital_status medical_condition medical_process money_amount "
    "nationality number_sequence occupation organization organization_medical_facility passport_number "
    "password person_age person_name phone_number physical_attribute political_affiliation religion "
    "sexuality statistics time url us_social_security_number username vehicle_id zodiac_sign "
    "corporate_action day effect financial_metric medical_code month organization_id product project "
    "trend year").split())


def pii_policy_problem(policies: list[str] | None) -> str | None:
    """Why ``policies`` cannot go with ``redact_pii``: none given, or names that are not AssemblyAI's
    (``PII_POLICIES``); None when they can."""
    if not policies:
        return ("redact_pii needs redact_pii_policies, and redact_pii_policies is empty: name at least one of "
                "AssemblyAI's PII policies, e.g. credit_card_number, phone_number, email_address")
    unknown = [p for p in policies if p not in PII_POLICIES]
    if unknown:
        return (f"redact_pii_policies {unknown} are not AssemblyAI PII policies: use names from "
                f"{', '.join(sorted(PII_POLICIES))}")
    return None


class TranscriptionOptions(APIModel):
    """Transcription options of ``POST /v2/transcript`` (everything but ``audio_url``).

    ``speech_models`` is always sent: AssemblyAI's docs disagree on whether it is required.
    ``language_detection`` is sent explicitly: its default changed between doc revisions.
    """

    speech_models: list[str] = Field(default_factory=lambda: list(DEFAULT_SPEECH_MODELS))
    language_code: str | None = "en_us"
    language_detection: bool = False
    punctuate: bool = True
    format_text: bool = True
    speaker_labels: bool = False
    speakers_expected: int | None = Field(None, ge=1, le=10)
    speaker_options: SpeakerOptions | None = None
    sentiment_analysis: bool = False
    multichannel: bool | None = None
    # PII redaction of the transcript's text (AssemblyAI's names); unset, nothing is sent.
    redact_pii: bool | None = None
    redact_pii_policies: list[str] | None = None
    redact_pii_sub: Literal["hash", "entity_name"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "TranscriptionOptions":
        if self.speakers_expected is not None and self.speaker_options is not None:
            raise ValueError("give speakers_expected (an exact count) or speaker_options (bounds), not both")
        if self.redact_pii and (problem := pii_policy_problem(self.redact_pii_policies)):
            raise ValueError(problem)
        return self

    def to_params(self, audio_url: str) -> "TranscriptParams":
        return TranscriptParams(audio_url=audio_url, **self.model_dump(exclude_none=True))


class TranscriptParams(TranscriptionOptions):
    """``POST /v2/transcript`` request body. Sent with ``exclude_none``, like the official SDK."""

    audio_url: str


class SentenceItem(APIModel):
    text: str
    start: int
    end: int
    confidence: float
    words: list[Word] = Field(default_factory=list)
    speaker: str | None = None
    channel: str | None = None


class SentencesResponse(APIModel):
    """``GET /v2/transcript/{id}/sentences``."""

    id: str | None = None
    confidence: float | None = None
    audio_duration: float | None = None
    sentences: list[SentenceItem]


# --- LLM Gateway --------------------------------------------------------------------------------

class ChatMessage(APIModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class JsonSchemaSpec(APIModel):
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool = True


class ResponseFormat(APIModel):
    """``response_format``: only ``json_schema`` is documented by the LLM Gateway."""

    type: Literal["json_schema"] = "json_schema"
    json_schema: JsonSchemaSpec


class ChatCompletionRequest(APIModel):
    """``POST /v1/chat/completions`` request (LLM Gateway)."""

    model: str
    messages: list[ChatMessage]
    max_tokens: int = Field(1000, ge=1, le=32_000)
    temperature: float | None = Field(None, ge=0, le=2)
    response_format: ResponseFormat | None = None
    transcript_id: str | None = None

    def payload(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class ToolCall(APIModel):
    id: str | None = None
    type: str = "function"
    function: dict[str, Any] = Field(default_factory=dict)


class ChoiceMessage(APIModel):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(APIModel):
    index: int = 0
    message: ChoiceMessage
    finish_reason: str | None = None
    tool_calls: list[ToolCall] | None = None  # older docs put tool calls here


class PromptTokensDetails(APIModel):
    """``usage.prompt_tokens_details`` (OpenAI's shape): ``cached_tokens`` of the prompt were reused
    from an earlier request's evaluated prefix instead of evaluated again."""

    cached_tokens: int | None = None


class ChatUsage(APIModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: PromptTokensDetails | None = None


class ChatCompletion(APIModel):
    """``POST /v1/chat/completions`` response."""

    request_id: str | None = None
    choices: list[ChatChoice]
    served_by: str | None = Field(None, description="not an API field: the local model that answered, from "
                                                    "the local server's X-Callflows-Served-By header")
    usage: ChatUsage | None = None
    request: dict[str, Any] | None = None

    @property
    def content(self) -> str:
        """The first choice's text ("" when the model sent none)."""
        return (self.choices[0].message.content or "") if self.choices else ""

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


# --- LLM Gateway: speech understanding (speaker identification) ----------------------------------

class SpeakerDescription(APIModel):
    """One entry of ``speakers``: a role or name, with an optional description."""

    role: str | None = Field(None, max_length=35)
    name: str | None = Field(None, max_length=35)
    description: str | None = None


class SpeakerIdentification(APIModel):
    """``speech_understanding.request.speaker_identification``: ``known_values`` or ``speakers``, not both."""

    speaker_type: Literal["role", "name"] = "role"
    known_values: list[str] | None = None
    speakers: list[SpeakerDescription] | None = None


class UnderstandingResponse(APIModel):
    """``POST /v1/understanding`` response: the transcript's utterances and words with ``speaker``
    replaced by the identified role or name, and the mapping (original label → role)."""

    request_id: str | None = None
    speech_understanding: dict[str, Any] = Field(default_factory=dict)
    utterances: list[Utterance] | None = None
    words: list[Word] | None = None

    @property
    def mapping(self) -> dict[str, str]:
        response = (self.speech_understanding.get("response") or {}).get("speaker_identification") or {}
        return dict(response.get("mapping") or {})
