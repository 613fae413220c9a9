"""``POST /v1/understanding`` speaker identification, offline (contract §11).

Request (AssemblyAI's shape)::

    {"transcript_id": "<id>", "speech_understanding": {"request": {"speaker_identification": {
        "speaker_type": "role" | "name",
        "known_values": ["Agent", "Customer"]                 # each ≤ 35 characters, or
        "speakers": [{"role": "Agent", "description": "…", …custom fields}]   # not both
    }}}}

``known_values`` (or ``speakers``) is required for ``role``; for ``name`` it is optional (AssemblyAI's
docs, "Request parameters"): without it, the names the speakers introduce themselves with are used.

Response: the transcript (every key of GET /v2/transcript, a superset of the documented response)
with ``speaker`` renamed in ``utterances``, ``utterances[].words``, ``words`` and
``sentiment_analysis_results``, plus::

    "request_id": "<uuid>",
    "speech_understanding": {
      "request": {"speaker_identification": <the request's block, as sent>},
      "response": {"speaker_identification": {
        "mapping": {"A": "Agent", "B": "Customer"},    # original label → value
        "status": "success",
        "unmapped_values": [],      # local extension: values no speaker got (more values than speakers)
        "unmapped_speakers": [],    # local extension: labels that kept their letter (more speakers)
        "message": null}}}          # local extension: a sentence saying what was left unmapped

Errors (the gateway's envelope, see gateway.GatewayError): 400 for an invalid request (both
``known_values`` and ``speakers``, a value over 35 characters, …), 404 for an unknown or deleted
transcript, 400 for a transcript not completed, and 400 for a transcript without speaker labels
(created without ``speaker_labels`` or ``multichannel``, so it has no utterances).

More values than speakers (e.g. three roles for a two-speaker call) is not an error: AssemblyAI's
docs do not say what happens, and a call where a third party never spoke is normal. The speakers
found get the best values, status stays "success", and ``unmapped_values`` plus ``message`` say which
values were not used. Speakers beyond the number of values keep their label (``unmapped_speakers``).

How speakers are matched (no LLM; see ``IDENTIFICATION_CHOICE`` below for why):

* roles: each value is put on a side: the service side (agent, rep, sales, support, host,
  interviewer, …) or the customer side (customer, caller, client, prospect, guest, …), from its
  words, else from its ``description``. Each speaker gets a service score from what they say:
  phrases of a support agent ("thank you for calling", "how can I help", "your account"), of a
  sales rep ("this is Dana from Acme", "I'm calling from", "we help teams", "what are you currently
  using"), of a host; minus phrases of a customer or prospect ("I'm calling because", "my bill",
  "how much does it cost", "we're currently using"); plus a share of the call's questions (reps and
  agents ask the discovery questions) and a small bonus for speaking first. Service-side values go
  to the highest score, customer-side values to the lowest.
* names: a speaker who introduces themself ("my name is X", "this is X", "X speaking", "I'm X")
  gets X; a name a speaker addresses ("Hello X", "thanks, X") goes to the other speaker(s).
* descriptions (``speakers[].description`` and any custom string fields) add their side (as for
  roles) and the overlap between their content words and what each speaker says.
* the assignment is the best-scoring one-to-one matching; ties follow the order of first appearance
  and the order of the values.
"""
from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

from .gateway import GatewayError

# Measured (2 cores) on the sample support call's script and a scripted sales call (prospect speaks
# first), each with the values in both orders, the LLM answer constrained by a JSON schema
# {label: enum of the values}:
#   heuristic below            4/4 right, < 1 ms
#   SmolLM2-135M (test model)  1/4 (gave both speakers "Agent" once), 1.4-15 s
#   Qwen2.5-Coder-1.5B         2/4: it follows the order of the values (right only when the first
#                              value belongs to the first speaker), 40-53 s cold, 9-11 s warm
# So identification is the heuristic; the local LLM is not used.
IDENTIFICATION_CHOICE = "heuristic"

