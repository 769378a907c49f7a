"""Trained models shipped with the package, and the export that produces them.

Explained in chapter 10 (book/10_animation.ipynb).

A shipped model is a folder ``fomm_tutorial/weights/<name>/`` installed as package data:

* ``config.yaml`` -- the original-schema config it was trained with;
* ``kp_detector.weights.h5``, ``generator.weights.h5`` -- Keras weights
  (:data:`fomm_tutorial.checkpoint.WEIGHT_FILES`); no discriminator (trained without
  one);
* ``MODEL_CARD.md`` -- how it was trained (the command reproducing it, seeds, steps,
  wall time) and its held-out metrics; ``metrics.json`` the same numbers,
  ``loss_curve.csv`` / ``loss_curve.png`` the training curve, ``transfer.png`` one
  creature driven by another.

:func:`load_pretrained` builds the networks of the config and loads the weights, ready
for :func:`fomm_tutorial.animation.make_animation`. :func:`export_pretrained`
(``python -m fomm_tutorial.pretrained RUN_DIR --name NAME``) writes such a folder from a
run of ``fomm-tutorial train`` (``make sprites-model`` does both).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

__all__ = [
    "WEIGHTS_DIR",
    "list_pretrained",
    "pretrained_dir",
    "load_pretrained",
    "shipped_metrics",
    "shipped_loss_curve",
    "heldout_clip",
    "export_pretrained",
    "ABLATION_ROWS",
    "sprite_ablation",
    "shipped_ablation",
    "ablation_table",
    "loss_comparison",
    "shipped_loss_comparison",
    "loss_table",
]

#: Where the shipped models live (package data, found from any working directory).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

_CARD = "MODEL_CARD.md"
_NETWORKS = ("kp_detector", "generator")


def list_pretrained() -> List[str]:
    """Names of the shipped models (the :data:`WEIGHTS_DIR` folders with a config)."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(
        p.name for p in WEIGHTS_DIR.iterdir() if (p / "config.yaml").is_file()
    )


def pretrained_dir(name: str) -> Path:
    """The folder of shipped model ``name``; ``ValueError`` listing the shipped ones."""
    shipped = list_pretrained()
    if name not in shipped:
        raise ValueError(
            f"unknown pretrained model {name!r}: the package ships "
            f"{', '.join(repr(n) for n in shipped) or 'none'}"
        )
    return WEIGHTS_DIR / name


def _load_weights(model, path: Path, name: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the installed package is incomplete; reinstall it "
            "(pip install --force-reinstall fomm-tutorial) or re-export the model "
            "(make sprites-model)"
        )
    try:
        model.load_weights(str(path))
    except (OSError, ValueError) as exc:
        # h5py: truncated / not HDF5; Keras: a layout that does not fit the config
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ValueError(
            f"{path} cannot be loaded into the {name} ({first}): the file is damaged, "
            "truncated or from another config; reinstall the package or re-export the "
            "model (make sprites-model)"
        ) from None


def load_pretrained(name: str = "sprites-64") -> dict:
    """A shipped model: ``{"config", "kp_detector", "generator"}``.

    The networks are built from the model's ``config.yaml`` (:func:`build_models`) and
    hold the shipped weights; call them with ``training=False`` or hand them to
    :func:`fomm_tutorial.animation.make_animation`. Unknown ``name`` -> ``ValueError``
    listing the shipped models; a missing or damaged weights file -> a one-line
    ``FileNotFoundError`` / ``ValueError`` naming it.
    """
    from fomm_tutorial.checkpoint import WEIGHT_FILES, build_models
    from fomm_tutorial.config import load_config

    folder = pretrained_dir(name)
    config = load_config(folder / "config.yaml")
    models = build_models(config)
    result = {"config": config}
    for net in _NETWORKS:
        _load_weights(models[net], folder / WEIGHT_FILES[net], net)
        result[net] = models[net]
    return result


def shipped_metrics(name: str = "sprites-64") -> dict:
    """The held-out metrics of shipped model ``name`` (``metrics.json``)."""
    return json.loads((pretrained_dir(name) / "metrics.json").read_text())


