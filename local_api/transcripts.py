"""The Transcript object: request validation, the full response shape, and the scrubbed (deleted) form.

Shapes follow /work/shared/docs/assemblyai-contract.md §2, §3 and §6: every key is present, with
null (or the documented default) when a feature is off; ``speech_model`` is always null (the SDK
only parses null/best/nano/slam-1/universal there) and the local model goes in
``speech_model_used``; ``audio_duration`` is an integer number of seconds.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

DEFAULT_SPEECH_MODELS = ["universal-3-pro", "universal-2"]
STATUSES = ("queued", "processing", "completed", "error")
DELETED_URL = "http://deleted_by_user"
DELETED_TEXT = "Deleted by user."
DOWNLOAD_ERROR = ("Download error, unable to download {url}. Please make sure the file exists "
                  "and is accessible from the internet.")
SERVER_ERROR = "Server error, developers have been alerted"
MAX_SPEAKERS = 10  # the diarization engine's limit (engines.pipeline.MAX_SPEAKERS_EXPECTED)

# Every key of the API object, in a stable order, with its value when not requested / not produced.
TRANSCRIPT_KEYS: dict[str, Any] = {
    "id": None, "language_model": "assemblyai_default", "acoustic_model": "assemblyai_default",
    "language_code": "en_us", "language_detection": False, "language_detection_options": None,
    "language_confidence_threshold": None, "language_confidence": None,
    "speech_model": None, "speech_models": None, "speech_model_used": None,
    "status": "queued", "audio_url": None,
    "text": None, "words": None, "utterances": None, "confidence": None, "audio_duration": None,
    "punctuate": True, "format_text": True, "disfluencies": False, "filter_profanity": False,
    "multichannel": None, "audio_channels": None, "dual_channel": None,
    "webhook_url": None, "webhook_status_code": None, "webhook_auth": False,
    "webhook_auth_header_name": None,
    "speed_boost": False, "auto_highlights": False, "auto_highlights_result": None,
    "audio_start_from": None, "audio_end_at": None,
    "word_boost": None, "boost_param": None, "keyterms_prompt": None, "prompt": None,
    "custom_spelling": None, "speech_threshold": None, "temperature": None,
    "redact_pii": False, "redact_pii_audio": False, "redact_pii_audio_quality": None,
    "redact_pii_policies": None, "redact_pii_sub": None,
    "speaker_labels": False, "speakers_expected": None, "speaker_options": None,
    "content_safety": False, "content_safety_labels": None,
    "iab_categories": False, "iab_categories_result": None,
    "auto_chapters": False, "chapters": None,
    "summarization": False, "summary_type": None, "summary_model": None, "summary": None,
    "custom_topics": False, "topics": None,
    "sentiment_analysis": False, "sentiment_analysis_results": None,
    "entity_detection": False, "entities": None,
    "speech_understanding": None,
    "throttled": None, "error": None,
}

RESULT_KEYS = ("text", "words", "utterances", "confidence", "audio_duration",
               "sentiment_analysis_results", "speech_model_used", "audio_channels")

_BOOLS = ("punctuate", "format_text", "speaker_labels", "sentiment_analysis", "language_detection",
          "disfluencies", "filter_profanity", "speed_boost", "multichannel", "dual_channel",
          "auto_highlights", "redact_pii", "redact_pii_audio", "content_safety", "iab_categories",
          "auto_chapters", "summarization", "custom_topics", "entity_detection")
# Features the offline engines do not have: asking for them is a 400, not a silently empty result.
UNSUPPORTED_FEATURES = ("auto_highlights", "redact_pii_audio", "content_safety", "iab_categories", "auto_chapters",
                        "summarization", "custom_topics", "entity_detection")
_UNSUPPORTED_VALUES = ("audio_start_from", "audio_end_at", "custom_spelling", "speech_understanding")
_STRING_LISTS = ("speech_models", "keyterms_prompt", "word_boost", "topics", "redact_pii_policies")
_STRINGS = ("language_code", "webhook_url", "webhook_auth_header_name", "webhook_auth_header_value",
            "prompt", "boost_param", "summary_type", "summary_model", "redact_pii_sub",
            "redact_pii_audio_quality", "speech_model")


class ParamError(ValueError):
    """A 400 with this message as ``{"error": …}``."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def validate_params(body: Any) -> dict:
    """Check a POST /v2/transcript body; return the known fields (unknown ones are ignored).

    Messages follow AssemblyAI's documented form (``"format_text must be a Boolean"``).
    """
    if not isinstance(body, dict):
        raise ParamError("Request body must be a JSON object")
    params: dict[str, Any] = {}
    audio_url = body.get("audio_url")
    if audio_url is None:
        raise ParamError("audio_url is required")
    if not isinstance(audio_url, str):
        raise ParamError("audio_url must be a String")
    audio_url = audio_url.strip()
    if not is_http_url(audio_url):
        raise ParamError(f"Invalid audio_url {audio_url!r}: it must be an http:// or https:// URL "
                         "(upload local files with POST /v2/upload first)")
    params["audio_url"] = audio_url

    typed = ((_BOOLS, lambda v: isinstance(v, bool), "a Boolean"),
             (_STRINGS, lambda v: isinstance(v, str), "a String"),
             (_STRING_LISTS, lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
              "an Array of Strings"))
    for keys, valid, type_name in typed:
        for key in keys:
            v = body.get(key)
            if v is None:
                continue
            if not valid(v):
                raise ParamError(f"{key} must be {type_name}")
            params[key] = v
    for key in ("language_confidence_threshold", "speech_threshold"):
        v = body.get(key)
        if v is None:
            continue
        if not _is_number(v) or not 0 <= v <= 1:
            raise ParamError(f"{key} must be a Number between 0 and 1")
        params[key] = v
    if body.get("temperature") is not None:
        v = body["temperature"]
        if not _is_number(v) or not 0 <= v <= 1:
            raise ParamError("temperature must be a Number between 0 and 1")
        params["temperature"] = v
    if body.get("language_detection_options") is not None:
        if not isinstance(body["language_detection_options"], dict):
            raise ParamError("language_detection_options must be an Object")
        params["language_detection_options"] = body["language_detection_options"]

    if params.get("dual_channel"):
        raise ParamError("dual_channel is deprecated and not supported by the local AssemblyAI-"
                         "compatible server: use multichannel: true")
    for key in UNSUPPORTED_FEATURES:
        if params.get(key):
            raise ParamError(f"{key} is not supported by the local AssemblyAI-compatible server "
                             "(offline engines: transcription, speaker labels, multichannel, "
                             "sentiment analysis, PII redaction of the text)")
    for key in _UNSUPPORTED_VALUES:
        if body.get(key) not in (None, [], {}):
            raise ParamError(f"{key} is not supported by the local AssemblyAI-compatible server")

    if params.get("redact_pii"):
        _check_redaction(params)

    # speakers
    se = body.get("speakers_expected")
    if se is not None:
        if not _is_int(se):
            raise ParamError("speakers_expected must be an Integer")
        if not 1 <= se <= MAX_SPEAKERS:
            raise ParamError(f"speakers_expected must be between 1 and {MAX_SPEAKERS}")
        params["speakers_expected"] = se
    so = body.get("speaker_options")
    if so is not None:
        if not isinstance(so, dict):
            raise ParamError("speaker_options must be an Object")
        lo, hi = so.get("min_speakers_expected"), so.get("max_speakers_expected")
        for name, v in (("min_speakers_expected", lo), ("max_speakers_expected", hi)):
            if v is not None and (not _is_int(v) or not 1 <= v <= MAX_SPEAKERS):
                raise ParamError(f"speaker_options.{name} must be an Integer between 1 and {MAX_SPEAKERS}")
        if lo is not None and hi is not None and lo > hi:
            raise ParamError("speaker_options.min_speakers_expected must not be greater than "
                             "speaker_options.max_speakers_expected")
        if se is not None:
            raise ParamError("Use either speakers_expected or speaker_options, not both")
        params["speaker_options"] = {k: v for k, v in (("min_speakers_expected", lo),
                                                       ("max_speakers_expected", hi)) if v is not None}

    # webhooks
    if "webhook_url" in params and not is_http_url(params["webhook_url"]):
        raise ParamError("webhook_url must be an http:// or https:// URL")
    name, value = params.get("webhook_auth_header_name"), params.get("webhook_auth_header_value")
    if (name is None) != (value is None):
        raise ParamError("webhook_auth_header_name and webhook_auth_header_value must be set together")
    if name is not None and "webhook_url" not in params:
        raise ParamError("webhook_auth_header_name requires webhook_url")
    return params


