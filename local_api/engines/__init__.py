"""Offline engines behind the local AssemblyAI-compatible server (no network, no torch).

* :mod:`.models`: model registry, sha256-verified weights from registry packages.
* :mod:`.pipeline`: ``transcribe_file`` (AssemblyAI result fields), ``sentences_of``, ``paragraphs_of``.
* :mod:`.stt` (faster-whisper), :mod:`.diarization` (webrtcvad + MFCC + KMeans),
  :mod:`.sentences`, :mod:`.sentiment` (VADER).
* :mod:`.llm`: ``get_llm(name).chat(...)`` with llama-cpp-python.

Submodules import their heavy dependencies lazily; importing this package is cheap.
"""