def shipped_loss_curve(name: str = "sprites-64") -> Dict[str, np.ndarray]:
    """The training curve of shipped model ``name``: ``{"step": (N,), loss: (N,)}``.

    Means over consecutive windows of steps (``step`` is each window's last step), from
    the run's TensorBoard scalars; ``total`` is the summed loss the optimizer minimised.
    """
    with open(pretrained_dir(name) / "loss_curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def heldout_clip(name: str = "talking-head-128") -> dict:
    """The sample clip split as shipped model ``name`` was trained on it.

    Reads the real talking-head clip (:func:`fomm_tutorial.reference.sample_media`: a
    local copy, else downloaded once) at the model's size and splits it where its
    ``metrics.json`` says: ``{"source": (H, W, 3) frame 0, "train": (T0, H, W, 3) the
    frames it was trained on, "heldout": (T1, H, W, 3) the frames it never saw,
    "first": T0}``. ``ValueError`` for a model not trained on a clip (``sprites-64``).
    """
    from fomm_tutorial import media
    from fomm_tutorial.reference import sample_media

    metrics = shipped_metrics(name)
    split = metrics.get("heldout_frames")
    if split is None:
        raise ValueError(
            f"{name!r} was not trained on a clip split in time; use one of "
            f"{[n for n in list_pretrained() if 'heldout_frames' in shipped_metrics(n)]}"
        )
    size = metrics["image_size"]
    clip = media.read_video(sample_media(f"{split['clip']}.mp4"), size=size)
    first = int(split["first"])
    return {
        "source": clip[0],
        "train": clip[:first],
        "heldout": clip[first:],
        "first": first,
    }


# --------------------------------------------------------------------------------------
# Export from a training run
# --------------------------------------------------------------------------------------
def _scalar_events(run_dir: Path, max_step: int):
    """A run's TensorBoard scalars up to ``max_step``: the losses ``{name: {step:
    value}}`` (tags ``loss/<name>``), the learning rates the same way (``lr/<network>``)
    and ``{step: wall_time}``."""
    import tensorflow as tf

    values: Dict[str, Dict[int, float]] = {}
    rates: Dict[str, Dict[int, float]] = {}
    wall: Dict[int, float] = {}
    files = sorted((run_dir / "tensorboard").glob("**/events.out.tfevents.*"))
    for path in files:
        # the records read as tf.data (as training.purge_tensorboard does):
        # summary_iterator prints a deprecation warning
        records = tf.data.TFRecordDataset(str(path))
        for event in (tf.compat.v1.Event.FromString(r.numpy()) for r in records):
            if event.step > max_step:
                continue
            for v in event.summary.value:
                kind, _, name = v.tag.partition("/")
                if kind not in ("loss", "lr"):
                    continue
                x = (
                    float(tf.make_ndarray(v.tensor))
                    if v.HasField("tensor")
                    else float(v.simple_value)
                )
                into = values if kind == "loss" else rates
                into.setdefault(name, {})[int(event.step)] = x
                wall[int(event.step)] = float(event.wall_time)
    return values, rates, wall


def _lr_decay_steps(rates: Dict[str, Dict[int, float]]) -> list:
    """The steps from which the generator's learning rate is lower than the step before
    (``rates``: :func:`_scalar_events`' learning rates)."""
    lr = rates.get("generator", {})
    steps = sorted(lr)
    return [b for a, b in zip(steps, steps[1:]) if lr[b] < lr[a]]


def _training_seconds(wall: Dict[int, float], gap: float = 300.0) -> float:
    """Wall time of the steps, interruptions (gaps longer than ``gap`` s) left out."""
    times = [wall[s] for s in sorted(wall)]
    deltas = np.diff(times) if len(times) > 1 else np.zeros(0)
    return float(deltas[(deltas >= 0) & (deltas < gap)].sum())


def _curve(values, window: int) -> Dict[str, np.ndarray]:
    """``{"step", <loss>..., "total"}``: a run's losses averaged over windows of
    ``window`` steps (``step``: each window's last), ``total`` their sum."""
    names = sorted(values)
    steps = sorted(set.intersection(*(set(values[n]) for n in names)))
    table = np.array([[values[n][s] for n in names] for s in steps])
    total = table.sum(axis=1)
    rows = []
    for start in range(0, len(steps), window):
        chunk = slice(start, start + window)
        rows.append(
            [steps[chunk][-1]] + list(table[chunk].mean(0)) + [total[chunk].mean()]
        )
    header = ["step"] + names + ["total"]
    return {h: np.array([r[i] for r in rows]) for i, h in enumerate(header)}


def _earlier_stage(init: dict, window: int) -> dict:
    """The stage a warm-started run started from (``run.json``'s ``init_from``): its loss
    curve (:func:`_curve`) and wall time in hours. A shipped model's are its
    ``loss_curve.csv`` and card (read before an export may replace that folder); a
    run's, its TensorBoard scalars up to the step it was read at."""
    from fomm_tutorial.training import _run_config_file

    source = init["source"]
    if source in list_pretrained():
        metrics = shipped_metrics(source)
        training = metrics["training"]
        hours = training.get("total_wall_time_h", training["wall_time_h"])
        return {
            "curve": shipped_loss_curve(source),
            "wall_time_h": hours,
            "metrics": metrics,
        }
    file = _run_config_file(source)
    values, _, wall = (
        _scalar_events(file.parent, int(init["step"])) if file else ({}, {}, {})
    )
    return {
        "curve": _curve(values, window) if values else None,
        "wall_time_h": _training_seconds(wall) / 3600.0,
        "metrics": None,  # measured by the export, on its protocol
    }


def headline_metrics(metrics: dict) -> Dict[str, float]:
    """The four held-out measures of a sprite model's ``metrics.json``
    (:func:`shipped_metrics`): ``keypoints`` (px) and ``reconstruction``, ``absolute``,
    ``relative`` (multiples of copying the source)."""
    t = metrics["transfer"]
    return {
        "keypoints": metrics["regression_error_px"],
        "reconstruction": metrics["reconstruction_ratio"],
        "absolute": t["absolute"]["ratio"],
        "relative": t["relative"]["ratio"],
    }


def _stages_section(init: dict, before: dict, after: dict, step: int) -> str:
    """The card's table of a warm-started sprite model against its first stage."""
    first, this = headline_metrics(before), headline_metrics(after)
    what = f"`{init['config']}`" if init.get("config") else f"`{init['source']}`"
    rows = [
        f"| {label} | {a['keypoints']:.2f} px | {a['reconstruction']:.2f} x | "
        f"{a['absolute']:.2f} x | {a['relative']:.2f} x |"
        for label, a in (
            (f"first stage: {what}, {init['step']} steps", first),
            (f"**this model**: + {step} steps", this),
        )
    ]
    return (
        "## Before and after the warm start\n\n"
        "The held-out measures above (keypoints: one map for all videos; the others as "
        "a multiple of copying the source, lower is better) of the model this one "
        "started from, and of this model:\n\n"
        "| model | keypoints | reconstruction | transfer, absolute | transfer, "
        "relative |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
    )


def _write_curve(
    curve: Dict[str, np.ndarray], out_dir: Path, window: int, name: str, earlier=None
) -> Dict[str, np.ndarray]:
    """``loss_curve.csv`` and ``loss_curve.png`` of a :func:`_curve`; with ``earlier``
    (a warm start's first stage, a :func:`_curve`) that stage first and this run's
    steps counted on from its last step (a loss one stage lacks: NaN there)."""
    start = None
    if earlier is not None:
        start = int(earlier["step"][-1])
        names = [k for k in earlier if k != "total"]
        names += [k for k in curve if k not in names]
        stage = {"step": curve["step"] + start}
        curve = {
            k: np.concatenate(
                [
                    np.asarray(part.get(k, np.full(len(part["step"]), np.nan)), float)
                    for part in (earlier, {**curve, **stage})
                ]
            )
            for k in names + ["total"]
        }
    header = ["step"] + sorted(k for k in curve if k not in ("step", "total"))
    header.append("total")
    with open(out_dir / "loss_curve.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in range(len(curve["step"])):
            writer.writerow(
                [int(curve["step"][i])] + [f"{curve[h][i]:.6g}" for h in header[1:]]
            )
    names = header[1:-1]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for n in names + ["total"]:
        ax.plot(curve["step"], curve[n], label=n, lw=1.6 if n == "total" else 1.0)
    if start is not None:
        ax.axvline(start, color="k", ls=":", lw=1, label="warm start")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss (mean over {window} steps)")
    ax.set_title(f"{name}: training losses")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "loss_curve.png")
    plt.close(fig)
    return curve


def _sprite_metrics(models, config, num_videos: int, num_frames: int) -> dict:
    """Held-out sprite metrics of ``models``, of an untrained twin and the baselines."""
    import keras

    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.sprites import (
        evaluate_heldout,
        heldout_videos,
        reference_keypoints,
        transfer_errors,
    )

    size = int(config["dataset_params"]["frame_shape"][0])
    videos, positions, seeds = heldout_videos(num_videos, num_frames, size)
    trained = evaluate_heldout(
        models["kp_detector"], models["generator"], videos, positions
    )
    keras.utils.set_random_seed(0)
    untrained = evaluate_heldout(
        build_models(config)["kp_detector"], None, videos, positions
    )
    kp, ukp = trained["keypoints"], untrained["keypoints"]
    ref = reference_keypoints(positions, image_size=size)
    # the fast check of tests/test_pretrained.py: the protocol on the first two videos
    two = evaluate_heldout(models["kp_detector"], None, videos[:2], positions[:2])
    return {
        "image_size": size,
        "heldout_videos": {
            "num_videos": len(videos),
            "num_frames": num_frames,
            "seeds": seeds,
            "protocol": "one linear map [kp, 1] -> part centres for all videos, fitted "
            "on the first half of every video's frames, scored on the second halves",
        },
        "regression_error_px": kp["regression_error_px"],
        "matched_error_px": kp["matched_error_px"],
        "baseline_error_px": kp["baseline_error_px"],
        "untrained_regression_error_px": ukp["regression_error_px"],
        "per_video_regression_error_px": kp["per_video_regression_error_px"],
        "untrained_per_video_regression_error_px": ukp["per_video_regression_error_px"],
        "body_only_regression_error_px": ref["body_only"]["regression_error_px"],
        "body_only_per_video_regression_error_px": ref["body_only"][
            "per_video_regression_error_px"
        ],
        "reconstruction_l1": trained["reconstruction"]["l1"],
        "copy_first_frame_l1": trained["reconstruction"]["l1_copy_first"],
        "reconstruction_ratio": trained["reconstruction"]["ratio"],
        "two_video_check": {
            "regression_error_px": two["keypoints"]["regression_error_px"],
            "baseline_error_px": two["keypoints"]["baseline_error_px"],
        },
        "transfer": transfer_errors(
            models["kp_detector"], models["generator"], size=size
        ),
    }


#: The rows of the sprite ablation (the paper's Table 1), in its order: a config each.
ABLATION_ROWS = {
    "baseline": "sprites-64-baseline",
    "pyramid": "sprites-64-pyramid",
    "occlusion": "sprites-64-occlusion",
    "jacobian-no-eq12": "sprites-64-jacobian-no-eq12",
    "full": "sprites-64-full",
}
_ABLATION = "ablation.json"
_ABLATION_VIDEOS = "ablation_transfer.npz"


def _switches(config) -> dict:
    """What an ablation row turns on: the config keys the rows differ in."""
    mp, tp = config["model_params"], config["train_params"]
    jacobian = bool(mp["common_params"].get("estimate_jacobian", False))
    return {
        "scales": [float(x) for x in tp["scales"]],
        "occlusion": bool(mp["generator_params"].get("estimate_occlusion_map", False)),
        "jacobian": jacobian,
        "equivariance_jacobian": float(tp["loss_weights"]["equivariance_jacobian"])
        if jacobian
        else 0.0,
    }


def _save_images(path: Path, arrays: Dict[str, np.ndarray]) -> None:
    """Images or videos in [0, 1] as a compressed ``.npz`` of uint8 arrays (package data)."""
    np.savez_compressed(
        path,
        **{
            k: (np.clip(v, 0, 1) * 255 + 0.5).astype(np.uint8)
            for k, v in arrays.items()
        },
    )


def _shipped_with_images(name: str, table: str, images: str, key: str) -> dict:
    """A shipped ``.json`` of model ``name`` with the arrays of its :func:`_save_images`
    file under ``key``, as float32 in [0, 1]."""
    folder = pretrained_dir(name)
    result = json.loads((folder / table).read_text())
    with np.load(folder / images) as z:
        result[key] = {k: z[k].astype(np.float32) / 255.0 for k in z.files}
    return result


def _runs_at_step(run_dirs: Dict[str, str], step: int, known):
    """``(name, config, models, step)`` of each run folder, read at ``ckpt-<step>``, in
    the order of ``known`` (the row names a comparison accepts)."""
    from fomm_tutorial.config import load_config
    from fomm_tutorial.training import read_run_networks

    unknown = sorted(set(run_dirs) - set(known))
    if unknown:
        raise ValueError(f"unknown rows {unknown}: use {', '.join(known)}")
    for name in [r for r in known if r in run_dirs]:
        run_dir = Path(run_dirs[name])
        config = load_config(json.loads((run_dir / "config.json").read_text()))
        prefix = run_dir / "checkpoints" / f"ckpt-{int(step)}"
        models, _, read_step = read_run_networks(run_dir, config, str(prefix))
        yield name, config, models, read_step


def sprite_ablation(
    run_dirs: Dict[str, str],
    step: int,
    out_dir=None,
    num_videos: int = 16,
    num_frames: int = 64,
    num_pairs: int = 8,
) -> dict:
    """Score the runs of the sprite ablation at one step and write ``ablation.json``.

    ``run_dirs``: row name (:data:`ABLATION_ROWS`) -> the ``--out`` folder of its
    ``fomm-tutorial train`` run; every row is read at ``checkpoints/ckpt-<step>`` (the
    same budget for all). Each row gets the held-out measures of the shipped card
    (:func:`fomm_tutorial.sprites.evaluate_heldout` on ``num_videos`` videos of
    ``num_frames`` frames: keypoint regression error, reconstruction against copying the
    first frame) and :func:`fomm_tutorial.sprites.transfer_errors` on ``num_pairs`` pairs
    (absolute and relative motion against the renderer's truth). Writes
    ``out_dir / "ablation.json"`` (default the ``sprites-64`` folder) and
    ``ablation_transfer.npz`` (uint8 ``(T, H, W, 3)`` videos of the first transfer pair:
    ``driving``, ``truth`` and each row's relative-motion result, keyed by row), and
    returns ``{"step", "protocol", "rows": {name: ...}}``.
    """
    from fomm_tutorial.sprites import evaluate_heldout, heldout_videos, transfer_errors

    videos, positions, _ = heldout_videos(num_videos, num_frames)
    rows, videos_out = {}, {}
    for name, config, models, read_step in _runs_at_step(run_dirs, step, ABLATION_ROWS):
        held = evaluate_heldout(
            models["kp_detector"], models["generator"], videos, positions
        )
        transfer = transfer_errors(
            models["kp_detector"],
            models["generator"],
            num_pairs=num_pairs,
            return_videos=True,
        )
        # the first pair, relative motion: the book's side-by-side animation
        first_pair = transfer["videos"][0]
        videos_out.setdefault("driving", first_pair["driving"])
        videos_out.setdefault("truth", first_pair["truth"])
        videos_out[name] = first_pair["relative"]
        rows[name] = {
            "config": ABLATION_ROWS[name],
            "step": read_step,
            **_switches(config),
            "regression_error_px": held["keypoints"]["regression_error_px"],
            "reconstruction": held["reconstruction"],
            "absolute": transfer["absolute"],
            "relative": transfer["relative"],
        }
    protocol = {
        "num_videos": num_videos,
        "num_frames": num_frames,
        "num_pairs": num_pairs,
    }
    result = {"step": int(step), "protocol": protocol, "rows": rows}
    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR / "sprites-64"
    (out_dir / _ABLATION).write_text(json.dumps(result, indent=1) + "\n")
    _save_images(out_dir / _ABLATION_VIDEOS, videos_out)
    return result


def shipped_ablation(name: str = "sprites-64") -> dict:
    """The ablation shipped with a model (see :func:`sprite_ablation`): ``ablation.json``
    plus ``"videos"``, the transfer videos of ``ablation_transfer.npz`` as float32
    ``(T, H, W, 3)`` arrays in [0, 1] (``driving``, ``truth``, one per row)."""
    return _shipped_with_images(name, _ABLATION, _ABLATION_VIDEOS, "videos")


def ablation_table(ablation: dict) -> str:
    """The ablation of :func:`sprite_ablation` as a markdown table (one row per variant)."""
    lines = [
        "| variant | scales | occlusion | Jacobians | eq. 12 | keypoints | "
        "reconstruction | transfer, absolute | transfer, relative |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in ablation["rows"].items():
        yes = {True: "yes", False: "no"}
        lines.append(
            f"| {name} | {len(r['scales'])} | {yes[r['occlusion']]} | "
            f"{yes[r['jacobian']]} | {r['equivariance_jacobian']:g} | "
            f"{r['regression_error_px']:.2f} px | "
            f"{r['reconstruction']['ratio']:.2f} x | {r['absolute']['ratio']:.2f} x | "
            f"{r['relative']['ratio']:.2f} x |"
        )
    return "\n".join(lines)


def _ablation_section(ablation: dict) -> str:
    """The card's ablation section (``ablation.json`` of :func:`sprite_ablation`)."""
    return f"""## Ablation: what each part buys

The paper's Table 1 on held-out sprites: every variant trained on the same data with the
same seed (0) for {ablation["step"]} steps at batch 8, one switch changed per row
(`fomm_tutorial.pretrained.ABLATION_ROWS` names each row's config); scored at that step by
`fomm_tutorial.pretrained.sprite_ablation` with the protocols above (keypoints: one map for
all videos; reconstruction, absolute and relative transfer: L1 as a multiple of copying the
source, lower is better).

{ablation_table(ablation)}

"""


def _clip_split(data_root: Path):
    """``(source (H, W, 3), held-out (T, H, W, 3), clip name, first held-out frame)`` of
    a dataset written by :func:`fomm_tutorial.data.write_clip_dataset`."""
    from fomm_tutorial import media

    videos = sorted((data_root / "train").iterdir()) if data_root.is_dir() else []
    if len(videos) != 1:
        raise ValueError(
            f"{data_root}: expected sprites (sprites.json) or one clip split in time "
            "(data.write_clip_dataset: one video in train/ and test/); cannot score it"
        )
    train = videos[0]
    frames = media.read_video(train)
    held = media.read_video(data_root / "test" / train.name)
    return frames[0], held, train.name, len(frames)


def _clip_metrics(models, config, data_root: Path) -> dict:
    """Held-out metrics of a model trained on one clip split in time: the first training
    frame is the source, every held-out frame drives it with absolute keypoints (the
    original's reconstruction mode); with the untrained twin and copying the source."""
    import keras

    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.evaluation import reconstruction, sharpness

    source, held, clip, first = _clip_split(data_root)
    trained = reconstruction(
        [held],
        models["kp_detector"],
        models["generator"],
        source=source,
        return_predictions=True,
    )
    keras.utils.set_random_seed(0)
    twin = build_models(config)
    untrained = reconstruction(
        [held], twin["kp_detector"], twin["generator"], source=source
    )
    return {
        "image_size": int(config["dataset_params"]["frame_shape"][0]),
        "heldout_frames": {
            "clip": clip,
            "first": first,
            "num_frames": len(held),
            "protocol": "source = frame 0 of the clip (a training frame); every "
            "held-out frame drives it with absolute keypoints; mean L1 in [0, 1]",
        },
        "reconstruction_l1": trained["l1"],
        "copy_first_frame_l1": trained["l1_copy_first"],
        "reconstruction_ratio": trained["l1"] / trained["l1_copy_first"],
        "untrained_reconstruction_l1": untrained["l1"],
        "sharpness_ratio": sharpness(trained["predictions"][0]) / sharpness(held),
    }


_LOSSES = "losses.json"
_LOSS_FRAMES = "loss_comparison.npz"


def loss_comparison(
    run_dirs: Dict[str, str], step: int, data_root, out_dir=None, num_frames: int = 4
) -> dict:
    """Score runs on one clip that differ only in their reconstruction loss.

    ``run_dirs``: ``--simple-losses`` kind (:data:`fomm_tutorial.config.SIMPLE_LOSSES`:
    ``l1``, ``ms-ssim``, ``hed-vgg16``) -> the run folder, every row read at
    ``checkpoints/ckpt-<step>``; ``data_root``: the clip dataset they were trained on
    (:func:`fomm_tutorial.data.write_clip_dataset`). Each row: the held-out
    reconstruction of the card (every held-out frame drives frame 0, absolute
    keypoints; L1 against copying the source) and its sharpness
    (:func:`fomm_tutorial.evaluation.sharpness`) as a multiple of the real frames'.
    Writes ``losses.json`` and ``loss_comparison.npz`` (uint8 ``(num_frames, H, W, 3)``:
    ``heldout`` frames evenly spread and each row's reconstruction of them) into
    ``out_dir`` (default the ``talking-head-128`` folder); returns ``{"step", "rows"}``.
    """
    from fomm_tutorial.config import SIMPLE_LOSSES
    from fomm_tutorial.evaluation import reconstruction, sharpness

    source, held, clip, first = _clip_split(Path(data_root))
    picks = np.linspace(0, len(held) - 1, num_frames).round().astype(int)
    rows, frames = {}, {"heldout": held[picks]}
    for name, _, models, read_step in _runs_at_step(run_dirs, step, SIMPLE_LOSSES):
        rec = reconstruction(
            [held],
            models["kp_detector"],
            models["generator"],
            source=source,
            return_predictions=True,
        )
        rows[name] = {
            "step": read_step,
            "reconstruction_l1": rec["l1"],
            "copy_first_frame_l1": rec["l1_copy_first"],
            "reconstruction_ratio": rec["l1"] / rec["l1_copy_first"],
            "sharpness_ratio": sharpness(rec["predictions"][0]) / sharpness(held),
        }
        frames[name] = rec["predictions"][0][picks]
    result = {
        "step": int(step),
        "heldout_frames": {"clip": clip, "first": first, "num_frames": len(held)},
        "frames": [int(first + i) for i in picks],
        "rows": rows,
    }
    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR / "talking-head-128"
    (out_dir / _LOSSES).write_text(json.dumps(result, indent=1) + "\n")
    _save_images(out_dir / _LOSS_FRAMES, frames)
    return result


def _losses_section(comparison: dict) -> str:
    """The card's section on the reconstruction losses (``losses.json``)."""
    return f"""## Losses that work offline

The original's perceptual loss needs ImageNet VGG19 weights, which cannot always be
downloaded. The same configuration trained with each offline reconstruction loss of
`fomm-tutorial train --simple-losses KIND` for {comparison["step"]} steps (seed 0; `l1`
is this model's own loss; `make talking-head-losses` reproduces the table), scored on the
held-out frames as
above by `fomm_tutorial.pretrained.loss_comparison` (sharpness:
`evaluation.sharpness`, the variance of the Laplacian, as a multiple of the real frames'):

{loss_table(comparison)}

{_losses_reading(comparison)}

"""


def _losses_reading(comparison: dict) -> str:
    """One sentence: which loss reconstructs the held-out frames best, which sharpest."""
    rows = comparison["rows"]
    best = min(rows, key=lambda k: rows[k]["reconstruction_l1"])
    sharpest = max(rows, key=lambda k: rows[k]["sharpness_ratio"])
    if best == sharpest:
        return f"`{best}` gives both the lowest held-out L1 and the sharpest frames."
    return f"`{best}` gives the lowest held-out L1, `{sharpest}` the sharpest frames."


def shipped_loss_comparison(name: str = "talking-head-128") -> dict:
    """The loss comparison shipped with a model (see :func:`loss_comparison`):
    ``losses.json`` plus ``"images"``, the frames of ``loss_comparison.npz`` as float32
    ``(N, H, W, 3)`` arrays in [0, 1] (``heldout``, one per loss)."""
    return _shipped_with_images(name, _LOSSES, _LOSS_FRAMES, "images")


def loss_table(comparison: dict) -> str:
    """The comparison of :func:`loss_comparison` as a markdown table."""
    lines = [
        "| reconstruction loss | held-out L1 | x copying the source | sharpness x real |",
        "|---|---|---|---|",
    ]
    for name, r in comparison["rows"].items():
        lines.append(
            f"| {name} | {r['reconstruction_l1']:.4f} | "
            f"{r['reconstruction_ratio']:.3f} | {r['sharpness_ratio']:.2f} |"
        )
    return "\n".join(lines)


def _write_clip_figures(models, config, out_dir: Path, data_root: Path, previews):
    """``heldout.png`` (held-out frames | reconstructions), ``previews.png`` (the same
    frames reconstructed by the checkpoints ``previews``: ``[(step, prefix)]``) and
    ``new_identity.png`` (the sample photo driven by the held-out frames, relative
    motion: what a one-person model does with a person it never saw)."""
    from PIL import Image

    from fomm_tutorial import media
    from fomm_tutorial.animation import make_animation
    from fomm_tutorial.reference import sample_media
    from fomm_tutorial.training import read_run_networks

    source, held, _, _ = _clip_split(data_root)
    picks = np.linspace(0, len(held) - 1, 6).round().astype(int)

    def animate(nets, image, relative):
        return make_animation(
            image,
            held[picks],
            nets["kp_detector"],
            nets["generator"],
            relative=relative,
            adapt_scale=relative,
            progress=False,
        )

    def save(rows, name):
        grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], 0)
        Image.fromarray((np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)).save(
            out_dir / name
        )

    blank = np.ones_like(source)
    save(
        [[blank, *held[picks]], [source, *animate(models, source, False)]],
        "heldout.png",
    )
    rows = [[blank, *held[picks]]]
    for _, prefix in previews:
        nets, _, _ = read_run_networks(Path(prefix).parent, config, prefix)
        rows.append([source, *animate(nets, source, False)])
    if previews:
        save(rows, "previews.png")
    size = source.shape[:2]
    stranger = media.read_image(sample_media("source.png"), size=size)
    save(
        [[blank, *held[picks]], [stranger, *animate(models, stranger, True)]],
        "new_identity.png",
    )


