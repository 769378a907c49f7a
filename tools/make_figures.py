"""Draw the static figures of the book (the pipeline diagram of the introduction).

.venv/bin/python tools/make_figures.py   # writes book/figures/pipeline.svg
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "fomm"  # deterministic SVG ids
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "book" / "figures"


#: Drawn at the book's content width (7 in = about 670 px, shown at 100%), so that 9 pt text
#: is 9 pt on the page (an 11 in figure shrunk to the column set 8 pt labels at ~7 px).
WIDTH, HEIGHT = 7.0, 3.7
BOTTOM = 0.35  # the empty strip below the footer is cut off
LABEL_PT, NOTE_PT = 10, 9


def box(ax, xy, w, h, text, color):
    ax.add_patch(
        FancyBboxPatch(
            xy,
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.05",
            fc=color,
            ec="#333333",
            lw=1.2,
        )
    )
    ax.text(
        xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=LABEL_PT
    )


def arrow(ax, a, b, text=None, off=(0, 0.08)):
    ax.add_patch(
        FancyArrowPatch(
            a, b, arrowstyle="-|>", mutation_scale=12, lw=1.2, color="#333333"
        )
    )
    if text:
        ax.text(
            (a[0] + b[0]) / 2 + off[0],
            (a[1] + b[1]) / 2 + off[1],
            text,
            ha="center",
            fontsize=NOTE_PT,
            color="#333333",
        )


def pipeline():
    # Axes units are inches: the layout below is the figure's size on the page.
    fig = plt.figure(figsize=(WIDTH, HEIGHT - BOTTOM))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(BOTTOM, HEIGHT)
    ax.axis("off")
    box(ax, (0.05, 2.65), 1.05, 0.75, "source\nimage $S$", "#dbe9f6")
    box(ax, (0.05, 0.95), 1.05, 0.75, "driving\nframe $D$", "#dbe9f6")
    box(ax, (1.55, 1.5), 1.3, 0.8, "keypoint\ndetector (ch. 5)", "#fde2c8")
    box(ax, (3.35, 1.5), 1.55, 0.8, "dense motion\nnetwork (ch. 6)", "#fde2c8")
    box(ax, (4.45, 2.75), 1.25, 0.75, "generator\n(ch. 7)", "#fde2c8")
    box(ax, (5.95, 2.75), 1.0, 0.75, "prediction\n$\\hat D$", "#d9f2d9")
    arrow(ax, (1.1, 2.85), (1.75, 2.3))
    arrow(ax, (1.1, 1.35), (1.75, 1.5))
    arrow(ax, (2.85, 1.9), (3.35, 1.9), r"$p_k, J_k$", (0, 0.1))
    arrow(ax, (1.1, 3.2), (4.45, 3.2), "source appearance", (0, 0.08))
    arrow(ax, (1.1, 2.95), (3.7, 2.3))
    arrow(
        ax,
        (4.6, 2.3),
        (4.95, 2.75),
        r"$\mathcal{T}_{S\leftarrow D}$, $\mathcal{O}$",
        (0.5, -0.12),
    )
    arrow(ax, (5.7, 3.12), (5.95, 3.12))
    ax.text(
        4.13,
        1.22,
        "sparse motions (eq. 4) $\\to$ masks\n$\\to$ dense motion, occlusion",
        ha="center",
        va="top",
        fontsize=NOTE_PT,
    )
    ax.text(
        WIDTH / 2,
        BOTTOM + 0.05,
        "trained without labels: perceptual reconstruction + equivariance (ch. 8, 9);\n"
        "animation with relative motion (ch. 10)",
        ha="center",
        va="bottom",
        fontsize=NOTE_PT,
        style="italic",
    )
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "pipeline.svg", metadata={"Date": None})
    plt.close(fig)


if __name__ == "__main__":
    pipeline()
    print("wrote", OUT / "pipeline.svg")
