"""Rule-based PII redaction of a transcript's words, offline and without any model.

A stand-in for AssemblyAI's ``redact_pii`` that covers only what rules find reliably in English text
as Whisper writes it. Policy names, ``redact_pii_sub`` values and output shapes follow AssemblyAI:
https://www.assemblyai.com/docs/pre-recorded-audio/redact-pii-from-transcripts (policy table in its
source, AssemblyAI/assemblyai-api-spec ``fern/pages/audio-intelligence/pii-redaction.mdx``).

- ``hash``: each letter and digit of the value becomes ``#``, word by word; the marks between and
  around them stay ("Hi, my name is ####!", "###-###-####", as AssemblyAI's docs and its redaction
  tutorial show).
- ``entity_name``: the value becomes the policy name, upper case, in brackets ("[PERSON_NAME]!").
  The docs show only a one-word value. For a value of several words we write the tag once: one word
  with the first word's ``start`` and the last word's ``end`` (our choice, UNCONFIRMED for the API).

Found here:
- ``credit_card_number``: 13-19 digits passing the Luhn check.
- ``phone_number``: 7-11 digits ("555-0123", "(415) 555-0123", "4155550123"), up to 15 after "+".
- ``us_social_security_number``: digits grouped 3-2-4 ("123-45-6789"), or 9 digits after
  "social security"/"SSN".
- ``banking_information``: any other run of 6 or more digits, or one after "account"/"routing"/"bank".
- ``email_address``: "help@bank.com" (a trailing "." stays outside); after "email"/"address", the
  spoken "help at bank dot com", also with the local part or domain written ("john.smith at
  bank.com", "john.smith, at bank dot com"), and a host name alone, as Whisper writes an address
  whose "at" it ran into the words around it ("johnsmithatbank.com", "john.smithat bank.com",
  "john dot smith.atbank.com"). Without a cue, only a written local part with "." or "_" in it,
  "at" and a written domain ("john.smith at bank.com").
- ``date_of_birth``: a date after "date of birth", "born (on)", "birthday", "DOB": "03/04/1985",
  "March 3rd, 1985", "3rd of March 1985". Spoken years ("nineteen eighty five") are not parsed.

Digits may be written in one word or several ("4111 1111 ...") or spoken ("four one one one",
"oh", "zero", "double five"); a run of them is read as one digit string, so a card and the number
spoken right after it merge into one run. A run stops at ".", "?" or "!" and never starts with "oh".
Ordinary numbers ("2 checkbooks", "9:30", "$45.50") are too short or not digit runs.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

__all__ = ["SUPPORTED_POLICIES", "SUBSTITUTIONS", "unsupported_policies", "redact_words"]

CARD, PHONE, EMAIL = "credit_card_number", "phone_number", "email_address"
BANK, SSN, DOB = "banking_information", "us_social_security_number", "date_of_birth"
SUPPORTED_POLICIES: frozenset[str] = frozenset({CARD, PHONE, EMAIL, BANK, SSN, DOB})
SUBSTITUTIONS = ("hash", "entity_name")

_DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_REPEATS = {"double": 2, "triple": 3}
_WRITTEN_NUMBER = re.compile(r"\+?\(?\d+\)?(?:[-.]\d+)*")  # 4111, 555-0123, (415), +1; not 9:30, $45
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)+")
_LABEL = re.compile(r"[\w+-]+")
_LOCAL = re.compile(r"[\w+-]+(?:\.[\w+-]+)*")  # "john", "john.smith": a local part as Whisper writes it
_TLDS = frozenset({"com", "org", "net", "edu", "gov", "io", "co", "us", "uk", "ca", "de", "info", "biz"})
_NUMERIC_DATE = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}-\d{1,2}-\d{1,2}")
_DAY = re.compile(r"(?:[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?|0[1-9]")
_YEAR = re.compile(r"(?:19|20)\d\d")
_MONTHS = frozenset("january february march april may june july august september october november "
                    "december jan feb mar apr jun jul aug sep sept oct nov dec".split())
_DOB_CUES = (("date", "of", "birth"), ("birth", "date"), ("birthdate",), ("birthday",), ("born",),
             ("dob",), ("d.o.b",))
_DOB_FILLERS = frozenset({"is", "was", "on", "in", "the", "it's", "its", "my"})
# Words just before a digit run that say what it is; the nearest one within 5 words wins.
_CONTEXT = {"social": SSN, "security": SSN, "ssn": SSN, "account": BANK, "routing": BANK,
            "bank": BANK, "iban": BANK, "acct": BANK, "phone": PHONE, "call": PHONE, "cell": PHONE,
            "mobile": PHONE, "fax": PHONE}
_EMAIL_CUES = frozenset({"email", "e-mail", "mail", "address"})
_OPEN = "\"'“‘[{<¿¡"
_CLOSE = ".,;:!?\"'”’]}>…"


def unsupported_policies(policies: Iterable[str]) -> list[str]:
    """The names in ``policies`` this module does not implement, in input order, each once."""
    bad: list[str] = []
    for name in _policy_list(policies):
        if name not in SUPPORTED_POLICIES and name not in bad:
            bad.append(name)
    return bad


def redact_words(words: list[dict[str, Any]], policies: Iterable[str],
                 substitution: str = "hash") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Redact the ``policies`` found in AssemblyAI-shaped ``words``; returns ``(new_words, entities)``.

    ``words``: ``{"text", "start", "end", "confidence", "speaker"?, "channel"?}`` in time order, times
    in integer ms; they are not changed. ``new_words`` are copies: words outside an entity are equal to
    the input; see the module docstring for ``hash`` and ``entity_name``. ``entities``:
    ``{"entity_type": policy, "start": ms, "end": ms}`` in time order, without the values.
    Raises ValueError for an unknown ``substitution`` or an unsupported policy (messages name the
    policies, never a transcript's text).
    """
    if substitution not in SUBSTITUTIONS:
        raise ValueError(f"redact_pii_sub {substitution!r} is not supported; use one of: "
                         f"{', '.join(SUBSTITUTIONS)}")
    names = _policy_list(policies)  # read once: ``policies`` may be a generator
    bad = unsupported_policies(names)
    if bad:
        raise ValueError(f"redact_pii_policies {bad} are not supported by the local PII engine; "
                         f"supported: {', '.join(sorted(SUPPORTED_POLICIES))}")
    parts = [_split(str(w["text"])) for w in words]
    spans = {start: (end, policy) for start, end, policy in _find(parts) if policy in names}
    new_words: list[dict[str, Any]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(words):
        if i not in spans:
            new_words.append(dict(words[i]))
            i += 1
            continue
        end, policy = spans[i]
        entities.append({"entity_type": policy, "start": words[i]["start"], "end": words[end - 1]["end"]})
        if substitution == "hash":
            for k in range(i, end):
                lead, core, trail = parts[k]
                new_words.append({**words[k], "text": lead + re.sub(r"[^\W_]", "#", core) + trail})
        else:
            merged = {**words[i], "text": f"{parts[i][0]}[{policy.upper()}]{parts[end - 1][2]}",
                      "end": words[end - 1]["end"]}
            if all("confidence" in w for w in words[i:end]):
                merged["confidence"] = min(w["confidence"] for w in words[i:end])
            new_words.append(merged)
        i = end
    return new_words, entities


def _policy_list(policies: Iterable[str]) -> list[str]:
    if isinstance(policies, str):  # "phone_number" would otherwise be read letter by letter
        raise ValueError("redact_pii_policies must be a list of policy names, not one string")
    return list(policies)


def _split(text: str) -> tuple[str, str, str]:
    """``(leading punctuation, core, trailing punctuation)``: "help@bank.com." → core "help@bank.com".

    Brackets stay in the core when both are there ("(415)") and are stripped when alone ("1111)").
    """
    a, b = 0, len(text)
    while a < b and (text[a] in _OPEN or (text[a] == "(" and ")" not in text[a:b])):
        a += 1
    while b > a and (text[b - 1] in _CLOSE or (text[b - 1] == ")" and "(" not in text[a:b - 1])):
        b -= 1
    return text[:a], text[a:b], text[b:]


def _find(parts: list[tuple[str, str, str]]) -> list[tuple[int, int, str]]:
    """All entities as ``(first word, end word exclusive, policy)``, overlaps resolved: the earliest
    wins, then the longest. Every policy is looked for, so a date is never taken for a phone number."""
    low = [core.lower() for _, core, _ in parts]
    found = list(_number_spans(low, parts))
    for i in range(len(low)):
        for span in (_email_span(low, i), _dob_span(low, i)):
            if span:
                found.append(span)
    found.sort(key=lambda s: (s[0], s[0] - s[1]))
    taken: list[tuple[int, int, str]] = []
    for span in found:
        if not taken or span[0] >= taken[-1][1]:
            taken.append(span)
    return taken


def _number_items(core: str) -> list[str | int] | None:
    """One word as digit groups and repeat counts: "555-0123" → ["555", "0123"], "four-one" →
    ["4", "1"], "double" → [2]; None when the word is not part of a digit string."""
    if _WRITTEN_NUMBER.fullmatch(core):
        return re.findall(r"\d+", core)
    pieces = core.split("-")
    if all(p in _DIGIT_WORDS or p in _REPEATS for p in pieces):
        return [_DIGIT_WORDS.get(p) or _REPEATS[p] for p in pieces]
    return None


def _number_spans(low: list[str], parts: list[tuple[str, str, str]]):
    """Yield ``(start, end, policy)`` for each run of digit words that classifies as PII."""
    n, i = len(low), 0
    while i < n:
        if _number_items(low[i]) is None or low[i] in ("oh", "o"):
            i += 1
            continue
        j = i + 1
        while j < n and not any(c in parts[j - 1][2] for c in ".?!") and _number_items(low[j]) is not None:
            j += 1
        while j > i and all(isinstance(x, int) for x in _number_items(low[j - 1]) or []):
            j -= 1  # a trailing "double" with nothing to repeat is not part of the run
        if j == i:
            i += 1
            continue
        digits, groups, repeat = "", [], 0
        for k in range(i, j):
            for item in _number_items(low[k]) or []:
                if isinstance(item, int):
                    repeat = item
                    continue
                digits += item[0] * max(repeat, 1) + item[1:]
                groups.append(len(item))
                repeat = 0
        written = all(_WRITTEN_NUMBER.fullmatch(low[k]) for k in range(i, j))
        policy = _classify(digits, groups if written else None, low[i].startswith("+"), _context(low, i))
        if policy:
            yield i, j, policy
        i = j


def _context(low: list[str], i: int) -> str | None:
    for k in range(i - 1, max(-1, i - 6), -1):
        if low[k] in _CONTEXT:
            return _CONTEXT[low[k]]
    return None


def _classify(digits: str, groups: list[int] | None, plus: bool, context: str | None) -> str | None:
    n = len(digits)
    if groups == [3, 2, 4] or (n == 9 and context == SSN):
        return SSN
    if 13 <= n <= 19 and _luhn(digits):
        return CARD
    if n >= 6 and context == BANK:
        return BANK
    if 7 <= n <= 11 or (plus and n <= 15):
        return PHONE
    return BANK if n >= 6 else None


def _luhn(digits: str) -> bool:
    total = 0
    for pos, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if pos % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _email_span(low: list[str], i: int) -> tuple[int, int, str] | None:
    """An address starting at or before word ``i``: written ("help@bank.com") at ``i``; spoken
    ("john dot smith at bank dot com", "john.smith at bank.com") with its "at" at ``i + 1``; or a
    host name at ``i`` whose "@" Whisper lost ("johnsmithatbank.com"). See the module docstring for
    which need an e-mail cue within the 6 words before."""
    if _EMAIL.fullmatch(low[i]):
        return i, i + 1, EMAIL
    n = len(low)
    if i + 2 < n and low[i + 1] == "at" and _LOCAL.fullmatch(low[i]):
        start = _spoken_start(low, i)
        end = _domain_end(low, i + 2)
        if end is None:
            return None
        written = end == i + 3 and re.search(r"[._]", low[i]) is not None  # "john.smith at bank.com"
        return (start, end, EMAIL) if written or _cued(low, start) else None
    if _is_host(low[i]):  # the "at" ran into a word: "johnsmithatbank.com", "john.smithat bank.com"
        start = i - 1 if i and "." in low[i - 1] and _LOCAL.fullmatch(low[i - 1]) else i
        start = _spoken_start(low, start)
        return (start, i + 1, EMAIL) if _cued(low, start) else None
    return None


def _spoken_start(low: list[str], i: int) -> int:
    """The first word of a local part ending at word ``i``, spoken with "dot"s ("john dot smith")."""
    while i >= 2 and low[i - 1] == "dot" and _LABEL.fullmatch(low[i - 2]):
        i -= 2
    return i


def _cued(low: list[str], start: int) -> bool:
    """Whether an e-mail cue is among the 6 words before word ``start``."""
    return bool(_EMAIL_CUES & set(low[max(0, start - 6):start]))


def _is_host(word: str) -> bool:
    """A written host name with a known top-level domain: "bank.com", "www.bank.co.uk"."""
    return bool(_DOMAIN.fullmatch(word)) and word.rsplit(".", 1)[1] in _TLDS


def _domain_end(low: list[str], k: int) -> int | None:
    """End (exclusive) of a domain starting at word ``k``, written ("bank.com") or spoken
    ("bank dot com"); None when there is none."""
    if _is_host(low[k]):
        return k + 1
    end = None
    while _LABEL.fullmatch(low[k]) and k + 2 < len(low) and low[k + 1] == "dot" and _LABEL.fullmatch(low[k + 2]):
        k += 2
        if low[k] in _TLDS:
            end = k + 1
    return end


def _dob_span(low: list[str], i: int) -> tuple[int, int, str] | None:
    """The date after a date-of-birth cue starting at word ``i`` (the cue itself is not redacted)."""
    cue = next((c for c in _DOB_CUES if tuple(low[i:i + len(c)]) == c), None)
    if cue is None:
        return None
    p = i + len(cue)
    while p < len(low) and p < i + len(cue) + 3 and low[p] in _DOB_FILLERS:
        p += 1
    end = _date_end(low, p)
    return (p, end, DOB) if end else None


def _date_end(low: list[str], p: int) -> int | None:
    """End (exclusive) of a date starting at word ``p``: "03/04/1985", "March 3rd, 1985", "March 1985",
    "3rd of March 1985", "3 March"; None when there is none."""
    def at(k: int) -> str:
        return low[k] if k < len(low) else ""

    if _NUMERIC_DATE.fullmatch(at(p)):
        return p + 1
    if at(p) in _MONTHS:
        k = p + 1 + bool(_DAY.fullmatch(at(p + 1)))
        k += bool(_YEAR.fullmatch(at(k)))
        return k if k > p + 1 else None  # a month alone ("may") is not a date
    if _DAY.fullmatch(at(p)):
        k = p + 1 + (at(p + 1) == "of")
        if at(k) in _MONTHS:
            return k + 1 + bool(_YEAR.fullmatch(at(k + 1)))
    return None
