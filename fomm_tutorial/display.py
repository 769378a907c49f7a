"""How the book shows things: typeset math, highlighted package code, one figure style.

Every chapter imports this module (it holds no model code). The helpers render the same way
in the two places a reader meets a chapter: the HTML book built by Jupyter Book (which renders
the committed outputs) and a live notebook on Colab or Jupyter.

- :func:`show_math` / :func:`show_equations`: sympy results as typeset math (``text/latex``),
  never a sympy repr.
- :func:`show_source`: a package function, class or method, whole and highlighted, read from
  the installed package at run time (so it is in sync with the package by construction).
- :func:`use_book_style` and :func:`image_grid`: one figure style, legible at the book's
  content width (about 700 px): 7 inches at 100 dpi, text at least 9 pt.
- :func:`show_animation`: frames as an embedded GIF written by :mod:`fomm_tutorial.media`.
"""

from __future__ import annotations

import inspect
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
    """Apply :data:`BOOK_STYLE` to matplotlib (call once, in a chapter's import cell)."""
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

    Each part is a sympy object (converted with ``sympy.latex``) or a LaTeX string; parts are
    joined with spaces. ``label`` puts ``(label)`` on the right, as the paper numbers its
    equations (as text: Sphinx wraps multi-line math in ``split``, where ``\\tag`` fails).
    """
    from IPython.display import Math, display

    body = " ".join(latex(p) for p in parts)
    display(Math(body + _label(label)))


def show_equations(rows, label: str | None = None):
    """Display several equations aligned at their relation sign.

    ``rows`` is a list of ``(lhs, rhs)`` (related by ``=``) or ``(lhs, relation, rhs)`` with a
    LaTeX relation such as ``r"\\approx"``. Use it for long results split over lines (one row
    per line) and for a derivation's steps. An ``lhs`` of ``""`` continues the previous line.
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
    """Display the source of package functions, classes or methods, whole and highlighted.

    The code is read from the installed package with :func:`inspect.getsource` and shown as a
    Markdown code block: Jupyter highlights it, and Jupyter Book renders it like the book's own
    code cells. Several objects are shown one after the other in one output.
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
    """Rows and columns for ``n`` panels, at most as many columns as fit at :data:`MIN_PANEL`."""
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
    """Show images (``(H, W)`` or ``(H, W, 3)`` arrays) as small multiples; returns the figure.

    Titles may use mathtext (``"$p^S$"``). Panels wrap into rows so that none is narrower than
    :data:`MIN_PANEL` inches.
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


def show_animation(frames, fps: float = 10, width: int | None = None):
    """Display frames ``(T, H, W, 3)`` in [0, 1] as an embedded looping GIF.

    The GIF is written by :func:`fomm_tutorial.media.write_video` (the package's one media
    writer) and embedded in the notebook, so the HTML book shows it without a kernel and
    without JavaScript. ``width`` is the display width in pixels (default: the frames' own).
    """
    from IPython.display import Image, display

    from fomm_tutorial.media import write_video

    frames = np.asarray(frames)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "animation.gif"
        write_video(path, frames, fps=fps)
        data = path.read_bytes()
    display(Image(data=data, format="gif", width=width or frames.shape[2]))
