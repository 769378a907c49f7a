"""Peak memory of ``fomm-tutorial animate`` against the driving video's length.

    .venv/bin/python benchmarks/bench_animate_memory.py [--frames 75 1200]

Each run is a fresh process (``python -m fomm_tutorial animate`` with the shipped
``sprites-64`` model, 64 x 64, batch 8, mp4 out) whose peak resident set size (``ru_maxrss``
of the child) is printed with its growth over the shortest video's. The driving videos are
procedural sprites (:func:`fomm_tutorial.sprites.sprite_video`), written once to a temporary
folder. The command decodes, animates and encodes batch by batch, so the peak should not
grow with the length; the result file itself is on disk, not in memory.

Measured 2026-12-02 19:00 (shared 2-core machine, TF 2.21, sprites-64, 64 x 64):

    frames    peak RSS    growth over 75 frames    the result as uint8
        75      866 MB                                          0.9 MB
      1200      835 MB                   -3.5 %                14.1 MB

Before the streaming path (``make_animation`` on the whole driving video, then
``write_video`` of the whole result; same command and machine): 880 MB at 75 frames,
1128 MB at 1200 (+28 %: about 19 bytes held per byte of the result).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZE = 64  # the frame size of sprites-64
CHILD = (
    "import resource, sys\n"
    "from fomm_tutorial import cli\n"
    "rc = cli.main(sys.argv[1:])\n"
    "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def peak_rss_mb(argv) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"animate failed: {done.stderr.strip()}")
    line = [x for x in done.stdout.splitlines() if x.startswith("maxrss_kb")][-1]
    return int(line.split()[1]) / 1024.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[75, 1200])
    args = parser.parse_args(argv)

    from fomm_tutorial import media
    from fomm_tutorial.pretrained import pretrained_dir
    from fomm_tutorial.sprites import sprite_video

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source, _ = sprite_video(1, SIZE, seed=1, identity_seed=7)
        media.write_image(tmp / "source.png", source[0])
        results = []
        for n in args.frames:
            driving = tmp / f"driving{n}.mp4"
            with media.VideoWriter(driving, fps=25) as writer:  # generated in pieces
                for start in range(0, n, 100):
                    frames, _ = sprite_video(
                        min(100, n - start), SIZE, seed=2 + start, identity_seed=8
                    )
                    writer.write(frames)
            command = ["animate", "--config", "sprites-64"]
            command += ["--checkpoint", str(pretrained_dir("sprites-64"))]
            command += ["--source", str(tmp / "source.png"), "--driving", str(driving)]
            command += ["--out", str(tmp / "result.mp4")]
            peak = peak_rss_mb(command)
            results.append((n, peak))
            output = n * SIZE * SIZE * 3 / 2**20
            growth = 100.0 * (peak / results[0][1] - 1.0)
            print(
                f"{n:6d} frames  peak RSS {peak:8.1f} MB  ({growth:+5.1f} % over "
                f"{results[0][0]} frames)  output {output:6.1f} MB as uint8"
            )


if __name__ == "__main__":
    main()