MAX_VALUE_LEN = 35
NO_SPEAKER_LABELS_ERROR = ("The transcript was created without speaker_labels: create it with "
                           "speaker_labels: true (or multichannel) to identify speakers")

SERVICE_ROLE_WORDS = {
    "agent", "rep", "reps", "representative", "sales", "salesperson", "seller", "support", "advisor",
    "adviser", "host", "interviewer", "moderator", "doctor", "clinician", "nurse", "operator",
    "consultant", "associate", "specialist", "staff", "employee", "receptionist", "account",
    "executive", "ae", "sdr", "bdr", "manager", "vendor", "provider", "assistant", "ai", "bot",
    "service", "helpdesk", "technician", "tech", "coach", "teacher", "recruiter", "dispatcher",
    "banker", "broker", "lawyer", "attorney", "therapist", "pharmacist", "company", "business",
}
CUSTOMER_ROLE_WORDS = {
    "customer", "caller", "client", "patient", "prospect", "buyer", "guest", "interviewee", "user",
    "lead", "member", "visitor", "panelist", "candidate", "applicant", "student", "consumer",
    "subscriber", "shopper", "purchaser", "complainant", "homeowner", "tenant", "owner",
}
# Description words that put a speaker on one side ("asks the questions", "answers questions").
SERVICE_DESCRIPTION_WORDS = {"hosts", "interviews", "asks", "sells", "pitches", "represents",
                             "introduces", "helps", "assists", "resolves", "presents", "leads"}
CUSTOMER_DESCRIPTION_WORDS = {"answers", "calls", "called", "complains", "buys", "evaluating",
                              "evaluates", "considering", "interested", "needs", "wants"}

# Phrases (lower case, matched on word boundaries) and their weight as evidence of the service side.
SERVICE_PHRASES: dict[str, float] = {
    # support agent
    "thank you for calling": 3, "thanks for calling": 3, "how can i help": 2, "how may i help": 2,
    "how can i assist": 2, "what can i do for you": 2, "let me check": 1, "let me look": 1,
    "let me pull up": 1, "i can help": 1, "is there anything else": 2, "anything else i can": 2,
    "have a great day": 1, "have a nice day": 1, "for your patience": 1, "your account": 1,
    "account number": 1, "i'll make sure": 1, "i will make sure": 1, "our records": 1,
    "i can see": 1, "i see that": 1, "i apologise": 1, "i apologize": 1,
    "sorry to hear": 1, "could you give me": 1, "can you confirm": 1, "can i have your": 1,
    # sales rep: introduces the company, pitches, asks discovery questions, books next steps
    "calling from": 3, "i'm with": 1, "reaching out": 2, "our platform": 2, "our product": 2,
    "our solution": 2, "our software": 2, "our customers": 2, "our clients": 2, "we help": 2,
    "we offer": 2, "we work with": 2, "we specialize": 2, "a demo": 2, "free trial": 2,
    "would you be interested": 2, "are you currently": 2, "what are you currently": 2,
    "how are you currently": 2, "what does your": 1, "how does your": 1, "your team": 1,
    "your company": 1, "your business": 1, "your current": 1, "what challenges": 2,
    "biggest challenge": 2, "tell me about": 1, "tell me a bit": 1, "tell me more about": 1,
    "walk me through": 1, "does that make sense": 1, "next steps": 1, "follow up": 1,
    "send you": 1, "set up a": 1, "schedule a": 1, "quick call": 1, "thanks for taking": 2,
    "thank you for taking": 2, "for your time": 1, "is now a good time": 2, "a few minutes": 1,
    "decision maker": 1, "how many": 1,
    # host / interviewer
    "welcome to the show": 3, "welcome to": 1, "thanks for joining": 2, "thank you for joining": 2,
    "our guest": 2, "my guest": 2, "today we have": 2, "let's dive": 1,
}
CUSTOMER_PHRASES: dict[str, float] = {
    "i am calling because": 3, "i'm calling because": 3, "i am calling about": 3,
    "i'm calling about": 3, "i'm calling to": 2, "i am calling to": 2, "i have a problem": 2,
    "i have a question": 2, "my bill": 2, "my order": 2, "my account": 1, "my internet": 2,
    "my electricity": 2, "i was charged": 2, "i need help": 2, "i want to cancel": 2,
    "can you help me": 2, "i'd like to": 1, "we're currently using": 2, "we are currently using": 2,
    "we currently use": 2, "our budget": 2, "how much does": 2, "how much is": 2,
    "what does it cost": 2, "what's the price": 2, "i'll think about": 2, "not interested": 2,
    "send me": 1, "thanks for having me": 3, "thank you for having me": 3, "i think there is a mistake": 2,
}
QUESTION_WEIGHT = 2.0     # × the speaker's share of the call's questions
FIRST_SPEAKER_BONUS = 0.5
DESCRIPTION_WEIGHT = 2.0  # × share of a description's content words the speaker says