def _commands(
    name: str, data: dict, step: int, init: Optional[dict] = None, freeze: bool = False
) -> str:
    """The commands of ``make sprites-model`` for ``step`` steps (runs/NAME); with
    ``init`` (``run.json``'s ``init_from``, a warm start from a shipped config's run)
    the first stage trains that config for ``init["step"]`` steps into runs/NAME/init;
    ``freeze``: the run trained with ``--freeze-keypoints``."""
    args = ", ".join(
        f"{k}={data[k]}"
        for k in ("num_videos", "num_frames", "size", "seed", "num_identities")
        if k in data
    ).replace("size=[64, 64]", "size=64")
    common = f"--data runs/{name}/data --simple-losses --checkpoint-every 250 --seed 0"
    lines = [
        f'python -c "from fomm_tutorial.sprites import write_sprite_dataset; '
        f"write_sprite_dataset('runs/{name}/data', {args})\""
    ]
    start = ""
    if init is not None:
        source = init["source"]
        if init.get("config"):
            lines.append(
                f"fomm-tutorial train --config {init['config']} --out runs/{name}/init "
                f"--steps {init['step']} {common}"
            )
            source = f"runs/{name}/init"
        start = f"--init-from {source} "
    if freeze:
        start += "--freeze-keypoints "
    lines += [
        f"fomm-tutorial train --config fomm_tutorial/configs/{name}.yaml "
        f"--out runs/{name}/run {start}--steps {step} {common}",
        f"python -m fomm_tutorial.pretrained runs/{name}/run --name {name}",
    ]
    return "\n".join(lines)


