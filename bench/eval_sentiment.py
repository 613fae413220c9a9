"""Sentence sentiment evaluation: the local server's VADER labels against other offline engines whose
lexicon ships inside their package, on ../shared/evaldata when it is present.

Sets:

* synthetic-support-call: each sentence of call_script.json carries the sentiment its author
  intended (POSITIVE / NEUTRAL / NEGATIVE). Scored per sentence: accuracy, confusion (rows = intended,
  columns = predicted), per-class precision/recall/F1 and macro-F1. The same sentences are scored
  again lower-cased with punctuation removed (as the Harper Valley transcripts are written) to show
  how much an engine leans on case and punctuation. Each candidate is compared with VADER by an exact
  McNemar test on the sentences exactly one of the two gets right (30 sentences: only a large gap
  can show).
* hvb-harper-valley: the caller's human transcript segments (``speaker_role == "caller"``, bracketed
  tags such as "[noise]" removed, empty ones dropped), one segment = one sentence. Per call: the share
  of the caller's sentences labelled NEGATIVE and POSITIVE and the caller's mean score, against the
  caller's ``caller_partner_rating_10pt`` (manifest.json); Spearman rank correlation across the calls
  that have a transcript/ file (6). The rating is the caller's rating of the agent (the conversation
  partner), not CSAT, and 6 calls (4 of them rated 10) is far too small a sample for any conclusion:
  the numbers are a smoke check, not evidence. The segments' ``emotion`` field is model output and is
  not used.

Engines and their 3-label rules, fixed in advance (the tools' own conventions, not fitted here):

* vader: ``local_api.engines.sentiment.classify``, the server's labels (VADER compound c:
  c >= 0.05 POSITIVE, c <= -0.05 NEGATIVE, else NEUTRAL, the thresholds VADER's authors give);
  score = compound.
* textblob: TextBlob's default PatternAnalyzer (pattern's en-sentiment.xml lexicon, in the wheel):
  polarity p > 0 POSITIVE, p < 0 NEGATIVE, p == 0 NEUTRAL; score = p.
* afinn: AFINN-en-165 word list (in the afinn package): summed word valence s > 0 POSITIVE, s < 0
  NEGATIVE, s == 0 NEUTRAL; score = s.

An engine whose package is not installed is skipped, saying so (textblob and afinn are not project
dependencies: ``pip install textblob==0.20.1 afinn==0.1`` to compare them). A last table gives, per
engine, the symmetric threshold that would maximise macro-F1 on the synthetic sentences: it is tuned
on the very data it scores, so it is an optimistic ceiling, never a rule to adopt.

Usage: python bench/eval_sentiment.py [--evaldata DIR] [--engines vader,textblob,afinn] [--out FILE.json]
(``--stt-model`` is accepted, as by every evaluation script, and unused: no audio is transcribed.)
Attribution: HarperValleyBank (Gridspace/Stanford), CC BY 4.0.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Callable

from scipy.stats import binomtest, spearmanr
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from eval_stt import eval_parser, normalise  # noqa: E402

LABELS = ("POSITIVE", "NEUTRAL", "NEGATIVE")
Engine = Callable[[str], tuple[str, float]]  # text -> (label, score)


def sign_label(score: float, threshold: float = 0.0) -> str:
    return "POSITIVE" if score > threshold else "NEGATIVE" if score < -threshold else "NEUTRAL"


def vader_engine() -> Engine:
    from local_api.engines.sentiment import _get_analyzer, classify

    analyzer = _get_analyzer()
    return lambda text: (classify(text)[0], float(analyzer.polarity_scores(text)["compound"]))


def textblob_engine() -> Engine:
    from textblob import TextBlob

    def run(text: str) -> tuple[str, float]:
        p = float(TextBlob(text).sentiment.polarity)
        return sign_label(p), p
    return run


def afinn_engine() -> Engine:
    from afinn import Afinn

    afinn = Afinn(language="en")

    def run(text: str) -> tuple[str, float]:
        s = float(afinn.score(text))
        return sign_label(s), s
    return run


ENGINES: dict[str, Callable[[], Engine]] = {
    "vader": vader_engine, "textblob": textblob_engine, "afinn": afinn_engine}


# ---------------------------------------------------------------------------------------- scoring

def per_class_f1(gold: list[str], pred: list[str]) -> dict[str, float]:
    return dict(zip(LABELS, f1_score(gold, pred, labels=list(LABELS), average=None, zero_division=0)))


def macro_f1(gold: list[str], pred: list[str]) -> float:
    return float(f1_score(gold, pred, labels=list(LABELS), average="macro", zero_division=0))


def mcnemar(gold: list[str], a: list[str], b: list[str]) -> tuple[int, int, float]:
    """(only a right, only b right, exact two-sided p) on paired predictions."""
    only_a = sum(x == g != y for g, x, y in zip(gold, a, b))
    only_b = sum(y == g != x for g, x, y in zip(gold, a, b))
    n = only_a + only_b
    p = binomtest(min(only_a, only_b), n, 0.5).pvalue if n else 1.0
    return only_a, only_b, float(p)


def best_threshold(gold: list[str], scores: list[float]) -> tuple[float, float]:
    """The symmetric threshold t (score > t POSITIVE, < -t NEGATIVE) with the best macro-F1 on these
    same sentences: (t, macro-F1). Candidates: 0 and the midpoints between the distinct |scores|."""
    mags = sorted({abs(s) for s in scores})
    cands = [0.0] + [(x + y) / 2 for x, y in zip(mags, mags[1:])] + [mags[-1] if mags else 0.0]
    best = max(cands, key=lambda t: (macro_f1(gold, [sign_label(s, t) for s in scores]), -t))
    return best, macro_f1(gold, [sign_label(s, best) for s in scores])


def spearman(x: list[float], y: list[float]) -> tuple[float | None, float | None]:
    if len(set(x)) < 2 or len(set(y)) < 2:
        return None, None  # undefined for a constant series
    r = spearmanr(x, y)
    return float(r.statistic), float(r.pvalue)


def fmt(v: float | None, spec: str = "+.2f") -> str:
    return "n/a" if v is None else format(v, spec)


# ------------------------------------------------------------------------------------------- data

def synthetic_sentences(root: Path) -> list[dict]:
    script = root / "call_script.json"
    if not script.exists():
        print(f"No synthetic call script at {script}: synthetic set skipped.")
        return []
    return [{"speaker": s["speaker"], "text": s["text"], "gold": s["sentiment"].upper()}
            for s in json.loads(script.read_text())["segments"] if s.get("sentiment")]


TAG = re.compile(r"\[[^\]]*\]")


def harper_valley_callers(root: Path) -> list[dict]:
    """One entry per call with a transcript/ file: sid, task, rating, the caller's sentences."""
    manifest = root / "manifest.json"
    if not manifest.exists():
        print(f"No Harper Valley data at {root}: Harper Valley set skipped (it is optional).")
        return []
    calls = []
    for call in json.loads(manifest.read_text())["calls"]:
        transcript = root / "transcript" / f"{call['sid']}.json"
        if not transcript.exists():
            continue
        segments = sorted(json.loads(transcript.read_text()), key=lambda s: s["start_ms"])
        texts = [" ".join(TAG.sub(" ", s["human_transcript"]).split()) for s in segments
                 if s["speaker_role"] == "caller"]
        calls.append({"sid": call["sid"], "task": call.get("task", ""),
                      "rating": call["caller_partner_rating_10pt"], "sentences": [t for t in texts if t]})
    return sorted(calls, key=lambda c: (-c["rating"], c["sid"]))


