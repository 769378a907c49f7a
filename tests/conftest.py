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


@pytest.fixture(scope="session")
def live_assets():
    """``make live-assets`` (npm packages, vendored runtimes, sprites-64 as ONNX, the live
    page's samples); ``None`` when it worked, else the reason it did not (no npm, ...)."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None or shutil.which("npm") is None:
        return "make or npm not found (the live page's assets need Node.js 18+ and npm)"
    result = subprocess.run(
        ["make", "-s", "live-assets"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        return "make live-assets failed: " + (result.stdout + result.stderr)[-2000:]
    return None


@pytest.fixture(scope="session")
def book_html(tmp_path_factory, live_assets):
    """The HTML book (``_build/html`` of a Jupyter Book build into a temporary folder), built
    once for every test that reads it, with the live page's assets where they could be made."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "jupyter-book"),
            "build",
            str(Path(__file__).resolve().parent.parent),
            "--path-output",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "_build" / "html"


@pytest.fixture(autouse=True)
def _seeded():
    """Seed every test: tests are reproducible alone or in any order, and unseeded random ops do
    not fail once a test module has enabled op determinism (which is process-wide)."""
    import keras

    keras.utils.set_random_seed(0)
