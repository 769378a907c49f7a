"""How the book shows things: typeset math, highlighted package code, one figure style.

Every chapter imports this module (it holds no model code). The helpers render the same
way in the two places a reader meets a chapter: the HTML book built by Jupyter Book
(which renders the committed outputs) and a live notebook on Colab or Jupyter.

- :func:`show_math` / :func:`show_equations`: sympy results as typeset math
  (``text/latex``), never a sympy repr.
- :func:`show_source`: a package function, class or method, whole and highlighted, read
  from the installed package at run time (so it is in sync with the package by
  construction).
- :func:`use_book_style` and :func:`image_grid`: one figure style, legible at the book's
  content width (about 700 px): 7 inches at 100 dpi, text at least 9 pt.
- :func:`show_animation`: frames as an embedded GIF written by
  :mod:`fomm_tutorial.media`. Small frames are enlarged by whole pixels and panels
  labelled (``scale``, ``titles``).
- :func:`static_slider`: a widget's figure precomputed for a handful of settings behind
  a slider or buttons, a few lines of inline JavaScript: it responds in the static HTML
  book (no kernel) as in Jupyter and Colab.
"""

from __future__ import annotations

import base64
import hashlib
import html
import inspect
import io
import json
import math
import tempfile
import textwrap
from pathlib import Path

import numpy as np

#: Width of the book's content column in inches at :data:`BOOK_DPI` (about 700 px).
BOOK_WIDTH = 7.0
BOOK_DPI = 100
#: Narrowest panel of a small-multiples figure, in inches (about 120 px).
MIN_PANEL = 1.25

