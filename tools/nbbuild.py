"""Build chapter notebooks from percent-format sources and execute them to store outputs.

    python tools/nbbuild.py book/src/03_coordinate_grids.py [more.py ...] [--no-exec]

A source is a Python file whose cells start with ``# %%`` (code) or ``# %% [markdown]``
(markdown; every line of the cell starts with ``# `` or is ``#``). Cell tags follow the
header as in jupytext, ``# %% tags=["remove-input", "nbval-ignore-output"]``: nbval reads
``nbval-ignore-output``/``nbval-skip``, Jupyter Book reads ``remove-input``/``hide-input``/
``remove-output``, so no test or layout control is visible in a cell's code. The notebook is written to
``book/<name>.ipynb`` and executed on the CPU (cwd ``book/``) with a fixed seed, so that the
committed outputs are what nbval re-creates.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from queue import Empty

import nbformat

ROOT = Path(__file__).resolve().parent.parent
_CELL = re.compile(r"^# %%(.*)$")
_TAGS = re.compile(r"tags=(\[[^\]]*\])")


def parse(path: Path):
    cells, kind, lines, tags = [], None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(
                re.sub(r"^# ?", "", ln) if ln.startswith("#") else ln
                for ln in text.splitlines()
            )
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif text.strip():
            cell = nbformat.v4.new_code_cell(text)
            if tags:
                cell.metadata["tags"] = tags
            cells.append(cell)

    for line in path.read_text().splitlines():
        m = _CELL.match(line)
        if m:
            flush()
            kind, lines = ("markdown" if "[markdown]" in m.group(1) else "code"), []
            t = _TAGS.search(m.group(1))
            tags = json.loads(t.group(1)) if t else []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def merge_streams(outputs):
    """Join consecutive stdout (or stderr) outputs into one, as nbval compares them.

    A cell that prints several times would otherwise show one grey box per ``print``.
    """
    merged = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and out.output_type == "stream"
            and prev.output_type == "stream"
            and prev.name == out.name
        ):
            prev.text += out.text
        else:
            merged.append(out)
    return merged


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip_widgets(nb) -> None:
    """Drop ipywidgets' saved state and views from an executed notebook.

    Without a kernel a saved widget is a control that looks live and does nothing (Jupyter
    Book renders the state with the widget manager from a CDN). The book shows precomputed
    settings with ``display.static_slider`` instead; run live, ``interact`` draws the
    widget again.
    """
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})
            ]


def _sliced_get_msg(get_msg, step: float = 1.0):
    """Wrap an async channel's ``get_msg`` so that it waits in polls of ``step`` seconds.

    Why: nbclient waits for a cell's ``execute_reply`` with one poll of the whole cell
    timeout (900 s). During an ``interact`` cell, nbclient's Output-widget mimic sends
    ``comm_msg`` updates on the same shell socket, and zmq.asyncio then sometimes misses
    the wake-up for the reply that has already arrived: the poll returns it only when
    its timeout expires, so the build stalled for exactly 900 s and then went on with a
    correct notebook (nbval's blocking client is not affected). Each short poll ends
    with a real check of the socket, so a missed wake-up costs at most ``step``.
    """

    async def get_msg_sliced(timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = step
            if deadline is not None:
                left = min(step, max(0.0, deadline - time.monotonic()))
            try:
                return await get_msg(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg_sliced


def build(src: Path, execute: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(src)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    out = ROOT / "book" / (src.stem + ".ipynb")
    if execute:
        from nbclient import NotebookClient

        # Short shell polls: see _sliced_get_msg (interact cells stalled the build).
        class Client(NotebookClient):
            async def async_start_new_kernel_client(self):
                kc = await super().async_start_new_kernel_client()
                kc.shell_channel.get_msg = _sliced_get_msg(kc.shell_channel.get_msg)
                return kc

        env_bin = str(Path(sys.executable).parent)
        os.environ["PATH"] = env_bin + os.pathsep + os.environ.get("PATH", "")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        client = Client(
            nb,
            timeout=900,
            kernel_name="python3",
            resources={"metadata": {"path": str(ROOT / "book")}},
        )
        client.execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    strip_widgets(nb)
    # Stable ids keep diffs small between rebuilds.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{src.stem[:2]}-{i:03d}"
    nbformat.write(nb, out)
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    for a in args:
        print("built", build(Path(a), execute="--no-exec" not in sys.argv), flush=True)
