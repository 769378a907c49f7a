"""Locating the shared reference fixture and the sample media (never copied into the
repository); :func:`sample_media` also downloads the media once where they are absent.

``../shared/reference/fomm-tiny`` holds a checkpoint in the original PyTorch format and
every module's outputs; ``../shared/data`` holds a real talking-head video and photo.
Both are looked up relative to the repository (and the current directory), or from
``FOMM_REFERENCE_DIR`` / ``FOMM_DATA_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _candidates(env: str, rel: str):
    """The environment variable's folder, then ``<ancestor>/<rel>`` for every ancestor
    of the repository and of the current directory (``../shared`` beside the clone, from
    the repository root, from ``book/`` or from a deeper folder)."""
    if os.environ.get(env):
        yield Path(os.environ[env])
    for base in (_REPO, Path.cwd()):
        for ancestor in base.parents:
            yield ancestor / rel


def find_reference_dir() -> Path | None:
    """The fomm-tiny fixture folder, or None where it is absent."""
    for p in _candidates("FOMM_REFERENCE_DIR", "shared/reference/fomm-tiny"):
        if (p / "vox-256-tiny-reference.npz").exists():
            return p
    return None


def find_data_dir() -> Path | None:
    """The shared sample-media folder (``driving.mp4``, ``source.png``), or None."""
    for p in _candidates("FOMM_DATA_DIR", "shared/data"):
        if (p / "driving.mp4").exists():
            return p
    return None


# The sample media come from the example folder of lshug/first-order-model-tf (MIT
# licence, copyright 2021 Levan Shugliashvili), pinned to one commit and checked by
# SHA-256: a download that differs by one byte is refused rather than animated.
SAMPLE_MEDIA_URL = (
    "https://raw.githubusercontent.com/lshug/first-order-model-tf/"
    "f19d4278178ecc6cba49592d5ff6b653b3387bc4/example/{name}"
)
SAMPLE_MEDIA_SHA256 = {
    "driving.mp4": "86add71e988c56537de7a0008e6f4c1c6ea645a63fdc20fe4922ce97ea4900d2",
    "source.png": "9354af967781a7eac78f0df340901f451589e1423fd8da32d7e3a700a58ca3a7",
}


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fomm_tutorial" / "sample-media"


def sample_media(name: str) -> Path:
    """The path of a sample media file: ``"driving.mp4"`` (a real talking-head clip, 265
    frames, 256 x 256, 30 fps) or ``"source.png"`` (a face photograph, 402 x 402 RGBA).

    Looks in the local sample-media folder (``FOMM_DATA_DIR`` or ``../shared/data``),
    then in the cache (``~/.cache/fomm_tutorial/sample-media``), else downloads the file
    once from the repository it comes from (pinned commit, SHA-256 checked, written
    atomically). Raises ``FileNotFoundError`` in one line when none of these works (e.g.
    offline).
    """
    if name not in SAMPLE_MEDIA_SHA256:
        raise ValueError(
            f"unknown sample media {name!r}: use one of {sorted(SAMPLE_MEDIA_SHA256)}"
        )
    local = find_data_dir()
    if local is not None and (local / name).exists():
        return local / name
    cached = _cache_dir() / name
    if cached.exists() and _sha256(cached) == SAMPLE_MEDIA_SHA256[name]:
        return cached
    import urllib.request

    url = SAMPLE_MEDIA_URL.format(name=name)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{name}.{os.getpid()}.part")
    try:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                tmp.write_bytes(response.read())
        except OSError as e:  # URLError (offline, 404) is an OSError
            raise FileNotFoundError(
                f"sample media {name!r} not found locally and not downloadable from "
                f"{url} ({getattr(e, 'reason', e)}); set FOMM_DATA_DIR to a folder "
                "that holds it"
            ) from None
        digest = _sha256(tmp)
        if digest != SAMPLE_MEDIA_SHA256[name]:
            raise FileNotFoundError(
                f"{url}: downloaded file has SHA-256 {digest[:12]}..., expected "
                f"{SAMPLE_MEDIA_SHA256[name][:12]}...; not used (set FOMM_DATA_DIR to "
                "a folder that holds the sample media)"
            )
        os.replace(tmp, cached)
    finally:
        tmp.unlink(missing_ok=True)
    return cached


def load_reference(path: str | os.PathLike | None = None) -> dict:
    """All arrays of ``vox-256-tiny-reference.npz`` as a dict of NumPy arrays.

    Raises FileNotFoundError (saying where it looked and how to point at it) when
    absent.
    """
    import numpy as np

    folder = Path(path) if path is not None else find_reference_dir()
    if folder is None:
        raise FileNotFoundError(
            "The fomm-tiny reference fixture was not found next to the repository "
            "(../shared/reference/fomm-tiny). Set FOMM_REFERENCE_DIR to the folder "
            "that holds vox-256-tiny-reference.npz."
        )
    with np.load(folder / "vox-256-tiny-reference.npz") as f:
        return {k: f[k] for k in f.files}
