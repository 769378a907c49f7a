"""The book's presentation helpers: typeset math, whole package code, wrapped image grids."""

import matplotlib

matplotlib.use("Agg")

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
    monkeypatch.setattr("IPython.display.display", objects.append)
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