# ------------------------------------------------------------------------------------------ report

def report_synthetic(sentences: list[dict], engines: dict[str, Engine]) -> dict:
    gold = [s["gold"] for s in sentences]
    out: dict = {"n": len(gold), "gold_counts": {lab: gold.count(lab) for lab in LABELS}, "engines": {}}
    preds, preds_norm, scores = {}, {}, {}
    for name, engine in engines.items():
        res = [engine(s["text"]) for s in sentences]
        preds[name] = [r[0] for r in res]
        scores[name] = [r[1] for r in res]
        preds_norm[name] = [engine(normalise(s["text"]))[0] for s in sentences]

    print(f"\n== synthetic-support-call: {len(gold)} sentences, intended "
          + ", ".join(f"{lab} {gold.count(lab)}" for lab in LABELS))
    print(f"{'engine':9s} {'acc':>6s} {'macroF1':>8s}   {'F1 pos/neu/neg':>16s}   "
          f"{'acc(norm)':>9s} {'mF1(norm)':>9s}   vs vader: only-vader/only-this, McNemar p")
    for name in engines:
        pc = per_class_f1(gold, preds[name])
        acc, mf1 = accuracy_score(gold, preds[name]), macro_f1(gold, preds[name])
        acc_n, mf1_n = accuracy_score(gold, preds_norm[name]), macro_f1(gold, preds_norm[name])
        vs = ""
        entry = {"accuracy": acc, "macro_f1": mf1, "per_class": pc, "accuracy_normalised": acc_n,
                 "macro_f1_normalised": mf1_n, "predictions": preds[name], "scores": scores[name]}
        if name != "vader" and "vader" in preds:
            only_v, only_c, p = mcnemar(gold, preds["vader"], preds[name])
            vs = f"{only_v:2d}/{only_c:<2d} p={p:.2f}"
            entry["mcnemar_vs_vader"] = {"only_vader": only_v, "only_this": only_c, "p": p}
        print(f"{name:9s} {acc:6.1%} {mf1:8.3f}   {pc['POSITIVE']:.2f}/{pc['NEUTRAL']:.2f}/"
              f"{pc['NEGATIVE']:.2f}   {acc_n:9.1%} {mf1_n:9.3f}   {vs}")
        out["engines"][name] = entry

    print("\nconfusion (rows intended, columns predicted: POS NEU NEG)")
    for name in engines:
        for i, (g, row) in enumerate(zip(LABELS, confusion_matrix(gold, preds[name], labels=list(LABELS)))):
            print(f"{name if i == 0 else '':9s} {g:9s} " + " ".join(f"{n:3d}" for n in row))

    print("\nmisses (intended -> " + " / ".join(engines) + ")")
    for k, s in enumerate(sentences):
        got = [preds[n][k] for n in engines]
        if any(p != s["gold"] for p in got):
            print(f"  {s['gold'][:3]} -> " + " / ".join(p[:3] for p in got) + f"  {s['speaker']}: {s['text']}")

    print("\nthreshold tuned on these same sentences (optimistic ceiling, NOT a rule to adopt)")
    for name in engines:
        t, mf1 = best_threshold(gold, scores[name])
        print(f"{name:9s} |score| > {t:.3f}: macro-F1 {mf1:.3f} (fixed rule {out['engines'][name]['macro_f1']:.3f})")
        out["engines"][name]["tuned_threshold"] = {"threshold": t, "macro_f1": mf1}
    return out


