"""``POST /v1/understanding`` speaker identification, offline (contract §11).

The real service asks an LLM which diarized speaker is which name or role. Offline, a small model is
not reliable at this, so the mapping is a transparent heuristic over the utterances:

* names: a speaker who introduces themself ("my name is X", "this is X", "I'm X", "X speaking")
  gets X; a name a speaker addresses ("Hello X", "thanks X") goes to the other speaker(s);
* roles: service-side roles (agent, rep, sales, support, …) go to the speaker who talks like one
  ("thank you for calling", "how can I help", …) and customer-side roles (customer, caller, client,
  …) to the other; the first speaker leans to the service side;
* ties follow the order of first appearance, values in the order given.

Each speaker gets at most one value (the best-scoring one-to-one assignment); speakers beyond the
number of values keep their letter.
"""
from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

from .gateway import GatewayError

SERVICE_ROLE_WORDS = ("agent", "rep", "representative", "sales", "support", "advisor", "adviser",
                      "host", "interviewer", "doctor", "clinician", "operator", "consultant",
                      "associate", "specialist", "seller", "staff", "employee", "receptionist")
CUSTOMER_ROLE_WORDS = ("customer", "caller", "client", "patient", "prospect", "buyer", "guest",
                       "interviewee", "user", "lead", "member", "visitor")
SERVICE_PHRASES = ("thank you for calling", "thanks for calling", "how can i help", "how may i help",
                   "how can i assist", "what can i do for you", "speaking", "let me check",
                   "let me look", "i can help", "is there anything else", "have a great day",
                   "have a nice day", "for your patience", "your account", "i'll make sure",
                   "i will make sure", "our records", "i can see", "i see that")
MAX_VALUE_LEN = 35


def _validate(body: Any, require_transcript: bool = True) -> tuple[str | None, dict, str, list[str]]:
    if not isinstance(body, dict):
        raise GatewayError(400, "request body must be a JSON object")
    tid = body.get("transcript_id")
    if (require_transcript or tid is not None) and (not isinstance(tid, str) or not tid):
        raise GatewayError(400, "transcript_id is required")
    su = body.get("speech_understanding")
    req = su.get("request") if isinstance(su, dict) else None
    si = req.get("speaker_identification") if isinstance(req, dict) else None
    if not isinstance(si, dict):
        raise GatewayError(400, "speech_understanding.request.speaker_identification is required "
                                "(the local server supports speaker identification only)")
    speaker_type = si.get("speaker_type")
    if speaker_type not in ("role", "name"):
        raise GatewayError(400, "speaker_identification.speaker_type must be role or name")
    known, speakers = si.get("known_values"), si.get("speakers")
    if known is not None and speakers is not None:
        raise GatewayError(400, "use either known_values or speakers, not both")
    values: list[str] = []
    if known is not None:
        if not isinstance(known, list) or not known or not all(isinstance(v, str) and v.strip() for v in known):
            raise GatewayError(400, "known_values must be a non-empty array of strings")
        values = [v.strip() for v in known]
    elif speakers is not None:
        if not isinstance(speakers, list) or not speakers:
            raise GatewayError(400, "speakers must be a non-empty array")
        for i, s in enumerate(speakers):
            v = s.get(speaker_type) if isinstance(s, dict) else None
            if not isinstance(v, str) or not v.strip():
                raise GatewayError(400, f"speakers[{i}].{speaker_type} is required")
            values.append(v.strip())
    else:
        raise GatewayError(400, f"known_values is required for speaker_type {speaker_type} "
                                "unless speakers is given")
    too_long = [v for v in values if len(v) > MAX_VALUE_LEN]
    if too_long:
        raise GatewayError(400, *[f"known value {v!r} is longer than {MAX_VALUE_LEN} characters"
                                  for v in too_long])
    return tid, si, speaker_type, values


def _speaker_order(utterances: list[dict]) -> list[str]:
    order: list[str] = []
    for u in utterances:
        s = u.get("speaker")
        if s is not None and s not in order:
            order.append(s)
    return order