def _start(init: Optional[dict], freeze: bool = False) -> str:
    """How a run started, for the cards: from scratch or warm from another run;
    ``freeze``: with its keypoints frozen (``--freeze-keypoints``)."""
    if init is None:
        return "from scratch"
    what = f"config `{init['config']}`" if init.get("config") else f"`{init['source']}`"
    frozen = (
        "; then the keypoints stayed frozen (`--freeze-keypoints`: the detector's "
        "hourglass and heatmap head as that run left them) while the Jacobian head and "
        "the generator learned"
        if freeze
        else ""
    )
    return (
        f"warm-started (`--init-from`) from {init['step']} steps of {what}: every "
        "weight the two runs' networks share copied, the others (a Jacobian head "
        f"that run lacked) at their initialisation{frozen}"
    )


def _write_transfer(models, out_dir: Path, size: int) -> None:
    """``transfer.png``: held-out creature A (source) animated by held-out creature B.

    Rows: B's driving frames, the result with relative motion, with absolute motion; the
    first column holds A's source frame. Videos 100 and 101 of :func:`heldout_videos`.
    """
    from PIL import Image

    from fomm_tutorial.animation import make_animation
    from fomm_tutorial.sprites import heldout_videos

    (source, driving), _, _ = heldout_videos(2, 32, size, first=100)
    picks = [0, 8, 16, 24, 31]
    rows = [[source[0]] + [driving[t] for t in picks]]
    for relative in (True, False):
        out = make_animation(
            source[0],
            driving,
            models["kp_detector"],
            models["generator"],
            relative=relative,
            adapt_scale=relative,
            progress=False,
        )
        rows.append([source[0]] + [out[t] for t in picks])
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    image = Image.fromarray((np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8))
    image.resize((image.width * 2, image.height * 2), Image.NEAREST).save(
        out_dir / "transfer.png"
    )


