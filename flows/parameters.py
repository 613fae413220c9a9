"""The flow parameters several flows share, as the Prefect UI's run form shows them.

Prefect takes each parameter's description from the flow's docstring ``Args:`` section (a
description inside an ``Annotated`` ``Field`` never reaches its schema), so the constraints are here
and the sentences are in the flows. None is nullable: the classic UI renders an empty optional
value as 'Property is type "None"', so an unset number is 0 and multichannel is ``auto``. The flows
turn these into the ``None`` the tasks and the API take (``optional``, ``multichannel_choice``) and
check what the schema cannot say (``check_max_tokens``).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from callflows.errors import InputError
from callflows.models import pii_policy_problem

MaxTokens = Annotated[int, Field(ge=0, le=16000)]
Temperature = Annotated[float, Field(ge=0, le=2)]
SpeakersExpected = Annotated[int, Field(ge=0, le=10)]
Multichannel = Literal["auto", "on", "off"]
PollTimeout = Annotated[float, Field(gt=0)]
RedactPiiSub = Literal["hash", "entity_name"]
# The policies the local server finds (local_api/engines/pii.py); AssemblyAI has many more
# (callflows.models.PII_POLICIES).
DEFAULT_PII_POLICIES = ["credit_card_number", "phone_number", "email_address", "us_social_security_number",
                        "banking_information", "date_of_birth"]


def optional(value: int) -> int | None:
    """0 (not set) → None; any other number unchanged."""
    return value or None


def multichannel_choice(value: str) -> bool | None:
    """``auto`` → None (on for stereo WAV input), ``on`` → True, ``off`` → False."""
    return {"auto": None, "on": True, "off": False}[value]


def check_max_tokens(value: int, minimum: int) -> int | None:
    """``max_tokens`` as the tasks take it: 0 → None (enough for the longest allowed answer).

    Raises ``InputError`` for 1 to ``minimum - 1``: too few tokens for any complete answer, found
    before any request rather than as an answer cut off mid-JSON after a paid one."""
    if 0 < value < minimum:
        raise InputError(f"max_tokens={value} is too small for a complete answer: use at least {minimum}, "
                         f"or 0 for enough for the longest answer")
    return optional(value)


def redaction(redact_pii: bool, redact_pii_policies: list[str], redact_pii_sub: str) -> dict:
    """The ``TranscriptionOptions`` of AssemblyAI's PII redaction: ``{}`` when ``redact_pii`` is off (nothing
    is sent, so cached transcripts stay valid), else ``redact_pii``, ``redact_pii_policies`` (duplicates
    dropped) and ``redact_pii_sub``.

    Raises ``InputError`` (before any request) for redaction without policies or with a name that is not
    one of AssemblyAI's policies."""
    if not redact_pii:
        return {}
    policies = list(dict.fromkeys(p.strip() for p in redact_pii_policies or [] if p.strip()))
    if problem := pii_policy_problem(policies):  # the check TranscriptionOptions makes, as an input error
        raise InputError(problem)
    return {"redact_pii": True, "redact_pii_policies": policies, "redact_pii_sub": redact_pii_sub}
