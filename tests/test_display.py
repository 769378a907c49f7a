"""The book's presentation helpers: typeset math, whole package code, wrapped image grids."""

import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import io  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sympy as sp  # noqa: E402
from IPython.display import Markdown, Math  # noqa: E402

from fomm_tutorial import display  # noqa: E402
from fomm_tutorial.grids import make_coordinate_grid  # noqa: E402


@pytest.fixture
def shown(monkeypatch):
    """What the helpers pass to IPython's display."""
    objects = []
    monkeypatch.setattr(
        "IPython.display.display", lambda obj, **kw: objects.append(obj)
    )
    return objects


def test_math_is_latex_not_a_repr(shown):
    x = sp.Symbol("x")
    display.show_math(sp.Derivative(sp.Function("I")(x), x), "=", sp.cos(x), label="1")
    display.show_equations([(x, x**2), ("", r"\approx", x + 1)])
    assert all(isinstance(o, Math) for o in shown)
    assert (
        shown[0].data
        == r"\frac{d}{d x} I{\left(x \right)} = \cos{\left(x \right)} \qquad (1)"
    )
    assert shown[1].data == r"\begin{aligned}x &= x^{2} \\  &\approx x + 1\end{aligned}"
    assert "Derivative(" not in shown[0].data


def test_source_is_whole_and_highlighted(shown):
    display.show_source(make_coordinate_grid)
    (md,) = shown
    assert isinstance(md, Markdown)
    assert md.data.startswith(
        "```python\n# fomm_tutorial.grids\ndef make_coordinate_grid("
    )
    assert md.data.rstrip().endswith("```")


def test_image_grid_wraps_rows():
    assert display.grid_shape(3) == (1, 3)
    rows, cols = display.grid_shape(12)
    assert rows * cols >= 12 and display.BOOK_WIDTH / cols >= display.MIN_PANEL
    fig = display.image_grid(
        [np.zeros((8, 8, 3))] * 12, titles=[f"${i}$" for i in range(12)]
    )
    assert fig.get_size_inches()[0] == pytest.approx(display.BOOK_WIDTH)
    assert sum(ax.get_visible() for ax in fig.axes) == 12


def test_show_animation_enlarges_by_whole_pixels_and_labels_panels(shown):
    from PIL import Image

    frames = np.random.default_rng(0).random((4, 8, 20, 3)).astype(np.float32)
    display.show_animation(frames, fps=5, scale=3, titles=["source", "driving <D>"])
    (out,) = shown
    markup = out["text/html"]
    assert 'width="60"' in markup and "image-rendering: pixelated" in markup
    assert "repeat(2, minmax(0, 1fr))" in markup and "driving &lt;D&gt;" in markup
    data = markup.split("data:image/gif;base64,")[1].split('"')[0]
    gif = Image.open(io.BytesIO(base64.b64decode(data)))
    assert gif.size == (20, 8) and gif.n_frames == 4  # the GIF keeps the frames' size
    with pytest.raises(ValueError, match="whole number"):
        display.show_animation(frames, scale=1.5)


def test_show_animation_titles_keep_a_margin_inside_their_panels(shown):
    """Long titles over narrow panels wrap inside their own column, never touching."""
    import re

    frames = np.zeros((2, 8, 3 * 8, 3), np.float32)
    titles = ["driving (held out)", "frame 0, absolute", "new person, relative"]
    display.show_animation(frames, titles=titles)
    markup = shown[0]["text/html"]
    # equal columns that a long word cannot widen (1fr alone has a min-content floor)
    assert "grid-template-columns: repeat(3, minmax(0, 1fr))" in markup
    cells = re.findall(r'<div style="([^"]*)">([^<]*)</div>', markup)
    assert [text for _, text in cells] == titles
    for style, _ in cells:
        assert "padding: 0 0.4em" in style and "overflow-wrap: break-word" in style


def _figure(value):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, value])
    ax.set_title(f"${value}$")
    return fig


def test_static_slider_embeds_every_frame_and_no_dead_control(shown):
    import matplotlib.pyplot as plt

    plt.close("all")
    display.static_slider(
        {f"{v}°": _figure(v) for v in (1, 2, 3)}, "angle", title="T", initial="2°"
    )
    (bundle,) = shown
    body = bundle["text/html"]
    assert bundle["text/plain"] == "[interactive figure: angle, 3 settings]"
    assert plt.get_fignums() == []  # rendered into the page, not shown again
    assert body.count('src="data:image/png;base64,') == 3
    assert body.count(" hidden") == 2  # only the initial frame shows without scripts
    assert 'data-index="1"' in body and 'data-label="3°"' in body
    # The controls are made by the script: where it does not run, none looks live.
    assert "<input" not in body and "<button" not in body and "<script>" in body
    assert display.STATIC_FIGURE_CLASS in body