def _lr_schedule(config) -> str:
    """The learning-rate schedule of ``train_params`` in words, for the cards."""
    tp = config["train_params"]
    lr = f"{float(tp['lr_generator']):g}"
    milestones = [int(m) for m in tp.get("epoch_milestones", [])]
    if not milestones:
        return f"constant learning rate {lr}"
    at = ", ".join(str(m) for m in milestones[:-1])
    at = f"{at} and {milestones[-1]}" if at else str(milestones[-1])
    return (
        f"learning rate {lr}, divided by 10 at epoch{'s' if len(milestones) > 1 else ''} "
        f"{at} of {int(tp['num_epochs'])} (MultiStepLR, as the original)"
    )


def _motion(config) -> str:
    return (
        "first-order motion (keypoints with Jacobians)"
        if config["model_params"]["common_params"].get("estimate_jacobian", True)
        else "zeroth-order motion (keypoints without Jacobians)"
    )


def _card(name, config_text, metrics, info) -> str:
    m = metrics
    h = m["heldout_videos"]
    seeds = h["seeds"]
    return f"""# Model card: `{name}`

`fomm_tutorial.pretrained.load_pretrained("{name}")` returns the keypoint detector and the
generator of this folder, ready for `fomm_tutorial.animation.make_animation`.

## What it is

The First Order Motion Model (this package's networks) trained on the procedural
**articulated sprites** of `fomm_tutorial.sprites` at {m["image_size"]} x {m["image_size"]}:
a body and three limbs per creature, each creature (identity: shapes, colours, textures,
background) moving smoothly. {info["num_kp"]} keypoints, {info["motion"]}, narrow networks (config:
`config.yaml`, the same as `fomm_tutorial/configs/{name}.yaml`). Trained with the package's
own `Trainer` through `fomm-tutorial train --simple-losses`: multi-scale L1 reconstruction
(scales 1, 1/2, 1/4) + the original equivariance losses (values, and Jacobians when the
model has them, under random affine + TPS warps); no VGG19
perceptual loss (its ImageNet weights cannot be downloaded offline) and no discriminator.
The discriminator was not trained and is not shipped.

## How to reproduce it

```
make sprites-model {info["make_args"]}
```

runs, from scratch, into `runs/{name}/` (data, training, then the export into this
folder):

```
{info["commands"]}
```

* data: `write_sprite_dataset(root, num_videos={info["data"]["num_videos"]}, num_frames={info["data"]["num_frames"]}, size={info["data"]["size"]}, seed={info["data"]["seed"]}, num_identities={info["data"]["num_identities"]})`:
  every video its own identity; {info["num_train_videos"]} training videos (so
  {info["num_train_videos"]} training identities), the other {info["num_test_videos"]} in
  `test/`. Training seed 0 (`--seed 0`: data order, weights, random transforms).
* steps: **{info["step"]}** at batch {info["batch_size"]}
  ({info["step"] * info["batch_size"]} source/driving pairs), {info["lr_schedule"]};
  {info["start"]}.
* wall time: {info["wall"]} of training on this machine's 2-core CPU
  ({info["cpu"]}), shared with other jobs; TensorFlow {info["tf_version"]}.
  Exported from `{info["checkpoint"]}` on {info["date"]}.

## Training curve

![loss curve](loss_curve.png)

`loss_curve.csv`: the losses averaged over windows of {info["window"]} steps (`step` = last
step of the window); `total` is the sum the optimizer minimised.
`fomm_tutorial.pretrained.shipped_loss_curve("{name}")` reads it.

## Held-out evaluation

{h["num_videos"]} sprite videos of {h["num_frames"]} frames whose motion **and** identity were
never trained on: video `i` is
`fomm_tutorial.sprites.sprite_video({h["num_frames"]}, {m["image_size"]}, seed={seeds[0]["seed"]} + i, identity_seed={seeds[0]["identity_seed"]} + i)`,
`i = 0..{h["num_videos"] - 1}` (`fomm_tutorial.sprites.heldout_videos()`; none of these seeds is
a training seed: `tests/test_sprites.py` checks it). Computed by
`fomm_tutorial.sprites.evaluate_heldout`.

Keypoints (`evaluation.keypoint_metrics(...)["regression_error_px"]`, {h["protocol"]}):

| keypoints | one map for all videos (the target) | one map per video |
|---|---|---|
| **this model** | **{m["regression_error_px"]:.2f} px** | {m["per_video_regression_error_px"]:.2f} px |
| the same detector untrained (random weights, seed 0) | {m["untrained_regression_error_px"]:.2f} px | {m["untrained_per_video_regression_error_px"]:.2f} px |
| mean position (ignores the pose) | {m["baseline_error_px"]:.2f} px | |
| every keypoint exactly on the body centre (true positions) | {m["body_only_regression_error_px"]:.2f} px | {m["body_only_per_video_regression_error_px"]:.2f} px |
| every part tracked exactly (true positions) | 0.00 px | 0.00 px |

All creatures share one body plan (`fomm_tutorial.sprites.sprite_identity`: limb k is
attached at the same angle, jittered by at most 0.2 rad), so "limb 1" is the same place on
every creature and one linear map can serve them all. The body-centre row
(`fomm_tutorial.sprites.reference_keypoints`) knows where each creature is but not how its
body turns or its limbs swing: keypoints beat it only by tracking more than the body.
One map per video is fitted on that video's first half alone (21 coefficients per
coordinate from as few frames), so it overfits: its errors are larger, not a better score.

(matched keypoint-to-part distance, no regression: {m["matched_error_px"]:.2f} px; keypoints
need not sit on the part centres.)

Reconstruction (`evaluation.reconstruction`: every frame from the first one, absolute
motion, mean L1 in [0, 1] over all frames):

| | L1 |
|---|---|
| **this model** | **{m["reconstruction_l1"]:.4f}** ({m["reconstruction_ratio"]:.2f} x copying) |
| copy the first frame to every frame | {m["copy_first_frame_l1"]:.4f} |

Targets of issue 9: regression error <= 1.5 px ({"met" if m["regression_error_px"] <= 1.5 else "**not met**"}), reconstruction L1 <= 0.5 x
copying ({"met" if m["reconstruction_ratio"] <= 0.5 else "**not met**"}).

## Transfer

![transfer](transfer.png)

Held-out creature A (first column) animated by held-out creature B (`heldout_videos(2, 32,
first=100)`): top row B's frames 0, 8, 16, 24, 31; middle row the result with relative motion
(`make_animation(..., relative=True, adapt_scale=True)`); bottom row absolute motion.

Scored against the renderer's ground truth (A moving with B's motion,
`sprite_video(seed=<B's motion>, identity_seed=<A>)`; `fomm_tutorial.sprites.transfer_errors`:
{len(m["transfer"]["pairs"])} held-out pairs of 32 frames, mean L1 in [0, 1]):

| motion | source | this model | copy the source |
|---|---|---|---|
| absolute | A in its own first pose | **{m["transfer"]["absolute"]["l1"]:.4f}** ({m["transfer"]["absolute"]["ratio"]:.2f} x copying) | {m["transfer"]["absolute"]["l1_copy"]:.4f} |
| relative | A in B's first pose | **{m["transfer"]["relative"]["l1"]:.4f}** ({m["transfer"]["relative"]["ratio"]:.2f} x copying) | {m["transfer"]["relative"]["l1_copy"]:.4f} |

{info["stages"]}{info["ablation"]}{info["notes"]}## Limits

Sprites only: the model knows nothing of faces or bodies. 64 x 64 pixels. Trained without
the perceptual and adversarial losses, so predictions are slightly blurry at part edges.
"""