#: The matplotlib rcParams every chapter uses (applied by :func:`use_book_style`).
BOOK_STYLE = {
    "figure.figsize": (BOOK_WIDTH, 3.0),
    "figure.dpi": BOOK_DPI,
    "savefig.dpi": BOOK_DPI,
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "nearest",
    "mathtext.fontset": "cm",
}


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib (call once, in a chapter's import
    cell)."""
    import matplotlib as mpl

    mpl.rcParams.update(BOOK_STYLE)


def latex(expr) -> str:
    """LaTeX for a sympy expression or matrix, or a string passed through unchanged."""
    if isinstance(expr, str):
        return expr
    import sympy as sp

    return sp.latex(expr)


def show_math(*parts, label: str | None = None):
    """Display one equation as typeset math: ``show_math(lhs, "=", rhs)``.

    Each part is a sympy object (converted with ``sympy.latex``) or a LaTeX string;
    parts are joined with spaces. ``label`` puts ``(label)`` on the right, as the paper
    numbers its equations (as text: Sphinx wraps multi-line math in ``split``, where
    ``\\tag`` fails).
    """
    from IPython.display import Math, display

    body = " ".join(latex(p) for p in parts)
    display(Math(body + _label(label)))


def show_equations(rows, label: str | None = None):
    """Display several equations aligned at their relation sign.

    ``rows`` is a list of ``(lhs, rhs)`` (related by ``=``) or ``(lhs, relation, rhs)``
    with a LaTeX relation such as ``r"\\approx"``. Use it for long results split over
    lines (one row per line) and for a derivation's steps. An ``lhs`` of ``""``
    continues the previous line.
    """
    from IPython.display import Math, display

    lines = []
    for row in rows:
        lhs, relation, rhs = row if len(row) == 3 else (row[0], "=", row[1])
        lines.append(f"{latex(lhs)} &{relation} {latex(rhs)}")
    body = r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"
    display(Math(body + _label(label)))


def _label(label) -> str:
    return "" if label is None else rf" \qquad ({label})"


def show_source(*objects):
    """Display the source of package functions, classes or methods, whole and
    highlighted.

    The code is read from the installed package with :func:`inspect.getsource` and shown
    as a Markdown code block: Jupyter highlights it, and Jupyter Book renders it like
    the book's own code cells. Several objects are shown one after the other in one
    output.
    """
    from IPython.display import Markdown, display

    blocks = []
    for obj in objects:
        module = inspect.getmodule(obj)
        where = module.__name__ if module is not None else ""
        code = textwrap.dedent(inspect.getsource(obj)).rstrip()
        blocks.append(f"```python\n# {where}\n{code}\n```")
    display(Markdown("\n\n".join(blocks)))


def grid_shape(n: int, ncols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``n`` panels, at most as many columns as fit at
    :data:`MIN_PANEL`."""
    max_cols = int(BOOK_WIDTH // MIN_PANEL)
    ncols = min(n, ncols or max_cols, max_cols)
    return math.ceil(n / ncols), ncols


def panels(n: int, ncols: int | None = None, height: float | None = None, **kwargs):
    """A figure of ``n`` panels wrapped into rows at the book's width: ``(fig, axes)``.

    ``axes`` is a flat list of the first ``n`` axes (the unused ones of the last row are
    hidden). ``height`` is each row's height in inches (default: square panels).
    """
    import matplotlib.pyplot as plt

    rows, cols = grid_shape(n, ncols)
    width = BOOK_WIDTH / cols
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(BOOK_WIDTH, rows * (height or width)),
        squeeze=False,
        **kwargs,
    )
    axes = list(axes.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def image_grid(images, titles=None, ncols: int | None = None, **imshow_kwargs):
    """Show images (``(H, W)`` or ``(H, W, 3)`` arrays) as small multiples; returns the
    figure.

    Titles may use mathtext (``"$p^S$"``). Panels wrap into rows so that none is
    narrower than :data:`MIN_PANEL` inches.
    """
    images = list(images)
    fig, axes = panels(len(images), ncols)
    for i, (ax, image) in enumerate(zip(axes, images)):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim == 3:
            image = np.clip(image, 0.0, 1.0)
        ax.imshow(image, **imshow_kwargs)
        ax.set_axis_off()  # no frame: the book style keeps only the left/bottom spines
        if titles is not None:
            ax.set_title(titles[i])
    return fig


def show_animation(
    frames,
    fps: float = 10,
    width: int | None = None,
    scale: int = 1,
    titles=None,
):
    """Display frames ``(T, H, W, 3)`` in [0, 1] as an embedded looping GIF.

    The GIF is written by :func:`fomm_tutorial.media.write_video` (the package's one
    media writer) and embedded in the notebook, so the HTML book shows it without a
    kernel and without JavaScript. ``width`` is the display width in pixels (default:
    the frames' own times ``scale``). ``scale``, a whole number, enlarges small frames
    by whole pixels in the browser (``image-rendering: pixelated``: sharp, and the GIF
    keeps its own size and weight). ``titles`` labels panels of equal width laid side by
    side in the frames (as :func:`fomm_tutorial.visualization.side_by_side` makes them),
    one title per panel, in a row of text above the animation; each title stays inside
    its panel's width (a margin on both sides, wrapped onto more lines if longer).
    """
    from IPython.display import Image, display

    from fomm_tutorial.media import write_video

    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a whole number >= 1, got {scale!r}")
    frames = np.asarray(frames)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "animation.gif"
        write_video(path, frames, fps=fps)
        data = path.read_bytes()
    shown = width or frames.shape[2] * int(scale)
    if scale == 1 and titles is None:
        display(Image(data=data, format="gif", width=shown))
        return
    header = ""
    if titles is not None:
        titles = [str(t) for t in titles]
        if not titles:
            raise ValueError("titles must name at least one panel")
        # Each title keeps a margin inside its panel's column and wraps there, bottom
        # aligned, so that neighbouring titles never run into each other.
        cell = "padding: 0 0.4em; overflow-wrap: break-word; align-self: end;"
        cells = "".join(f'<div style="{cell}">{html.escape(t)}</div>' for t in titles)
        header = (
            f'<div style="display: grid; grid-template-columns: repeat({len(titles)}, '
            "minmax(0, 1fr)); text-align: center; font-size: 0.9em; line-height: 1.25; "
            f'margin-bottom: 0.2em;">{cells}</div>'
        )
    alt = " | ".join(titles) if titles else "animation"
    image = (
        f'<img src="data:image/gif;base64,{base64.b64encode(data).decode()}" '
        f'alt="{html.escape(alt)}" width="{shown}" '
        'style="image-rendering: pixelated; max-width: 100%; height: auto;">'
    )
    body = (
        f'<div class="fomm-animation" style="width: {shown}px; max-width: 100%;">'
        f"{header}{image}</div>"
    )
    plain = f"[animation: {len(frames)} frames{': ' + alt if titles else ''}]"
    display({"text/html": body, "text/plain": plain}, raw=True)


# : Class of the ``<div>`` that :func:`static_slider` writes (the browser tests look for
# it).
STATIC_FIGURE_CLASS = "fomm-static-figure"
#: Most frames one static figure may hold (each chapter page stays under 2 MB).
MAX_FRAMES = 12

# Builds the control once the figure is in the page: Jupyter Book runs the script where
# it stands; Jupyter may run it before its output is attached, hence the lookup by id
# and retry. Until it runs (or where scripts are blocked) the reader sees the first
# frame and its label as plain text: no control that looks live and does nothing.
_SLIDER_JS = """(function () {  // fomm_tutorial.display.static_slider
  var script = document.currentScript, tries = 0;
  (function setUp() {
    var root = (script && script.closest && script.closest(".%(cls)s"))
      || document.getElementById("%(id)s");
    if (!root) { if (tries++ < 200) setTimeout(setUp, 50); return; }
    if (root.dataset.ready) return;
    root.dataset.ready = "1";
    var frames = root.querySelectorAll("img.fomm-frame"), buttons = [];
    var box = root.querySelector(".fomm-control");
    var value = root.querySelector(".fomm-value");
    function show(i) {
      frames.forEach(function (f, j) {
        f.hidden = j !== i; f.style.display = j === i ? "" : "none"; });
      buttons.forEach(function (b, j) { b.setAttribute("aria-pressed", j === i);
        b.style.fontWeight = j === i ? "bold" : "normal"; });
      value.textContent = frames[i].dataset.label;
      root.dataset.index = i;
    }
    if ("%(control)s" === "slider") {
      var input = document.createElement("input");
      input.type = "range"; input.min = 0; input.max = frames.length - 1;
      input.value = root.dataset.index; input.setAttribute("aria-label", %(label)s);
      input.style.margin = "0 0.6em"; input.style.verticalAlign = "middle";
      input.oninput = function () { show(+input.value); };
      box.insertBefore(input, value);
    } else {
      value.hidden = true;
      frames.forEach(function (f, j) {
        var b = document.createElement("button");
        b.type = "button"; b.textContent = f.dataset.label; b.style.margin = "0 0.3em";
        b.onclick = function () { show(j); };
        buttons.push(box.appendChild(b));
      });
    }
    show(+root.dataset.index);
  })();
})();"""


def _frame_png(frame, colors: int | None) -> bytes:
    """One frame as PNG bytes: a matplotlib figure (rendered at its dpi, then closed) or
    an ``(H, W)`` / ``(H, W, 3)`` image in [0, 1] (or uint8). ``colors`` quantises to a
    palette (PNG of plots and photographs shrinks about 3x at 256 colours,
    invisibly)."""
    from PIL import Image

    if hasattr(frame, "savefig"):
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        frame.savefig(buffer, format="png", dpi=frame.dpi)
        plt.close(frame)  # shown here, not again at the end of the cell
        image = Image.open(buffer).convert("RGB")
    else:
        array = np.asarray(frame)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
            raise ValueError(
                f"a frame must be a matplotlib figure or an (H, W) or (H, W, 3) image, "
                f"got an array of shape {array.shape}"
            )
        if array.dtype != np.uint8:
            array = np.round(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8)
        image = Image.fromarray(array)
    if colors is not None:
        image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=0)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def static_slider(
    frames,
    label: str,
    title: str | None = None,
    control: str = "slider",
    initial=None,
    width: int | None = None,
    colors: int | None = 256,
):
    """Display a figure precomputed for a few settings behind a slider or buttons.

    The interactive figure of the HTML book, which has no kernel (the distill.pub way):
    ``frames`` maps each setting's label (``"rotation 10°"``, ``0.01``) to its frame, a
    matplotlib figure (closed once rendered) or an ``(H, W[, 3])`` image in [0, 1]; keep
    2-12 settings (each frame is a PNG of tens of kB in the page). The output is HTML:
    the PNG frames inline, and ~30 lines of JavaScript that add an
    ``<input type="range">`` (``control="slider"``, for ordered settings) or one button
    per setting (``control="buttons"``). It responds the same in a static page, in
    Jupyter and on Colab; where scripts do not run it shows the ``initial`` frame
    (default: the first) and its label. ``label`` names the parameter, ``title`` heads
    the figure, ``width`` is the display width in pixels (default: the frames' own),
    ``colors`` the PNG palette (``None``: full colour). The live notebook keeps its
    ``interact`` widget for every other setting.
    """
    from IPython.display import display

    if control not in ("slider", "buttons"):
        raise ValueError(f'control must be "slider" or "buttons", got {control!r}')
    frames = dict(frames)
    if not 2 <= len(frames) <= MAX_FRAMES:
        raise ValueError(
            f"static_slider needs 2 to {MAX_FRAMES} frames (one per setting), "
            f"got {len(frames)}"
        )
    labels = [str(key) for key in frames]
    keys = list(frames)
    if initial is not None and initial not in frames:
        raise ValueError(f"initial={initial!r} is not one of the settings {labels}")
    index = 0 if initial is None else keys.index(initial)
    pngs = [_frame_png(frame, colors) for frame in frames.values()]
    digest = hashlib.sha1(b"".join(pngs) + json.dumps(labels).encode()).hexdigest()
    fig_id = f"fomm-figure-{digest[:12]}"
    esc = html.escape
    images, hide = [], " display: none;"
    for i, (text, png) in enumerate(zip(labels, pngs)):
        size = f' width="{width}"' if width else ""
        alt = f"{title + ': ' if title else ''}{label} = {text}"
        images.append(
            f'<img class="fomm-frame" data-label="{esc(text)}" alt="{esc(alt)}"{size}'
            f' style="max-width: 100%; height: auto;{hide if i != index else ""}"'
            f"{' hidden' if i != index else ''}"
            f' src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        )
    heading = f'<div style="font-weight: bold;">{esc(title)}</div>' if title else ""
    script = _SLIDER_JS % {
        "cls": STATIC_FIGURE_CLASS,
        "id": fig_id,
        "control": control,
        "label": json.dumps(label).replace("</", "<\\/"),
    }
    body = (
        f'<div class="{STATIC_FIGURE_CLASS}" id="{fig_id}" data-index="{index}">'
        f"{heading}"
        f'<div class="fomm-control" style="margin: 0.3em 0;">{esc(label)}: '
        f'<span class="fomm-value">{esc(labels[index])}</span></div>'
        f"{''.join(images)}<script>{script}</script></div>"
    )
    # text/plain for viewers without HTML (and for nbval: no object repr to compare)
    plain = f"[interactive figure: {label}, {len(labels)} settings]"
    display({"text/html": body, "text/plain": plain}, raw=True)
