"""The flow parameters several flows share, as the Prefect UI's run form shows them.

Each is described in a sentence (the UI shows the ``Field`` description; a docstring ``Args:``
section would replace it, so the flows have none). None is nullable: the classic UI renders an
empty optional value as 'Property is type "None"', so an unset number is 0 and multichannel is
``auto``. The flows turn these into the ``None`` the tasks and the API take
(``optional``, ``multichannel_choice``) and check what the schema cannot say (``check_max_tokens``).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from callflows.errors import InputError

Audio = Annotated[str, Field(description="Local recording path or http(s) URL.")]
ResultsDir = Annotated[str, Field(description="Folder for the results: each call's files go in a folder named "
                                  "after the recording and its transcript id.")]
Model = Annotated[str, Field(description="LLM Gateway model (the local server answers any catalogue name with its "
                             "own model).")]
MaxTokens = Annotated[int, Field(ge=0, le=16000, description="Answer limit in tokens for each LLM request; 0 (the "
                                 "default) allows the longest answer the answer's schema permits.")]
Temperature = Annotated[float, Field(ge=0, le=2, description="LLM sampling temperature; 0 is the most "
                                     "deterministic.")]
SpeakersExpected = Annotated[int, Field(ge=0, le=10, description="Exact number of speakers, only if certain; 0 lets "
                                        "the speech model decide.")]
Multichannel = Annotated[Literal["auto", "on", "off"], Field(description="One speaker per audio channel: auto turns "
                                                             "it on for stereo WAV files.")]
PollTimeout = Annotated[float, Field(gt=0, description="Seconds to wait for the transcript to complete.")]


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
    return value or None
