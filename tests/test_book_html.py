"""The rendered book as a reader sees it: build the HTML with Jupyter Book, check every chapter.

The HTML renders the committed notebook outputs, so these checks look at what a reader of the
web page gets: typeset math instead of sympy reprs, no test plumbing, light pages, chapters
linked to each other, and a Summary and Exercises at the end of each.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

bs4 = pytest.importorskip("bs4")

ROOT = Path(__file__).resolve().parent.parent
MAX_PAGE_BYTES = 2 * 1024 * 1024
# What sympy objects look like when printed instead of typeset (str/repr/tolist).
SYMPY_REPR = re.compile(
    r"\b(Derivative|Eq|Matrix|ImmutableMatrix|Symbol|Function|Subs|Integral|Piecewise)\("
    r"|\[\[[^\]]*\b[a-zA-Z_]\w*\*{1,2}\w"
)


def _chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [Path(ch["file"]).name for part in toc["parts"] for ch in part["chapters"]]


CHAPTERS = _chapters()


@pytest.fixture(scope="module")
def html_dir(book_html):
    """The book built once for the session (conftest.book_html; tests/test_browser.py too)."""
    return book_html


def _page(html_dir, chapter):
    path = html_dir / "book" / f"{chapter}.html"
    assert path.exists(), f"{path.name} was not built"
    return path, bs4.BeautifulSoup(path.read_text(), "html.parser")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_page_weight(html_dir, chapter):
    path, soup = _page(html_dir, chapter)
    total = path.stat().st_size
    for img in soup.select("article img[src]"):
        src = img["src"]
        if not src.startswith("data:"):
            total += (path.parent / src).stat().st_size
    assert total <= MAX_PAGE_BYTES, (
        f"{chapter}: {total / 2**20:.1f} MB (HTML plus images), at most 2 MB"
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_outputs_read_like_a_textbook(html_dir, chapter):
    _, soup = _page(html_dir, chapter)
    text = soup.select_one("article").get_text()
    assert "NBVAL" not in text, f"{chapter}: nbval control visible; use cell tags"
    assert "getsource" not in text, f"{chapter}: a getsource dump; use show_source"
    for output in soup.select("div.cell_output"):
        # show_source prints code, not an output
        for code in output.select("div.highlight-python"):
            code.decompose()
        out = output.get_text()
        match = SYMPY_REPR.search(out)
        assert match is None, (
            f"{chapter}: raw sympy output {out[:200]!r}; use show_math"
        )
        assert not re.search(r"<function [\w.]+", out), f"{chapter}: a function repr"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_structure(html_dir, chapter):
    _, soup = _page(html_dir, chapter)
    others = {f"{c}.html" for c in CHAPTERS if c != chapter}
    links = {a["href"].split("#")[0].split("/")[-1] for a in soup.select("a[href]")}
    assert links & others, f"{chapter}: links no other chapter"
    headings = [
        h.get_text(" ", strip=True).rstrip("#").strip() for h in soup.select("h2")
    ]
    assert any("Summary" in h for h in headings), f"{chapter}: no Summary section"
    assert any("Exercises" in h for h in headings), f"{chapter}: no Exercises section"
    number = int(chapter[:2])
    numbered = [h.split()[0] for h in headings if re.match(r"\d+\.\d+\b", h)]
    expected = [f"{number}.{k}" for k in range(1, len(numbered) + 1)]
    assert numbered == expected, f"{chapter}: sections numbered {numbered}"
    if re.search(r"\binteract\(", soup.select_one("article").get_text()):
        assert "Live widget" in soup.get_text(), f"{chapter}: a widget without its note"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_dead_widgets(html_dir, chapter):
    """Without a kernel a saved ipywidget is a control that looks live and does nothing.

    The HTML shows each widget's figure as a ``static_slider`` instead: frames for a few
    settings and the script that makes the control (tools/nbbuild.py strips widget state).
    """
    path, soup = _page(html_dir, chapter)
    views = soup.select('script[type="application/vnd.jupyter.widget-view+json"]')
    assert not views, f"{chapter}: {len(views)} saved widget(s); rebuild with nbbuild"
    assert "widget-state+json" not in path.read_text(), f"{chapter}: saved widget state"
    for figure in soup.select(".fomm-static-figure"):
        assert len(figure.select("img.fomm-frame")) >= 2 and figure.select("script")
        assert not figure.select("input, button"), "controls are made by the script"
    if re.search(r"\binteract\(", soup.select_one("article").get_text()):
        assert soup.select(".fomm-static-figure"), (
            f"{chapter}: a widget, no static figure"
        )
