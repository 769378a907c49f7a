"""Locating the shared reference fixture and sample media (never copied into the repository).

``../shared/reference/fomm-tiny`` holds a checkpoint in the original PyTorch format and every
module's outputs; ``../shared/data`` holds a real talking-head video and photo. Both are looked
up relative to the repository (and the current directory), or from ``FOMM_REFERENCE_DIR`` /
``FOMM_DATA_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _candidates(env: str, rel: str):
    """The environment variable's folder, then ``<ancestor>/<rel>`` for every ancestor of the
    repository and of the current directory (``../shared`` beside the clone, from the repository
    root, from ``book/`` or from a deeper folder)."""
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


def load_reference(path: str | os.PathLike | None = None) -> dict:
    """All arrays of ``vox-256-tiny-reference.npz`` as a dict of NumPy arrays.

    Raises FileNotFoundError (saying where it looked and how to point at it) when absent.
    """
    import numpy as np

    folder = Path(path) if path is not None else find_reference_dir()
    if folder is None:
        raise FileNotFoundError(
            "The fomm-tiny reference fixture was not found next to the repository "
            "(../shared/reference/fomm-tiny). Set FOMM_REFERENCE_DIR to the folder that holds "
            "vox-256-tiny-reference.npz."
        )
    with np.load(folder / "vox-256-tiny-reference.npz") as f:
        return {k: f[k] for k in f.files}