def report_harper_valley(calls: list[dict], engines: dict[str, Engine]) -> dict:
    ratings = [c["rating"] for c in calls]
    print(f"\n== hvb-harper-valley: {len(calls)} calls, the caller's human-transcript segments; "
          f"rating = caller_partner_rating_10pt (the caller's rating of the agent, NOT CSAT); "
          f"{len(calls)} calls is a tiny sample (ratings {ratings})")
    out: dict = {"calls": [{k: c[k] for k in ("sid", "task", "rating")} | {"n_sentences": len(c["sentences"])}
                           for c in calls], "engines": {}}
    for name, engine in engines.items():
        rows = []
        for c in calls:
            res = [engine(t) for t in c["sentences"]]
            n = len(res) or 1
            rows.append({"sid": c["sid"], "rating": c["rating"], "n": len(res),
                         "neg_share": sum(r[0] == "NEGATIVE" for r in res) / n,
                         "pos_share": sum(r[0] == "POSITIVE" for r in res) / n,
                         "mean_score": sum(r[1] for r in res) / n,
                         "negative_sentences": [t for t, r in zip(c["sentences"], res) if r[0] == "NEGATIVE"]})
        rho_mean = spearman(ratings, [r["mean_score"] for r in rows])
        rho_neg = spearman(ratings, [r["neg_share"] for r in rows])
        rho_pos = spearman(ratings, [r["pos_share"] for r in rows])
        print(f"\n{name}: Spearman vs rating: mean score rho={fmt(rho_mean[0])} (p={fmt(rho_mean[1], '.2f')}), "
              f"NEGATIVE share rho={fmt(rho_neg[0])} (p={fmt(rho_neg[1], '.2f')}), "
              f"POSITIVE share rho={fmt(rho_pos[0])} (p={fmt(rho_pos[1], '.2f')})")
        print(f"  {'sid':16s} {'rating':>6s} {'caller sent.':>12s} {'NEG share':>9s} {'POS share':>9s} "
              f"{'mean score':>10s}  NEGATIVE sentences")
        for r in rows:
            print(f"  {r['sid']:16s} {r['rating']:6d} {r['n']:12d} {r['neg_share']:9.1%} {r['pos_share']:9.1%} "
                  f"{r['mean_score']:+10.3f}  {r['negative_sentences']}")
        out["engines"][name] = {"rows": rows, "spearman_mean_score": rho_mean, "spearman_neg_share": rho_neg,
                                "spearman_pos_share": rho_pos}
    return out


def load_engines(names: list[str]) -> dict[str, Engine]:
    engines = {}
    for name in names:
        if name not in ENGINES:
            raise SystemExit(f"unknown engine {name!r}: choose from {', '.join(ENGINES)}")
        try:
            engines[name] = ENGINES[name]()
        except ImportError as exc:
            print(f"engine {name} skipped: {exc} (not installed)")
    return engines


def main() -> int:
    parser = eval_parser(__doc__)
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help="comma-separated, from: " + ", ".join(ENGINES))
    args = parser.parse_args()
    if not args.evaldata.is_dir():
        print(f"No evaluation data at {args.evaldata}: nothing to evaluate (it is optional).")
        return 0
    engines = load_engines([n.strip() for n in args.engines.split(",") if n.strip()])
    if not engines:
        print("No engine available: nothing to evaluate.")
        return 0
    result: dict = {"engines": list(engines)}
    sentences = synthetic_sentences(args.evaldata / "synthetic-support-call")
    if sentences:
        result["synthetic"] = report_synthetic(sentences, engines)
    calls = harper_valley_callers(args.evaldata / "hvb-harper-valley")
    if calls:
        result["harper_valley"] = report_harper_valley(calls, engines)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
