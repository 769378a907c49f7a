"""Shared fixtures: the reference checkpoint/outputs and the sample media live outside the repo.

They skip with a clear reason where absent, but fail when the ``CI`` environment variable is set
(CI always has ``../shared`` beside the clone).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fomm_tutorial.reference import find_data_dir, find_reference_dir  # noqa: E402


def _missing(what: str, hint: str):
    msg = f"{what} not found: {hint}"
    if os.environ.get("CI"):
        pytest.fail(msg + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def reference_dir():
    """Folder of the fomm-tiny reference fixture (checkpoint, config, outputs, VGG19 weights)."""
    path = find_reference_dir()
    if path is None:
        _missing(
            "reference fixture ../shared/reference/fomm-tiny",
            "set FOMM_REFERENCE_DIR to the folder holding vox-256-tiny-reference.npz",
        )
    return path


@pytest.fixture(scope="session")
def reference(reference_dir):
    """All arrays of vox-256-tiny-reference.npz (dict of NumPy arrays)."""
    with np.load(reference_dir / "vox-256-tiny-reference.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def data_dir():
    """Folder of the shared real media (driving.mp4, source.png)."""
    path = find_data_dir()
    if path is None:
        _missing(
            "sample media ../shared/data",
            "set FOMM_DATA_DIR to the folder holding driving.mp4",
        )
    return path


@pytest.fixture(autouse=True)
def _seeded():
    """Seed every test: tests are reproducible alone or in any order, and unseeded random ops do
    not fail once a test module has enabled op determinism (which is process-wide)."""
    import keras

    keras.utils.set_random_seed(0)
