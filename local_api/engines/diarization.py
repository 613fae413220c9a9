"""Speaker labels without torch: webrtcvad speech windows → MFCC statistics → spectral clustering.

1. webrtcvad (aggressiveness 2, 30 ms frames) marks speech; speech runs separated by less than
   ``MERGE_GAP_MS`` are merged into regions, and regions are cut into windows of at most
   ``WINDOW_MS`` (the tail of a region joins the previous window when shorter than ``MIN_WINDOW_MS``).
2. Each window is described by the mean and standard deviation of 20 MFCCs (librosa), standardised
   over the recording.
3. Spectral clustering (``random_state=0``, so results are deterministic; see :func:`_spectral`)
   into k = ``speakers_expected`` speakers, or else the count chosen from the audio within
   ``max(2, min)..max`` (max defaults to ``DEFAULT_MAX_SPEAKERS``): the smallest k (two, a call's two
   sides, unless a minimum says more) stands unless a larger k has a better silhouette score by
   ``K_MARGIN`` *and* gives every speaker at least ``MIN_SPEAKER_SHARE`` of the clustered speech
   time (a smaller "speaker" is more likely a piece of one voice than a third party on a call). With
   too few windows to compare counts (silhouette needs more windows than clusters) the smallest k
   is taken. One speaker only when asked (speakers_expected or max_speakers = 1): silhouette cannot
   tell one voice from two here (a single voice over noise scored 0.38, two clean voices
   0.28-0.33), and a call has two sides. Only windows that overlap at least one transcribed word
   are clustered (noise-only windows formed a third "speaker" on a noisy call).
4. A window whose label differs from both neighbours, which share a label and touch it (gap <
   ``SMOOTH_GAP_MS``), takes the neighbours' label (removes one-window flips).
5. Each word takes the label of the window under its midpoint (the nearest window if none), and
   labels are renamed "A", "B", … in order of first appearance among the words.
"""
from __future__ import annotations

import string
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["assign_speakers", "speech_windows", "Window", "DEFAULT_MAX_SPEAKERS", "MAX_SPEAKERS"]

SAMPLE_RATE = 16_000
FRAME_MS = 30
VAD_AGGRESSIVENESS = 2
MERGE_GAP_MS = 150
CUT_GAP_MS = 200
WINDOW_MS = 1500
MIN_WINDOW_MS = 500
SMOOTH_GAP_MS = 300
DEFAULT_MAX_SPEAKERS = 6
MAX_SPEAKERS = 26  # labels A..Z
K_MARGIN = 0.03  # a larger k must beat the best smaller k's silhouette by this much
MIN_SPEAKER_SHARE = 0.1  # ... and give each of its speakers this share of the speech time
NEIGHBOUR_SHARE = 0.25  # each window's neighbours in the spectral clustering graph, share of all windows
N_MFCC = 20


@dataclass
class Window:
    """A stretch of speech in integer ms, with its cluster label once assigned."""

    start: int
    end: int
    label: int = -1