def _check_redaction(params: dict) -> None:
    """``redact_pii``: at least one policy, each one the offline rules find (local_api/engines/pii.py),
    and ``redact_pii_sub`` hash (the default) or entity_name."""
    from local_api.engines.pii import SUBSTITUTIONS, SUPPORTED_POLICIES, unsupported_policies

    policies = params.get("redact_pii_policies")
    if not policies:
        raise ParamError("redact_pii_policies must list at least one PII policy when redact_pii is true")
    bad = unsupported_policies(policies)
    if bad:
        raise ParamError(f"redact_pii_policies {', '.join(bad)}: not supported by the local AssemblyAI-"
                         f"compatible server, which redacts offline only {', '.join(sorted(SUPPORTED_POLICIES))}")
    if params.get("redact_pii_sub", "hash") not in SUBSTITUTIONS:
        raise ParamError(f"redact_pii_sub must be one of {', '.join(SUBSTITUTIONS)}")


def new_transcript(transcript_id: str, params: dict) -> dict:
    """The API object of a freshly queued transcript (options echoed, results null)."""
    t = dict(TRANSCRIPT_KEYS)
    for key, value in params.items():
        if key in t and key not in RESULT_KEYS and key != "speech_model":
            t[key] = value
    t["id"] = transcript_id
    t["status"] = "queued"
    t["speech_models"] = list(params.get("speech_models") or DEFAULT_SPEECH_MODELS)
    t["speech_model"] = None
    t["webhook_auth"] = params.get("webhook_auth_header_name") is not None
    if params.get("language_detection") and "language_code" not in params:
        t["language_code"] = None  # detected by the engine, filled in when completed
    t.pop("webhook_auth_header_value", None)  # the value is never echoed
    return t


