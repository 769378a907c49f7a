"""The built book in a real browser: Debian's Chromium, driven by puppeteer-core, offline.

The book (conftest ``book_html``, built once per session with the live page's assets) is served
on 127.0.0.1 at a free port; ``tools/browser.mjs`` blocks every request to another host, so
these checks see what a reader without network sees:

- the live page (``live/index.html``, its URL contract) animates held-out sprites as
  :func:`fomm_tutorial.animation.make_animation` does with sprites-64 (mean |diff| <= 1/255);
- opened from ``file://`` it says that it needs a local server;
- math is typeset by the vendored MathJax (no raw TeX delimiters left);
- every interactive static figure shows another image for each setting of its control.

Skips with the reason where Chromium, Node.js or the live page's assets are missing; fails
instead when ``CI`` is set.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
sys.path.insert(0, str(ROOT / "tools"))
from live_samples import unstrip  # noqa: E402

# Held-out creature C animated by held-out creature A: their sizes differ (adapted scale
# 0.93), so the three settings give three different results.
SOURCE, DRIVING = "samples/source-2.png", "samples/driving-0.png"


def _missing(what: str):
    if os.environ.get("CI"):
        pytest.fail(what + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def html(book_html, live_assets):
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found: apt-get install chromium (or set CHROMIUM)")
    if shutil.which("node") is None:
        _missing("node not found: install Node.js 18+ and npm")
    if live_assets is not None:
        _missing(live_assets)
    return book_html


@pytest.fixture(scope="module")
def server(html):
    """``http://127.0.0.1:PORT`` serving the built book (a free port, quiet, threaded)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def browser(*args) -> dict:
    """Run ``node tools/browser.mjs ARGS`` and return the JSON it prints."""
    result = subprocess.run(
        ["node", str(ROOT / "tools" / "browser.mjs"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, CHROMIUM=CHROMIUM),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sprites_64():
    from fomm_tutorial.pretrained import load_pretrained

    return load_pretrained("sprites-64")


@pytest.mark.parametrize(
    "relative, adapt_scale",
    [(1, 1), (1, 0), (0, 0)],
    ids=["relative", "unscaled", "absolute"],
)
def test_live_page_equals_make_animation(
    html, server, sprites_64, tmp_path, relative, adapt_scale
):
    from fomm_tutorial import media
    from fomm_tutorial.animation import make_animation

    out = tmp_path / "result.png"
    query = f"source={SOURCE}&driving={DRIVING}&relative={relative}&adapt_scale={adapt_scale}"
    page = browser("live", f"{server}/live/?{query}", out)
    assert page["status"] == "done", page
    assert page["fps"] > 0, page
    assert not page["consoleErrors"], page["consoleErrors"]

    live = html / "live"
    source = media.read_image(live / SOURCE)
    height, width = source.shape[:2]
    driving = unstrip(media.read_image(live / DRIVING), width)
    expected = make_animation(
        source,
        driving,
        sprites_64["kp_detector"],
        sprites_64["generator"],
        relative=bool(relative),
        adapt_scale=bool(adapt_scale),
        progress=False,
    )
    result = unstrip(media.read_image(out), width)
    assert result.shape == expected.shape
    # 8-bit rounding alone gives ~0.25 / 255
    diff = float(np.abs(result - expected).mean())
    assert diff <= 1 / 255, f"mean |page - make_animation| = {diff * 255:.2f} / 255"


def test_live_page_from_a_file_says_it_needs_a_server(html):
    page = browser("status", (html / "live" / "index.html").as_uri())
    assert page["status"] == "needs-server", page
    assert "needs a local server" in page["text"] and "make serve" in page["text"]


def _chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [
        ch["file"] for part in toc["parts"] for ch in part["chapters"]
    ]


def test_math_is_typeset_offline(html, server):
    page = browser("math", f"{server}/book/02_taylor_series.html")
    assert page["raw"] == 0, f"raw TeX left on the page: {page['rawSample']!r}"
    assert page["containers"] > 10 and page["errors"] == 0, page
    assert not [u for u in page["blocked"] if "mathjax" in u.lower()], page["blocked"]


def test_interactive_figures_respond(html, server):
    chapters = _chapters()
    result = browser("figures", *(f"{server}/{chapter}.html" for chapter in chapters))
    count = 0
    for chapter, page in zip(chapters, result["pages"]):
        for figure in page["figures"]:
            count += 1
            where = f"{chapter}: figure {figure['id']}"
            assert figure["controls"] >= 1, (
                f"{where} has no control (did its script run?)"
            )
            assert figure["empty"] == 0, f"{where} shows no image for some setting"
            assert figure["distinct"] == figure["states"], (
                f"{where}: {figure['states']} settings show only "
                f"{figure['distinct']} different images"
            )
    assert count, (
        "no interactive figure in the book (fomm_tutorial.display.static_slider)"
    )


SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc=\"([^\"]+)\"")


def test_runtime_and_models_load_only_on_the_live_page(html):
    for chapter in _chapters():
        scripts = SCRIPT_SRC.findall((html / f"{chapter}.html").read_text())
        assert not [s for s in scripts if Path(s).name.startswith("ort.")], (
            chapter,
            scripts,
        )
        mathjax = [s for s in scripts if "mathjax" in s.lower()]
        # the vendored copy (relative to the page), not a CDN's
        assert all("://" not in s for s in mathjax), (chapter, mathjax)
    scripts = SCRIPT_SRC.findall((html / "live" / "index.html").read_text())
    assert "vendor/ort/ort.wasm.min.js" in scripts
    assert (html / "live" / "vendor" / "ort" / "ort-wasm-simd-threaded.wasm").is_file()