def _clip_commands(name: str, info: dict) -> str:
    """The commands of ``make talking-head-model`` (runs/NAME) for ``info["step"]``."""
    h = info["heldout"]
    return (
        'python -c "from fomm_tutorial.reference import sample_media; '
        "from fomm_tutorial.data import write_clip_dataset; "
        f"write_clip_dataset(sample_media('{h['clip']}.mp4'), 'runs/{name}/data', "
        f'{h["first"]}, size={info["size"]})"\n'
        f"fomm-tutorial train --config fomm_tutorial/configs/{name}.yaml "
        f"--data runs/{name}/data --out runs/{name}/run --simple-losses "
        f"--steps {info['step']} --checkpoint-every 250 --seed 0\n"
        f"python -m fomm_tutorial.pretrained runs/{name}/run --name {name}"
    )


def _clip_card(name, metrics, info) -> str:
    m, h = metrics, metrics["heldout_frames"]
    last = h["first"] + h["num_frames"] - 1
    previews = (
        "## Previews over the steps\n\n![previews](previews.png)\n\nTop row: six "
        "held-out frames; then the reconstruction of each from frame 0 after "
        f"{', '.join(str(s) for s in info['preview_steps'])} steps.\n\n"
        if info["preview_steps"]
        else ""
    )
    return f"""# Model card: `{name}`

`fomm_tutorial.pretrained.load_pretrained("{name}")` returns the keypoint detector and the
generator of this folder, ready for `fomm_tutorial.animation.make_animation`.

## What it is

The First Order Motion Model (this package's networks), the paper's full model:
{info["num_kp"]} keypoints, {info["motion"]}, occlusion map, multi-scale reconstruction
loss, equivariance of keypoint values and Jacobians under random affine + TPS warps, and
the original vox augmentation (flips, time flip, colour jitter). Trained on **one real
talking-head clip** (`fomm_tutorial.reference.sample_media("{h["clip"]}.mp4")`, from
lshug/first-order-model-tf, MIT) at {m["image_size"]} x {m["image_size"]}: frames
0-{h["first"] - 1} for training, frames {h["first"]}-{last} held out (never seen in
training). Narrow networks (config: `config.yaml`, the same as
`fomm_tutorial/configs/{name}.yaml`). Trained with the package's own `Trainer` through
`fomm-tutorial train --simple-losses`: the perceptual term compares pixels instead of
VGG19 features (ImageNet weights cannot be downloaded offline), and no discriminator.

## How to reproduce it

```
make talking-head-model TALKING_STEPS={info["step"]}
```

runs, from scratch, into `runs/{name}/`:

```
{info["commands"]}
```

* steps: **{info["step"]}** at batch {info["batch_size"]}, {info["lr_schedule"]},
  seed 0.
* wall time: {info["wall"]} of training on this machine's 2-core CPU
  ({info["cpu"]}), shared with other jobs; TensorFlow {info["tf_version"]}.
  Exported from `{info["checkpoint"]}` on {info["date"]}.

## Training curve

![loss curve](loss_curve.png)

`loss_curve.csv`: the losses averaged over windows of {info["window"]} steps; `total` is
the sum the optimizer minimised.

## Held-out evaluation

{h["protocol"]} (`fomm_tutorial.evaluation.reconstruction(..., source=frame 0)`, the
{h["num_frames"]} held-out frames):

| | L1 |
|---|---|
| **this model** | **{m["reconstruction_l1"]:.4f}** ({m["reconstruction_ratio"]:.2f} x copying) |
| the same networks untrained (random weights, seed 0) | {m["untrained_reconstruction_l1"]:.4f} |
| copy the source frame to every frame | {m["copy_first_frame_l1"]:.4f} |

Sharpness (`evaluation.sharpness`, variance of the Laplacian) of the reconstructions:
{m["sharpness_ratio"]:.2f} x that of the real frames. Target of issue 19: L1 <= 0.5 x
copying ({"met" if m["reconstruction_ratio"] <= 0.5 else "**not met**"}).

![held-out](heldout.png)

Top: six held-out frames; bottom: each reconstructed from frame 0 (first column).

{previews}## A person the model never saw

![new identity](new_identity.png)

The sample photo (`sample_media("source.png")`, first column) driven by the held-out
frames with relative motion. The model has seen one face only: it moves the photo's
regions where that face moves, but it has not learned what other faces look like.

{info["losses"]}{info["notes"]}## Limits

One person, one clip, {m["image_size"]} x {m["image_size"]} pixels: not a general face
model (the paper's vox model trained on thousands of identities). No perceptual or
adversarial loss, so predictions are softer than the paper's.
"""