def apply_result(t: dict, result: dict) -> None:
    """Copy a pipeline result into the API object (completed).

    ``utterances`` are null unless ``speaker_labels`` or ``multichannel`` [SPEC Transcript.utterances];
    ``audio_channels`` is set only with ``multichannel`` ("only present when multichannel is
    enabled", [SPEC Transcript.audio_channels])."""
    t["text"] = result.get("text") or ""
    t["words"] = result.get("words") or []
    with_utterances = bool(t.get("speaker_labels") or t.get("multichannel"))
    t["utterances"] = (result.get("utterances") or []) if with_utterances else None
    t["audio_channels"] = result.get("audio_channels") if t.get("multichannel") else None
    t["sentiment_analysis_results"] = (result.get("sentiment_analysis_results") or []
                                       if t.get("sentiment_analysis") else None)
    duration = result.get("audio_duration")
    t["audio_duration"] = None if duration is None else int(duration)
    conf = result.get("confidence")
    t["confidence"] = None if conf is None else float(conf)
    if result.get("language_code"):
        t["language_code"] = result["language_code"]
    t["speech_model_used"] = result.get("speech_model_used")
    t["status"] = "completed"
    t["error"] = None


def scrubbed(t: dict) -> dict:
    """The object DELETE returns and GET shows afterwards (contract §6)."""
    out = {k: (False if isinstance(v, bool) else None) for k, v in TRANSCRIPT_KEYS.items()}
    out.update({
        "id": t["id"], "status": t["status"], "audio_url": DELETED_URL, "text": DELETED_TEXT,
        "audio_duration": t.get("audio_duration"), "language_model": t.get("language_model"),
        "acoustic_model": t.get("acoustic_model"), "error": t.get("error"),
        "webhook_url": DELETED_URL if t.get("webhook_url") else None,
        "speaker_labels": None,
    })
    return out


def public(t: dict) -> dict:
    """The API object with every documented key present (older records get new keys as defaults)."""
    out = {k: t.get(k, v) for k, v in TRANSCRIPT_KEYS.items()}
    for k, v in t.items():  # keep anything extra a record carries (e.g. speech_model_used)
        if k not in out and k != "webhook_auth_header_value":
            out[k] = v
    return out