_STOPWORDS = set("""a an the and or but of to in on at for from by with about as is are was were be been
being this that these those it its it's he she they them his her their our your my we you i me us who
whom which what when where why how not no yes do does did done have has had will would can could
should may might must shall than then there here also very just so such into over under only other
some any each all both few more most own same too out up down off again further once program""".split())

_NAME_STOP = {"calling", "sorry", "here", "fine", "good", "great", "glad", "happy", "afraid", "just",
              "not", "so", "very", "really", "still", "going", "trying", "looking", "the", "a", "an",
              "from", "with", "on", "in", "at", "about", "actually", "well", "ok", "okay", "yes", "no",
              "hello", "hi", "hey", "thanks", "thank", "speaking", "it", "this", "that", "your",
              "my", "our", "i", "you", "we", "they", "he", "she", "sure", "right", "interested"}


# ------------------------------------------------------------------------------------ validation
def _validate(body: Any, require_transcript: bool = True) -> tuple[str | None, dict, str, list[dict]]:
    """The request's transcript id, its speaker_identification block, speaker type and the values
    as ``[{"value": str, "description": str}]`` (empty for names to be found in the transcript)."""
    if not isinstance(body, dict):
        raise GatewayError(400, "request body must be a JSON object")
    tid = body.get("transcript_id")
    if (require_transcript or tid is not None) and (not isinstance(tid, str) or not tid.strip()):
        raise GatewayError(400, "transcript_id is required (a string)")
    su = body.get("speech_understanding")
    req = su.get("request") if isinstance(su, dict) else None
    si = req.get("speaker_identification") if isinstance(req, dict) else None
    if not isinstance(si, dict):
        raise GatewayError(400, "speech_understanding.request.speaker_identification is required "
                                "(the local server supports speaker identification only)")
    speaker_type = si.get("speaker_type")
    if speaker_type not in ("role", "name"):
        raise GatewayError(400, 'speaker_identification.speaker_type is required: "role" or "name"')
    known, speakers = si.get("known_values"), si.get("speakers")
    if known is not None and speakers is not None:
        raise GatewayError(400, "speaker_identification: use either known_values or speakers, not both")
    errors: list[str] = []
    values: list[dict] = []
    if known is not None:
        if not isinstance(known, list) or not known:
            raise GatewayError(400, "speaker_identification.known_values must be a non-empty array of strings")
        for i, v in enumerate(known):
            if not isinstance(v, str) or not v.strip():
                errors.append(f"known_values[{i}] must be a non-empty string")
                continue
            values.append({"value": v.strip(), "description": "", "where": f"known_values[{i}]"})
    elif speakers is not None:
        if not isinstance(speakers, list) or not speakers:
            raise GatewayError(400, "speaker_identification.speakers must be a non-empty array of objects")
        for i, s in enumerate(speakers):
            if not isinstance(s, dict):
                errors.append(f"speakers[{i}] must be an object")
                continue
            v = s.get(speaker_type)
            if not isinstance(v, str) or not v.strip():
                errors.append(f'speakers[{i}].{speaker_type} is required (speaker_type is "{speaker_type}")')
                continue
            desc = s.get("description")
            if desc is not None and not isinstance(desc, str):
                errors.append(f"speakers[{i}].description must be a string")
                continue
            extra = [str(x) for k, x in s.items()
                     if k not in ("role", "name", "description") and isinstance(x, str)]
            values.append({"value": v.strip(), "description": " ".join([desc or "", *extra]).strip(),
                           "where": f"speakers[{i}].{speaker_type}"})
    elif speaker_type == "role":
        raise GatewayError(400, 'speaker_identification.known_values (or speakers) is required for '
                                'speaker_type "role"')
    for v in values:
        if len(v["value"]) > MAX_VALUE_LEN:
            errors.append(f"{v['where']} {v['value']!r} is {len(v['value'])} characters long: each "
                          f"value must be {MAX_VALUE_LEN} characters or fewer")
    seen: set[str] = set()
    for v in values:
        key = v["value"].casefold()
        if key in seen:
            errors.append(f"{v['where']} {v['value']!r} is given twice: each value must be different")
        seen.add(key)
    if errors:
        raise GatewayError(400, *errors)
    return tid, si, speaker_type, values