def export_pretrained(
    run_dir,
    name: str = "sprites-64",
    out_dir=None,
    checkpoint: Optional[str] = None,
    num_videos: int = 16,
    num_frames: int = 64,
    window: int = 50,
    commands: str = "",
    data_params: Optional[dict] = None,
    notes: str = "",
    previews=(),
) -> Path:
    """Write the shipped-model folder of a ``fomm-tutorial train`` run.

    Reads ``run_dir/config.json`` and the newest checkpoint (or ``checkpoint``), writes
    ``config.yaml``, the two ``.weights.h5``, ``loss_curve.csv/png`` (TensorBoard
    scalars up to the checkpoint's step), ``metrics.json``
    (:func:`fomm_tutorial.sprites.evaluate_heldout` on ``num_videos`` held-out videos,
    with the untrained and mean-position baselines) and ``MODEL_CARD.md`` into
    ``out_dir`` (default ``WEIGHTS_DIR / name``; ``notes``: a markdown section of the
    card, e.g. the configurations tried). Returns ``out_dir``.

    A run on one clip split in time (:func:`fomm_tutorial.data.write_clip_dataset`, no
    ``sprites.json`` in the data folder) is scored on its held-out frames instead
    (``metrics.json`` with the untrained twin and copying the source) and gets
    ``heldout.png``, ``new_identity.png`` and, from the checkpoint prefixes
    ``previews``, ``previews.png``.
    """
    import tensorflow as tf
    import yaml

    from fomm_tutorial.checkpoint import WEIGHT_FILES
    from fomm_tutorial.config import load_config
    from fomm_tutorial.training import read_run_info, read_run_networks

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{run_dir / 'config.json'} not found: give the --out folder of "
            "`fomm-tutorial train`"
        )
    raw = json.loads((run_dir / "config.json").read_text())
    config = load_config(raw)
    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR / name
    out_dir.mkdir(parents=True, exist_ok=True)
    run_info = read_run_info(run_dir)
    init, freeze = run_info.get("init_from"), run_info.get("freeze_keypoints", False)
    # before anything is written: a shipped model it started from may be this folder
    earlier = _earlier_stage(init, window) if init else None
    models, prefix, step = read_run_networks(run_dir, config, checkpoint)
    for net in _NETWORKS:
        models[net].save_weights(str(out_dir / WEIGHT_FILES[net]))
    shipped = dict(raw)
    shipped["dataset_params"] = dict(raw["dataset_params"], root_dir=f"data/{name}")
    config_text = yaml.safe_dump(shipped, sort_keys=False, default_flow_style=None)
    (out_dir / "config.yaml").write_text(
        f"# The config `{name}` was trained with (run {run_dir.name}); see MODEL_CARD.md.\n"
        + config_text
    )
    values, rates, wall = _scalar_events(run_dir, step)
    if values:
        before = earlier["curve"] if earlier else None
        _write_curve(_curve(values, window), out_dir, window, name, before)
    hours = _training_seconds(wall) / 3600.0
    data_root = Path(raw["dataset_params"]["root_dir"])
    info = {
        "step": step,
        "checkpoint": f"{run_dir.name}/{Path(prefix).relative_to(run_dir)}",
        "batch_size": int(config["train_params"]["batch_size"]),
        "num_kp": int(config["model_params"]["common_params"]["num_kp"]),
        "motion": _motion(config),
        "lr_schedule": _lr_schedule(config),
        "wall_time_h": hours,
        "total_step": step + (int(init["step"]) if init else 0),
        "total_wall_time_h": hours + (earlier["wall_time_h"] if earlier else 0.0),
        "wall": f"**{hours:.2f} h**"
        if not earlier
        else f"**{hours + earlier['wall_time_h']:.2f} h** ({earlier['wall_time_h']:.2f} h "
        f"before the warm start, {hours:.2f} h after it)",
        "cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "tf_version": tf.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "window": window,
        "notes": f"## Notes\n\n{notes.strip()}\n\n" if notes.strip() else "",
    }
    if (data_root / "sprites.json").is_file() or data_params:
        data = data_params or json.loads((data_root / "sprites.json").read_text())
        metrics = _sprite_metrics(models, config, num_videos, num_frames)
        info["stages"] = ""
        if init:
            before = earlier["metrics"]
            if before is None:  # a run's checkpoint: measured here, as this model
                from fomm_tutorial.training import _run_config_file

                first = load_config(
                    json.loads(_run_config_file(init["source"]).read_text())
                )
                nets, _, _ = read_run_networks(None, first, init["source"])
                before = _sprite_metrics(nets, first, num_videos, num_frames)
            info["stages"] = _stages_section(init, before, metrics, step)
            metrics["init_metrics"] = headline_metrics(before)
        _write_transfer(
            models, out_dir, int(config["dataset_params"]["frame_shape"][0])
        )
        ablation = out_dir / _ABLATION
        info["ablation"] = (
            _ablation_section(json.loads(ablation.read_text()))
            if ablation.is_file()
            else ""
        )
        info.update(
            commands=commands.strip() or _commands(name, data, step, init, freeze),
            start=_start(init, freeze),
            make_args=(f"SPRITES_INIT_STEPS={init['step']} " if init else "")
            + f"SPRITES_STEPS={step}",
            data=data,
            num_train_videos=_count(data_root / "train"),
            num_test_videos=_count(data_root / "test"),
        )
        card = _card(name, config_text, metrics, info)
    else:  # one clip split in time (data.write_clip_dataset)
        metrics = _clip_metrics(models, config, data_root)
        # checkpoint prefixes .../ckpt-<step>, in step order
        previews = sorted((int(Path(p).name.split("-")[-1]), str(p)) for p in previews)
        _write_clip_figures(models, config, out_dir, data_root, previews)
        info.update(
            heldout=metrics["heldout_frames"],
            size=metrics["image_size"],
            preview_steps=[s for s, _ in previews],
        )
        info["commands"] = commands.strip() or _clip_commands(name, info)
        losses = out_dir / _LOSSES
        info["losses"] = (
            _losses_section(json.loads(losses.read_text())) if losses.is_file() else ""
        )
        card = _clip_card(name, metrics, info)
    keys = ("step", "batch_size", "wall_time_h", "checkpoint")
    metrics["training"] = {k: info[k] for k in keys}
    metrics["training"]["lr_decay_steps"] = _lr_decay_steps(rates)
    if init:  # a warm start: the stage it started from, and both stages together
        metrics["training"]["init_from"] = {
            **init,
            "wall_time_h": earlier["wall_time_h"],
        }
    metrics["training"].update(
        total_step=info["total_step"], total_wall_time_h=info["total_wall_time_h"]
    )
    if "data" in info:
        metrics["training"]["data"] = info["data"]
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (out_dir / _CARD).write_text(card)
    return out_dir