def _text_by_speaker(utterances: list[dict]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for u in utterances:
        out.setdefault(u.get("speaker"), []).append(str(u.get("text") or ""))
    return {k: " ".join(v).lower() for k, v in out.items()}


def _role_side(role: str) -> int:
    words = set(re.findall(r"[a-z]+", role.lower()))
    if words & set(SERVICE_ROLE_WORDS):
        return 1
    if words & set(CUSTOMER_ROLE_WORDS):
        return -1
    return 0


def _name_scores(speakers: list[str], texts: dict[str, str], name: str) -> dict[str, float]:
    n = re.escape(name.lower())
    first = re.escape(name.lower().split()[0])
    intro = re.compile(rf"(my name is|my name's|this is|i am|i'm|it's)\s+({n}|{first})\b|\b({n}|{first}),?\s+speaking")
    address = re.compile(rf"\b(hello|hi|hey|thanks|thank you|bye|goodbye|dear|sorry)\s*,?\s+({n}|{first})\b")
    scores = {s: 0.0 for s in speakers}
    for s in speakers:
        t = texts.get(s, "")
        scores[s] += 3.0 * len(intro.findall(t))
        addressed = len(address.findall(t))
        if addressed:
            for other in speakers:
                if other != s:
                    scores[other] += 1.0 * addressed
    return scores


def _service_score(speaker: str, index: int, texts: dict[str, str]) -> float:
    t = texts.get(speaker, "")
    score = sum(t.count(p) for p in SERVICE_PHRASES)
    return score + (0.5 if index == 0 else 0.0)


def identify(utterances: list[dict], speaker_type: str, values: list[str]) -> dict[str, str]:
    """Mapping from diarized label (``"A"``) to a value, by the heuristics in the module docstring."""
    speakers = _speaker_order(utterances)
    if not speakers:
        return {}
    texts = _text_by_speaker(utterances)
    score: dict[tuple[str, str], float] = {}
    for j, value in enumerate(values):
        if speaker_type == "name":
            by_speaker = _name_scores(speakers, texts, value)
        else:
            side = _role_side(value)
            by_speaker = {s: side * _service_score(s, i, texts) for i, s in enumerate(speakers)}
        for i, s in enumerate(speakers):
            # tiny preference for the given order, so ties map A→first value, B→second, …
            score[(s, value)] = by_speaker[s] - 0.001 * abs(i - j)
    best: tuple[float, dict[str, str]] = (float("-inf"), {})
    k = min(len(speakers), len(values))
    speaker_sets = list(itertools.combinations(speakers, k)) if len(speakers) <= 8 else [tuple(speakers[:k])]
    for chosen in speaker_sets:
        for perm in itertools.permutations(values[:8] if len(values) > 8 else values, k):
            total = sum(score[(s, v)] for s, v in zip(chosen, perm))
            if total > best[0]:
                best = (total, dict(zip(chosen, perm)))
    return best[1]


def relabel(items: list[dict] | None, mapping: dict[str, str]) -> list[dict] | None:
    if items is None:
        return None
    out = []
    for item in items:
        item = dict(item)
        if item.get("speaker") in mapping:
            item["speaker"] = mapping[item["speaker"]]
        if isinstance(item.get("words"), list):
            item["words"] = relabel(item["words"], mapping)
        out.append(item)
    return out


def validate_request(body: Any) -> None:
    """``POST /v1/understanding/validate``: raise GatewayError(400) for an invalid request."""
    _validate(body, require_transcript=False)


def understanding_response(body: Any, load_transcript) -> dict:
    """Validate the request, map speakers, and return the modified transcript (a superset of the
    documented response). ``load_transcript(id)`` returns the public transcript dict or None."""
    tid, si, speaker_type, values = _validate(body)
    t = load_transcript(tid)
    if t is None:
        raise GatewayError(404, f"transcript {tid} not found")
    if t.get("status") != "completed":
        raise GatewayError(400, f"transcript {tid} is not completed (status: {t.get('status')})")
    if t.get("utterances") is None:
        raise GatewayError(400, f"transcript {tid} was not created with speaker_labels: true")
    mapping = identify(t["utterances"], speaker_type, values)
    out = dict(t)
    out["utterances"] = relabel(t["utterances"], mapping)
    out["words"] = relabel(t.get("words"), mapping)
    if t.get("sentiment_analysis_results") is not None:
        out["sentiment_analysis_results"] = relabel(t["sentiment_analysis_results"], mapping)
    out["request_id"] = str(uuid.uuid4())
    out["speech_understanding"] = {
        "request": {"speaker_identification": si},
        "response": {"speaker_identification": {"mapping": mapping, "status": "success"}},
    }
    return out