# ------------------------------------------------------------------------------------ evidence
def _speaker_order(utterances: list[dict]) -> list[str]:
    order: list[str] = []
    for u in sorted(utterances, key=lambda u: int(u.get("start") or 0)):
        s = u.get("speaker")
        if s is not None and s not in order:
            order.append(s)
    return order


def _text_by_speaker(utterances: list[dict]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for u in utterances:
        out.setdefault(u.get("speaker"), []).append(str(u.get("text") or ""))
    return {k: " ".join(v) for k, v in out.items()}


def _norm(text: str) -> str:
    """Lower case, curly quotes straightened, punctuation to spaces (apostrophes kept)."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    return " " + re.sub(r"[^a-z0-9']+", " ", text).strip() + " "


def _count(text: str, phrases: dict[str, float]) -> float:
    return sum(w * text.count(f" {p} ") for p, w in phrases.items())


def _side(text: str, *, description: bool = False) -> int:
    """+1 service side, -1 customer side, 0 unknown, from the words of a role or a description."""
    words = set(_norm(text).split())
    service = len(words & SERVICE_ROLE_WORDS)
    customer = len(words & CUSTOMER_ROLE_WORDS)
    if description:
        service += len(words & SERVICE_DESCRIPTION_WORDS)
        customer += len(words & CUSTOMER_DESCRIPTION_WORDS)
    return (service > customer) - (customer > service)


def service_scores(utterances: list[dict], speakers: list[str]) -> dict[str, float]:
    """Evidence that each speaker is on the service side (agent, rep, host): phrases, questions asked,
    speaking first. Higher = more likely the agent/rep."""
    texts = {s: _norm(t) for s, t in _text_by_speaker(utterances).items()}
    questions = {s: 0 for s in speakers}
    for u in utterances:
        if u.get("speaker") in questions:
            questions[u["speaker"]] += str(u.get("text") or "").count("?")
    total_q = sum(questions.values())
    scores = {}
    for i, s in enumerate(speakers):
        t = texts.get(s, " ")
        score = _count(t, SERVICE_PHRASES) - _count(t, CUSTOMER_PHRASES)
        if total_q:
            score += QUESTION_WEIGHT * questions[s] / total_q
        scores[s] = score + (FIRST_SPEAKER_BONUS if i == 0 else 0.0)
    return scores


def _content_words(text: str) -> set[str]:
    return {w for w in _norm(text).split() if len(w) > 2 and w not in _STOPWORDS}


def _description_scores(speakers: list[str], texts: dict[str, str], description: str) -> dict[str, float]:
    words = _content_words(description)
    if not words:
        return {s: 0.0 for s in speakers}
    return {s: DESCRIPTION_WEIGHT * len(words & _content_words(texts.get(s, ""))) / len(words)
            for s in speakers}


def _name_scores(speakers: list[str], texts: dict[str, str], name: str) -> dict[str, float]:
    n = re.escape(name.lower())
    first = re.escape(name.lower().split()[0])
    who = rf"(?:{n}|{first})"
    intro = re.compile(rf"\b(?:my name is|my name's|this is|i am|i'm|it's|name is)\s+{who}\b|\b{who},?\s+speaking\b|\b{who} here\b")
    address = re.compile(rf"\b(?:hello|hi|hey|thanks|thank you|bye|goodbye|dear|sorry|okay|ok|yes|well)\s*,?\s+{who}\b"
                         rf"|\b(?:that|this),?\s+{who}[.!?]|,\s*{who}[.!?]")
    scores = {s: 0.0 for s in speakers}
    for s in speakers:
        t = texts.get(s, "").lower()
        scores[s] += 3.0 * len(intro.findall(t))
        addressed = len(address.findall(t))
        if addressed:
            for other in speakers:
                if other != s:
                    scores[other] += 1.0 * addressed
    return scores


_INTRO_RE = re.compile(
    r"\b(?:[Mm]y name is|[Mm]y name's|[Tt]his is|[Ii] am|[Ii]'m|[Ii]t's)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)"
    r"|\b([A-Z][a-z]+)\s+speaking\b")


def discovered_names(utterances: list[dict], speakers: list[str]) -> dict[str, str]:
    """``speaker_type: "name"`` without values: the name each speaker introduces themself with
    ("my name is Tom Becker", "this is Maria speaking"), or, in a two-speaker call, the name the
    other speaker greets them with ("Hello Maria")."""
    texts = _text_by_speaker(utterances)
    found: dict[str, str] = {}
    for s in speakers:
        for m in _INTRO_RE.finditer(texts.get(s, "")):
            name = (m.group(1) or m.group(2) or "").strip()
            parts = [p for p in name.split() if p.lower() not in _NAME_STOP]
            if parts and parts[0] == name.split()[0]:
                found[s] = " ".join(parts)[:MAX_VALUE_LEN]
                break
    if len(speakers) == 2:
        greet = re.compile(r"\b(?:Hello|Hi|Hey|Thanks|Thank you|Sorry to hear that|Goodbye|Bye),?\s+([A-Z][a-z]+)\b"
                           r"|\b[Ii]s this\s+([A-Z][a-z]+)\?|,\s+([A-Z][a-z]+)[.!?](?:\s|$)")
        for s in speakers:
            other = speakers[1] if s == speakers[0] else speakers[0]
            if other in found:
                continue
            for m in greet.finditer(texts.get(s, "")):
                name = m.group(1) or m.group(2) or m.group(3)
                if name.lower() not in _NAME_STOP and name not in found.values():
                    found[other] = name
                    break
    return found


# ------------------------------------------------------------------------------------ matching
def identify(utterances: list[dict], speaker_type: str, values: list[dict] | list[str]) -> dict[str, str]:
    """Mapping from the transcript's label (``"A"``, or ``"1"`` / ``"1A"`` for multichannel) to a
    value, by the rules in the module docstring. ``values``: strings, or ``{"value",
    "description"}`` dicts. Each speaker gets at most one value and each value at most one speaker."""
    items = [v if isinstance(v, dict) else {"value": v, "description": ""} for v in values]
    speakers = _speaker_order(utterances)
    if not speakers:
        return {}
    if not items:
        return discovered_names(utterances, speakers) if speaker_type == "name" else {}
    texts = _text_by_speaker(utterances)
    service = service_scores(utterances, speakers)
    score: dict[tuple[str, str], float] = {}
    for j, item in enumerate(items):
        value, desc = item["value"], item.get("description") or ""
        by_speaker = {s: 0.0 for s in speakers}
        if speaker_type == "name":
            by_speaker = _name_scores(speakers, texts, value)
            side = _side(desc, description=True) if desc else 0
            weight = 0.5
        else:
            side = _side(value) or (_side(desc, description=True) if desc else 0)
            weight = 1.0
        for s in speakers:
            by_speaker[s] += weight * side * service[s]
        if desc:
            for s, x in _description_scores(speakers, texts, desc).items():
                by_speaker[s] += x
        for i, s in enumerate(speakers):
            # tiny preference for the given order, so ties map A→first value, B→second, …
            score[(s, value)] = by_speaker[s] - 0.001 * abs(i - j)
    names = [it["value"] for it in items]
    best: tuple[float, dict[str, str]] = (float("-inf"), {})
    k = min(len(speakers), len(names))
    speaker_sets = list(itertools.combinations(speakers, k)) if len(speakers) <= 8 else [tuple(speakers[:k])]
    value_pool = names if len(names) <= 8 else names[:8]
    for chosen in speaker_sets:
        for perm in itertools.permutations(value_pool, k):
            total = sum(score[(s, v)] for s, v in zip(chosen, perm))
            if total > best[0]:
                best = (total, dict(zip(chosen, perm)))
    return {s: best[1][s] for s in speakers if s in best[1]}  # in order of first appearance


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


def _summary(values: list[str], speakers: list[str], mapping: dict[str, str]) -> tuple[list, list, str | None]:
    unmapped_values = [v for v in values if v not in mapping.values()]
    unmapped_speakers = [s for s in speakers if s not in mapping]
    parts = []
    if unmapped_values:
        parts.append(f"{len(values)} values were given for {len(speakers)} speaker(s) found in the "
                     f"transcript: {', '.join(repr(v) for v in unmapped_values)} not assigned to any speaker")
    if unmapped_speakers:
        what = "no value" if values else "no name found in the conversation"
        parts.append(f"speaker(s) {', '.join(unmapped_speakers)} got {what} and keep their label")
    return unmapped_values, unmapped_speakers, ("; ".join(parts) or None)


def understanding_response(body: Any, load_transcript) -> dict:
    """Validate the request, map speakers, and return the modified transcript (a superset of the
    documented response). ``load_transcript(id)`` returns the public transcript dict or None."""
    tid, si, speaker_type, values = _validate(body)
    t = load_transcript(tid)
    if t is None:
        raise GatewayError(404, f"transcript {tid} not found")
    if t.get("status") != "completed":
        raise GatewayError(400, f"transcript {tid} is not completed (status: {t.get('status')}); "
                                "identify speakers once its status is completed")
    if t.get("utterances") is None:
        raise GatewayError(400, NO_SPEAKER_LABELS_ERROR)
    utterances = t["utterances"]
    mapping = identify(utterances, speaker_type, values)
    unmapped_values, unmapped_speakers, message = _summary(
        [v["value"] for v in values], _speaker_order(utterances), mapping)
    out = dict(t)
    out["utterances"] = relabel(utterances, mapping)
    out["words"] = relabel(t.get("words"), mapping)
    if t.get("sentiment_analysis_results") is not None:
        out["sentiment_analysis_results"] = relabel(t["sentiment_analysis_results"], mapping)
    out["request_id"] = str(uuid.uuid4())
    out["speech_understanding"] = {
        "request": {"speaker_identification": si},
        "response": {"speaker_identification": {
            "mapping": mapping, "status": "success", "unmapped_values": unmapped_values,
            "unmapped_speakers": unmapped_speakers, "message": message}},
    }
    return out