def _count(folder: Path) -> int:
    return len(list(folder.iterdir())) if folder.is_dir() else 0


def _main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m fomm_tutorial.pretrained",
        description="Export a `fomm-tutorial train` run as a shipped model folder.",
    )
    parser.add_argument(
        "run_dir", nargs="?", help="the --out folder of fomm-tutorial train"
    )
    parser.add_argument(
        "--ablation",
        nargs="+",
        metavar="ROW=RUN_DIR",
        help="score the sprite ablation instead: one run folder per row "
        f"({', '.join(ABLATION_ROWS)}), read at --step; writes ablation.json",
    )
    parser.add_argument(
        "--losses",
        nargs="+",
        metavar="LOSS=RUN_DIR",
        help="compare runs on one clip that differ in --simple-losses (l1, ms-ssim, "
        "hed-vgg16), read at --step, on the held-out frames of --data; writes "
        "losses.json",
    )
    parser.add_argument("--data", default=None, help="the clip dataset (--losses)")
    parser.add_argument(
        "--step", type=int, default=None, help="the comparison's step (every row)"
    )
    parser.add_argument("--name", default="sprites-64")
    parser.add_argument(
        "--out", default=None, help="default: the package's weights/NAME"
    )
    parser.add_argument("--checkpoint", default=None, help="default: the newest one")
    parser.add_argument("--num-videos", type=int, default=16)
    parser.add_argument(
        "--commands", default="", help="text of the commands, for the card"
    )
    parser.add_argument(
        "--notes-file",
        default=None,
        help="markdown notes for the card (e.g. what was tried)",
    )
    parser.add_argument(
        "--previews",
        nargs="*",
        default=(),
        metavar="PREFIX",
        help="checkpoints .../ckpt-<step> to preview (a model trained on one clip)",
    )
    args = parser.parse_args(argv)
    for flag, pairs in (("--ablation", args.ablation), ("--losses", args.losses)):
        if not pairs:
            continue
        rows = dict(a.split("=", 1) for a in pairs if "=" in a)
        if len(rows) != len(pairs) or args.step is None:
            parser.error(f"{flag} takes ROW=RUN_DIR pairs and needs --step")
        if flag == "--ablation":
            print(ablation_table(sprite_ablation(rows, args.step, args.out)))
        elif args.data is None:
            parser.error("--losses needs --data (the clip dataset the runs trained on)")
        else:
            print(loss_table(loss_comparison(rows, args.step, args.data, args.out)))
        return 0
    if args.run_dir is None:
        parser.error("give the run folder to export (or --ablation, --losses)")
    out = export_pretrained(
        args.run_dir,
        args.name,
        args.out,
        checkpoint=args.checkpoint,
        num_videos=args.num_videos,
        commands=args.commands,
        notes=Path(args.notes_file).read_text() if args.notes_file else "",
        previews=args.previews,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    if "heldout_frames" in metrics:
        print(
            f"{out}: step {metrics['training']['step']}, held-out reconstruction L1 "
            f"{metrics['reconstruction_l1']:.4f} = "
            f"{metrics['reconstruction_ratio']:.2f} x copying the source "
            f"({metrics['copy_first_frame_l1']:.4f})"
        )
        return 0
    print(
        f"{out}: step {metrics['training']['step']}, keypoint regression "
        f"{metrics['regression_error_px']:.2f} px (untrained "
        f"{metrics['untrained_regression_error_px']:.2f}, mean position "
        f"{metrics['baseline_error_px']:.2f}); reconstruction L1 "
        f"{metrics['reconstruction_l1']:.4f} vs copy-first "
        f"{metrics['copy_first_frame_l1']:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
