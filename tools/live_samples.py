"""Write the live page's inputs: held-out sprites as PNGs and the page's manifest.

``python tools/live_samples.py OUT`` (``make book`` runs it with ``OUT = _extra/live``) writes

- ``OUT/samples/source-<i>.png``: the first frame of held-out video ``i`` (64 x 64);
- ``OUT/samples/driving-<i>.png``: held-out video ``i`` as a horizontal strip of its
  frames, ``(H, T * W, 3)`` (the page's URL contract: ``?driving=`` is such a strip);
- ``OUT/manifest.json``: the model the page runs (name, frame size, keypoint count,
  whether it has Jacobians, the keypoint colours of
  :func:`fomm_tutorial.visualization.kp_colours`) and the list of samples.

The videos are :func:`fomm_tutorial.sprites.heldout_videos` ``first=100 ..`` (the creatures of
the shipped model's ``transfer.png``): identities and motions never trained on. The ONNX
files themselves come from ``fomm-tutorial export`` (the Makefile's ``live-assets``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

MODEL = "sprites-64"
FIRST = 100  # held-out videos FIRST .. FIRST + NUM_VIDEOS - 1
NUM_VIDEOS = 4
NUM_FRAMES = 32


def strip(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` frames -> one ``(H, T * W, 3)`` image, frame ``t`` at columns
    ``t * W .. (t + 1) * W - 1``."""
    frames = np.asarray(frames)
    return np.concatenate(list(frames), axis=1)


def unstrip(image: np.ndarray, width: int) -> np.ndarray:
    """The inverse of :func:`strip`: ``(H, T * W, C)`` -> ``(T, H, W, C)``."""
    image = np.asarray(image)
    if image.shape[1] % width:
        raise ValueError(
            f"a strip {image.shape[1]} pixels wide is not a whole number of "
            f"{width}-pixel frames."
        )
    return np.stack(np.split(image, image.shape[1] // width, axis=1))


def write_samples(out: Path) -> dict:
    from fomm_tutorial import media
    from fomm_tutorial.config import load_config
    from fomm_tutorial.sprites import heldout_videos
    from fomm_tutorial.visualization import kp_colours

    config = load_config(MODEL)
    height, width = (int(s) for s in config["dataset_params"]["frame_shape"][:2])
    common = config["model_params"]["common_params"]
    num_kp = int(common["num_kp"])
    videos, _, seeds = heldout_videos(NUM_VIDEOS, NUM_FRAMES, height, first=FIRST)
    folder = out / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for i, (video, seed) in enumerate(zip(videos, seeds)):
        name = f"held-out creature {chr(ord('A') + i)}"
        media.write_image(folder / f"source-{i}.png", video[0])
        media.write_image(folder / f"driving-{i}.png", strip(video))
        samples.append(
            {
                "name": name,
                "source": f"samples/source-{i}.png",
                "driving": f"samples/driving-{i}.png",
                "num_frames": len(video),
                "seed": seed,
            }
        )
    manifest = {
        "model": MODEL,
        "frame_size": [height, width],
        "num_kp": num_kp,
        "jacobian": bool(common.get("estimate_jacobian", True)),
        "kp_colours": np.round(kp_colours(num_kp) * 255).astype(int).tolist(),
        "detector": "models/kp_detector.onnx",
        "generator": "models/generator.onnx",
        "samples": samples,
        # The page opens with A animated by B (as the model card's transfer.png).
        "default": {"source": 0, "driving": 1},
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(out / "manifest.json")
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the live page's folder (_extra/live)")
    args = parser.parse_args(argv)
    if not args.out.is_dir():
        print(f"{args.out}: no such folder (the live page's folder)", file=sys.stderr)
        return 2
    manifest = write_samples(args.out)
    print(f"wrote {len(manifest['samples'])} held-out samples into {args.out}/samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
