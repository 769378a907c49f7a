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
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=9.5)


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
            fontsize=8,
            color="#333333",
        )


def pipeline():
    fig, ax = plt.subplots(figsize=(11, 3.9))
    ax.set_xlim(0, 11)
    ax.set_ylim(-0.1, 3.8)
    ax.axis("off")
    box(ax, (0.1, 2.6), 1.5, 0.8, "source image\n$S$", "#dbe9f6")
    box(ax, (0.1, 0.4), 1.5, 0.8, "driving frame\n$D$", "#dbe9f6")
    box(ax, (2.3, 1.45), 1.8, 0.9, "keypoint detector\n(ch. 5)", "#fde2c8")
    box(ax, (4.9, 1.45), 2.1, 0.9, "dense motion network\n(ch. 6)", "#fde2c8")
    box(ax, (7.8, 2.4), 1.6, 0.9, "generator\n(ch. 7)", "#fde2c8")
    box(ax, (9.6, 2.45), 1.3, 0.8, "prediction\n$\\hat D$", "#d9f2d9")
    arrow(ax, (1.6, 3.0), (2.6, 2.35))
    arrow(ax, (1.6, 0.8), (2.6, 1.45))
    arrow(ax, (4.1, 1.9), (4.9, 1.9), r"$p_k, J_k$", (0, 0.12))
    arrow(ax, (1.6, 3.1), (7.8, 3.0), "source appearance", (0.8, 0.08))
    arrow(
        ax,
        (7.0, 2.1),
        (7.8, 2.65),
        r"$\mathcal{T}_{S\leftarrow D}$, $\mathcal{O}$",
        (-0.1, 0.22),
    )
    arrow(ax, (9.4, 2.85), (9.6, 2.85))
    arrow(ax, (1.6, 2.75), (5.3, 2.35), "", (0, 0))
    ax.text(
        5.95,
        1.1,
        "sparse motions (eq. 4) $\\to$ masks $\\to$ dense motion, occlusion",
        ha="center",
        fontsize=8,
    )
    ax.text(
        6.4,
        0.05,
        "trained without labels: perceptual reconstruction + equivariance (ch. 8, 9); "
        "animation with relative motion (ch. 10)",
        ha="center",
        fontsize=8.5,
        style="italic",
    )
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "pipeline.svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)


if __name__ == "__main__":
    pipeline()
    print("wrote", OUT / "pipeline.svg")