def _vad_runs(audio: np.ndarray) -> list[tuple[int, int]]:
    """Speech runs ``[(start_ms, end_ms)]`` from webrtcvad on 30 ms frames."""
    import webrtcvad

    vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    n = SAMPLE_RATE * FRAME_MS // 1000
    runs: list[tuple[int, int]] = []
    cur: int | None = None
    for i in range(len(pcm) // n):
        speech = vad.is_speech(pcm[i * n:(i + 1) * n].tobytes(), SAMPLE_RATE)
        t = i * FRAME_MS
        if speech and cur is None:
            cur = t
        elif not speech and cur is not None:
            runs.append((cur, t))
            cur = None
    if cur is not None:
        runs.append((cur, (len(pcm) // n) * FRAME_MS))
    return runs


def speech_windows(audio: np.ndarray, words: Sequence[Mapping] = ()) -> list[Window]:
    """Speech windows (≤ WINDOW_MS each, ≥ MIN_WINDOW_MS unless a whole region is shorter) of
    16 kHz mono float32 ``audio``. With ``words`` (ms ``start``/``end``), speech regions are also cut
    in the middle of every inter-word silence ≥ CUT_GAP_MS, so that a window rarely spans a turn
    change that the VAD bridged."""
    regions: list[list[int]] = []
    for s, e in _vad_runs(audio):
        if regions and s - regions[-1][1] < MERGE_GAP_MS:
            regions[-1][1] = e
        else:
            regions.append([s, e])
    cuts = sorted((int(a["end"]) + int(b["start"])) // 2 for a, b in zip(words, words[1:])
                  if int(b["start"]) - int(a["end"]) >= CUT_GAP_MS)
    if cuts:
        split: list[list[int]] = []
        for s, e in regions:
            for c in cuts:
                if s + FRAME_MS < c < e - FRAME_MS:
                    split.append([s, c])
                    s = c
            split.append([s, e])
        regions = split
    windows: list[Window] = []
    for s, e in regions:
        if e - s < 2 * FRAME_MS:  # a click, not speech
            continue
        n = max(1, int(np.ceil((e - s) / WINDOW_MS)))
        step = (e - s) / n  # equal pieces ≤ WINDOW_MS
        if n > 1 and step < MIN_WINDOW_MS:
            n -= 1
            step = (e - s) / n
        for i in range(n):
            windows.append(Window(int(s + i * step), int(s + (i + 1) * step)))
    return windows


def _features(audio: np.ndarray, windows: Sequence[Window]) -> np.ndarray:
    """Standardised MFCC mean/std per window, shape ``(len(windows), 2 * N_MFCC)``."""
    import librosa

    hop = 160  # 10 ms
    mfcc = librosa.feature.mfcc(y=audio.astype(np.float32), sr=SAMPLE_RATE, n_mfcc=N_MFCC,
                                n_fft=512, hop_length=hop, n_mels=40)  # (N_MFCC, frames)
    feats = []
    for w in windows:
        a = w.start * SAMPLE_RATE // 1000 // hop
        b = max(a + 1, w.end * SAMPLE_RATE // 1000 // hop)
        seg = mfcc[:, a:b]
        feats.append(np.concatenate([seg.mean(axis=1), seg.std(axis=1)]))
    x = np.asarray(feats, dtype=np.float64)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return (x - x.mean(axis=0)) / sd


def _spectral(x: np.ndarray, k: int) -> np.ndarray:
    """Spectral clustering of the rows of ``x`` into ``k`` labels (Ng, Jordan & Weiss 2001, as
    scikit-learn runs it) on a k-nearest-neighbour graph, each window linked to ``NEIGHBOUR_SHARE`` of
    the others. On the six Harper Valley calls (mono mix) it labelled 91 % of the words right where
    KMeans on the same statistics labelled 84 % (bench/eval_stt.py's diarization accuracy)."""
    from sklearn.cluster import SpectralClustering

    n = len(x)
    if n <= k:  # each window its own label
        return np.arange(n)
    neighbours = min(n - 1, max(3, round(n * NEIGHBOUR_SHARE)))
    with warnings.catch_warnings():  # a graph in several pieces is fine: the pieces are the speakers
        warnings.simplefilter("ignore", UserWarning)
        return SpectralClustering(n_clusters=k, affinity="nearest_neighbors", n_neighbors=neighbours,
                                  random_state=0).fit_predict(x)


def _cluster(x: np.ndarray, durations: np.ndarray, k_fixed: int | None, k_min: int,
             k_max: int) -> np.ndarray:
    """Cluster labels per window (rows of ``x``; ``durations`` in ms): ``k_fixed`` speakers, or the
    count the module doc's step 3 chooses."""
    from sklearn.metrics import silhouette_score

    n = len(x)
    if k_fixed is not None:
        return _spectral(x, k_fixed) if k_fixed > 1 else np.zeros(n, dtype=int)
    k_low = max(2, k_min)
    best = _spectral(x, k_low)
    if n <= k_low:  # silhouette is defined for 2 <= k < windows only
        return best
    best_score = float(silhouette_score(x, best))
    for k in range(k_low + 1, min(k_max, n - 1) + 1):
        labels = _spectral(x, k)
        score = float(silhouette_score(x, labels))
        share = np.bincount(labels, weights=durations, minlength=k) / durations.sum()
        if score > best_score + K_MARGIN and share.min() >= MIN_SPEAKER_SHARE:
            best, best_score = labels, score
    return best


def _smooth(windows: list[Window]) -> None:
    """Flip single windows whose two touching neighbours agree with each other but not with them."""
    for i in range(1, len(windows) - 1):
        p, w, nx = windows[i - 1], windows[i], windows[i + 1]
        if (p.label == nx.label != w.label and w.start - p.end < SMOOTH_GAP_MS
                and nx.start - w.end < SMOOTH_GAP_MS):
            w.label = p.label


def _label_name(i: int) -> str:
    return string.ascii_uppercase[i] if i < 26 else f"S{i + 1}"


def assign_speakers(audio: np.ndarray, words: Sequence[Mapping], speakers_expected: int | None = None,
                    min_speakers: int | None = None, max_speakers: int | None = None,
                    *, smooth: bool = True) -> list[str]:
    """One speaker label per word ("A", "B", … in order of first appearance).

    ``audio``: 16 kHz mono float32, shape ``(n,)``. ``words``: dicts with integer-ms ``start`` and
    ``end``, in time order. ``speakers_expected`` fixes k; otherwise k is ``max(2, min_speakers)``
    unless the audio supports more, up to ``max_speakers`` (default 6; the rule is in the module
    doc, step 3). Deterministic. Raises ValueError
    for an impossible range (e.g. min > max, values < 1 or > 26).
    """
    if not words:
        return []
    for name, v in (("speakers_expected", speakers_expected), ("min_speakers", min_speakers),
                    ("max_speakers", max_speakers)):
        if v is not None and not (1 <= int(v) <= MAX_SPEAKERS):
            raise ValueError(f"{name} must be between 1 and {MAX_SPEAKERS}, got {v}")
    k_min = int(min_speakers) if min_speakers is not None else 1
    k_max = int(max_speakers) if max_speakers is not None else max(DEFAULT_MAX_SPEAKERS, k_min)
    if k_min > k_max:
        raise ValueError(f"min_speakers ({k_min}) is greater than max_speakers ({k_max})")

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    windows = speech_windows(audio, words)
    if not windows:  # VAD heard nothing: fall back to the words' own spans
        windows = [Window(int(w["start"]), max(int(w["end"]), int(w["start"]) + FRAME_MS)) for w in words]
    # Cluster only windows that hold speech Whisper transcribed: windows without any word are
    # mostly noise, breaths or music, and would otherwise form a "speaker" of their own.
    spans = np.array([(int(w["start"]), int(w["end"])) for w in words])
    voiced = [w for w in windows
              if np.any((spans[:, 0] < w.end) & (spans[:, 1] > w.start))]
    windows = voiced or windows
    if len(windows) == 1 or speakers_expected == 1 or k_max == 1:
        return ["A"] * len(words)

    durations = np.array([w.end - w.start for w in windows])
    labels = _cluster(_features(audio, windows), durations, speakers_expected, k_min, k_max)
    for w, lab in zip(windows, labels):
        w.label = int(lab)
    if smooth:
        _smooth(windows)

    starts = np.array([w.start for w in windows])
    ends = np.array([w.end for w in windows])
    raw: list[int] = []
    for word in words:
        mid = (int(word["start"]) + int(word["end"])) / 2
        inside = np.nonzero((starts <= mid) & (mid < ends))[0]
        if len(inside):
            idx = int(inside[0])
        else:  # nearest window by distance to its span
            dist = np.maximum(starts - mid, 0) + np.maximum(mid - ends, 0)
            idx = int(np.argmin(dist))
        raw.append(windows[idx].label)

    names: dict[int, str] = {}
    for lab in raw:
        if lab not in names:
            names[lab] = _label_name(len(names))
    return [names[lab] for lab in raw]