def test_static_slider_rejects_bad_settings():
    one = {"a": np.zeros((4, 4, 3))}
    with pytest.raises(ValueError, match="2 to 12 frames"):
        display.static_slider(one, "x")
    two = {"a": np.zeros((4, 4, 3)), "b": np.ones((4, 4))}
    with pytest.raises(ValueError, match='"slider" or "buttons"'):
        display.static_slider(two, "x", control="dropdown")
    with pytest.raises(ValueError, match="not one of the settings"):
        display.static_slider(two, "x", initial="c")
    with pytest.raises(ValueError, match=r"shape \(4, 4, 2\)"):
        display.static_slider({"a": np.zeros((4, 4, 2)), "b": two["b"]}, "x")


@pytest.mark.parametrize("control", ["slider", "buttons"])
def test_static_slider_responds_in_chromium(shown, control, tmp_path):
    """The script builds the control, and moving it shows another frame."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    frames = {str(v): np.full((4, 4, 3), v / 4) for v in range(4)}
    display.static_slider(frames, "v", control=control)
    move = (
        'var c = document.querySelector("input");'
        ' c.value = 2; c.dispatchEvent(new Event("input"));'
        if control == "slider"
        else 'document.querySelectorAll("button")[2].click();'
    )
    page = tmp_path / "page.html"
    page.write_text(
        f"<html><body>{shown[0]['text/html']}<script>{move}</script></body></html>"
    )
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    soup = pytest.importorskip("bs4").BeautifulSoup(dom, "html.parser")
    root = soup.select_one("." + display.STATIC_FIGURE_CLASS)
    assert root["data-ready"] == "1" and root["data-index"] == "2"
    visible = [
        img["data-label"] for img in root.select("img") if not img.has_attr("hidden")
    ]
    assert visible == ["2"]
    assert root.select("input[type=range]" if control == "slider" else "button")


def test_nbbuild_drops_saved_widgets():
    """Saved ipywidgets would render as live-looking controls that do nothing."""
    import importlib.util

    import nbformat

    path = Path(__file__).resolve().parent.parent / "tools" / "nbbuild.py"
    spec = importlib.util.spec_from_file_location("nbbuild", path)
    nbbuild = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nbbuild)
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    cell = nbformat.v4.new_code_cell("interact(f)")
    view = {nbbuild.WIDGET_VIEW: {"model_id": "1"}, "text/plain": "interactive(...)"}
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=view),
        nbformat.v4.new_output("stream", name="stdout", text="kept\n"),
    ]
    nb.cells = [cell]
    nbbuild.strip_widgets(nb)
    assert "widgets" not in nb.metadata
    assert [o.output_type for o in cell.outputs] == ["stream"]


# The modules whose code chapters 1-6 print with show_source: every line (docstrings and
# comments too) fits the 88 columns that the book's code blocks show without scrolling.
SHOWN_MODULES = [
    "grids",
    "resampler",
    "keypoints",
    "dense_motion",
    "taylor",
    "optical_flow",
    "blocks",
    "reference",
    "display",
]


@pytest.mark.parametrize("module", SHOWN_MODULES)
def test_shown_code_fits_88_columns(module):
    path = Path(display.__file__).with_name(f"{module}.py")
    long = [
        f"{path.name}:{number}: {len(line)} characters"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > 88
    ]
    assert not long, "lines over 88 characters (wrap them):\n" + "\n".join(long)


def test_book_css_fits_88_characters_of_code():
    """13 px code: 88 characters of a 0.6 em monospace font are ~690 px of the column."""
    import re

    css = (Path(__file__).resolve().parent.parent / "_static" / "book.css").read_text()
    rule = re.search(r"div\.highlight pre,\s*div\.cell_output pre\s*\{([^}]*)\}", css)
    size = re.search(r"font-size:\s*([\d.]+)rem", rule.group(1))
    assert 0.8 <= float(size.group(1)) <= 0.85, (
        "code at 12.8-13.6 px against 16 px prose"
    )
    assert "--pst-sidebar-secondary" in css  # the room those 690 px need at 1280 px
