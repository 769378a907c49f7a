"""The book's structure: table of contents, notebooks with outputs, set-up cells, launch buttons."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import fomm_tutorial

ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    "01_optical_flow",
    "02_taylor_series",
    "03_coordinate_grids",
    "04_resampler",
    "05_keypoints",
    "06_dense_motion",
    "07_generator",
    "08_losses",
    "09_training_loop",
    "10_animation",
    "11_full_gpu_training",
    "12_export",
]


def _config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ch["file"] for part in toc["parts"] for ch in part["chapters"]]


def test_toc_lists_every_stage_in_book_order():
    assert _toc_files() == [f"book/{s}" for s in STAGES]


def test_launch_buttons_point_at_main():
    cfg = _config()
    assert (
        cfg["repository"]["branch"] == "main"
    )  # the default 'master' makes every Colab link 404
    assert cfg["repository"]["url"] == fomm_tutorial.REPOSITORY_URL
    assert "colab_url" in cfg["launch_buttons"]
    assert (
        cfg["execute"]["execute_notebooks"] == "off"
    )  # the book renders the committed outputs


@pytest.mark.parametrize("stage", STAGES)
def test_chapter_notebook(stage):
    path = ROOT / "book" / f"{stage}.ipynb"
    if not path.exists():
        pytest.fail(
            f"{path.name} is missing: build it with tools/nbbuild.py book/src/{stage}.py"
        )
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    src = ["".join(c["source"]) for c in code]
    # The Colab set-up cell comes first and installs from the same URL as the launch buttons.
    assert "google.colab" in src[0]
    assert (
        re.search(r'REPOSITORY_URL = "([^"]+)"', src[0]).group(1)
        == _config()["repository"]["url"]
    )
    # Committed with outputs from the CPU run, so nbval has something to compare.
    assert all(c.get("execution_count") for c in code), (
        f"{stage}: every code cell must be executed"
    )
    assert any(c["outputs"] for c in code)
    # No stderr in the committed outputs (nbval compares it; TF logs would make it flaky).
    for c in code:
        for o in c["outputs"]:
            assert not (
                o.get("output_type") == "stream" and o.get("name") == "stderr"
            ), (
                f"{stage}: stderr output in cell:\n{''.join(c['source'])[:200]}\n{''.join(o['text'])[:500]}"
            )
            assert o.get("output_type") != "error", (
                f"{stage}: an error output is committed"
            )
    # Every chapter derives with sympy and asserts its code against the derivation.
    joined = "\n".join(src)
    assert "sympy" in joined, f"{stage}: no sympy derivation"
    assert re.search(r"^\s*assert ", joined, re.M), (
        f"{stage}: no check cell with an assert"
    )
    # Chapter sources live beside the notebooks.
    assert (ROOT / "book" / "src" / f"{stage}.py").exists()


def test_cli_help_is_cheap():
    from fomm_tutorial.cli import build_parser

    parser = build_parser()
    for cmd in ("animate", "train", "convert"):
        assert cmd in parser.format_help()
