"""Procedural articulated sprites: a dataset with ground-truth part positions, its small
training configuration, and the held-out protocol of the shipped ``sprites-64`` model.

Explained in chapter 9 (book/09_training_loop.ipynb).

A sprite is a body (part 0) with ``num_parts - 1`` limbs, drawn over a muted textured
background; its **identity** (shapes, colours, textures, background) comes from
``identity_seed`` and its smooth **motion** from ``seed``. Positions are the true part
centres ``(T, K, 2)``, (x, y) in [-1, 1] in the ``make_coordinate_grid`` convention, so
learned keypoints can be scored against them
(:func:`fomm_tutorial.evaluation.keypoint_metrics`).

* :func:`sprite_video` -- one video in memory; :func:`write_sprite_dataset` -- a dataset
  in the original layout (``train/``, ``test/``) plus ``positions/``;
  :func:`load_sprite_positions`.
* :func:`sprite_config` -- a small 64 x 64 config; :func:`train_sprites_demo` -- the
  chapter's few-hundred-step run with the package's
  :class:`~fomm_tutorial.training.Trainer`.
* :func:`sprite_keypoints` -- keypoints and true positions of a written split;
  :func:`heldout_videos` / :func:`evaluate_heldout` -- the shipped model's protocol:
  videos whose motion **and** identity seeds were never trained on, one linear map
  fitted on the first half of every video and scored on the second halves,
  reconstruction L1 against copying the first frame.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from fomm_tutorial import media
from fomm_tutorial.data import list_videos, make_dataset, read_frames
from fomm_tutorial.visualization import hsv_to_rgb

PathLike = Union[str, os.PathLike]

__all__ = [
    "SpriteIdentity",
    "sprite_identity",
    "sprite_motion",
    "render_sprites",
    "sprite_video",
    "sprite_angles",
    "write_sprite_dataset",
    "load_sprite_positions",
    "sprite_config",
    "train_sprites_demo",
    "sprite_keypoints",
    "training_identity_seeds",
    "heldout_videos",
    "evaluate_heldout",
    "transfer_errors",
    "reference_keypoints",
    "HELDOUT_SEEDS",
]


# ======================================================================================
# Procedural articulated sprites with ground truth
# ======================================================================================
class SpriteIdentity(dict):
    """Appearance of one sprite (a dict): part shapes, colours, textures, background."""


def _rgb(hue, saturation, value) -> np.ndarray:
    # float32 (3,) colour; hsv_to_rgb gives the numbers of colorsys, so datasets written
    # before the move are unchanged
    return hsv_to_rgb(hue, saturation, value).astype(np.float32)


def sprite_identity(seed: int, num_parts: int = 4) -> SpriteIdentity:
    """Random appearance: a body (part 0) and ``num_parts - 1`` limbs around it.

    Every creature has the same body plan: limb ``k`` is attached at angle
    ``2 pi (k - 1) / (num_parts - 1) + pi / 2`` (``+-0.2`` rad), so part ``k`` means the
    same thing on every identity. Sizes are in normalised units ([-1, 1] image
    coordinates), so any resolution works. Part colours are saturated, part ``k`` with
    hue near ``k / num_parts`` (distinct); the background is muted.
    """
    if num_parts < 1:
        raise ValueError(f"num_parts must be >= 1, got {num_parts}")
    rng = np.random.default_rng([int(seed), 1])
    # Part k keeps its hue band on every creature (k / num_parts, +-0.05), as a face
    # keeps dark eyes and red lips: appearance says which part is which, the same way
    # for every identity. (With a random hue per creature the keypoints followed
    # colours, not parts.)
    hues = (
        np.arange(num_parts) / num_parts + rng.uniform(-0.05, 0.05, num_parts)
    ) % 1.0
    colours = np.stack(
        [_rgb(hh, rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0)) for hh in hues]
    )
    n_limbs = num_parts - 1
    body = np.array(
        [rng.uniform(0.24, 0.32), rng.uniform(0.17, 0.24)]
    )  # semi-axes (x, y)
    limbs = (
        np.stack(
            [
                np.array([rng.uniform(0.20, 0.26), rng.uniform(0.09, 0.12)])
                for _ in range(n_limbs)
            ]
        )
        if n_limbs
        else np.zeros((0, 2))
    )
    # One body plan for every creature: limb k is attached at the same angle (jittered a
    # little), so "limb k" is the same place on every identity and one linear map from
    # keypoints to part centres can serve all of them (the held-out protocol).
    base = 2 * np.pi * np.arange(n_limbs) / max(n_limbs, 1) + np.pi / 2
    attach = base + rng.uniform(-0.2, 0.2, size=n_limbs)
    bg_hue = rng.random()
    return SpriteIdentity(
        num_parts=num_parts,
        axes=np.concatenate([body[None], limbs]).astype(np.float32),  # (K, 2)
        shape=np.array(
            [0] + list(rng.integers(0, 2, size=n_limbs))
        ),  # 0 ellipse, 1 box
        colours=colours.astype(np.float32),  # (K, 3)
        texture_freq=rng.uniform(3.0, 6.0, size=(num_parts, 2)).astype(np.float32),
        texture_phase=rng.uniform(0, 2 * np.pi, size=(num_parts, 2)).astype(np.float32),
        attach=attach.astype(np.float32),  # (K-1,)
        bg_colours=np.stack(
            [
                _rgb(bg_hue + d, 0.25, 0.45 + 0.15 * i)
                for i, d in enumerate((0.0, 0.1, 0.2))
            ]
        ),
        bg_freq=rng.uniform(1.0, 3.0, size=(3, 2)).astype(np.float32),
        bg_phase=rng.uniform(0, 2 * np.pi, size=(3,)).astype(np.float32),
    )


def _smooth(rng, t, n, amp, periods=(24.0, 96.0)):
    """``(t, n)`` smooth signals: sums of 3 random sinusoids with periods of ``periods``
    frames (speed per frame independent of the video length), max |value| <= amp."""
    tt = np.arange(t, dtype=np.float64)[:, None]
    out = np.zeros((t, n))
    for _ in range(3):
        f = 1.0 / rng.uniform(*periods, size=n)
        p = rng.uniform(0, 2 * np.pi, size=n)
        out += np.sin(2 * np.pi * f * tt + p) / 3.0
    return amp * out


def sprite_motion(seed: int, num_frames: int, identity: SpriteIdentity) -> dict:
    """Smooth poses: translation ``(T, 2)``, body angle ``(T,)``, limbs ``(T, K-1)``."""
    rng = np.random.default_rng([int(seed), 2])
    k = identity["num_parts"] - 1
    return {
        "translation": _smooth(rng, num_frames, 2, 0.35).astype(np.float32),
        "angle": _smooth(rng, num_frames, 1, 0.6)[:, 0].astype(np.float32),
        "limb_angle": _smooth(rng, num_frames, max(k, 1), 0.7)[:, :k].astype(
            np.float32
        ),
    }


def _part_poses(identity, motion):
    """Part centres ``(T, K, 2)`` (x, y) in [-1, 1] and absolute angles ``(T, K)``."""
    c0 = motion["translation"]
    a0 = motion["angle"]
    T = len(a0)
    K = identity["num_parts"]
    centres = np.zeros((T, K, 2), np.float32)
    angles = np.zeros((T, K), np.float32)
    centres[:, 0], angles[:, 0] = c0, a0
    ax = identity["axes"]
    for j in range(1, K):
        phi = identity["attach"][j - 1] + a0  # joint direction on body
        # joint on the body's ellipse rim (body frame), rotated
        jx, jy = (
            ax[0, 0] * 0.85 * np.cos(identity["attach"][j - 1]),
            ax[0, 1] * 0.85 * np.sin(identity["attach"][j - 1]),
        )
        ca, sa = np.cos(a0), np.sin(a0)
        joint = c0 + np.stack([ca * jx - sa * jy, sa * jx + ca * jy], -1)
        theta = phi + motion["limb_angle"][:, j - 1]
        centres[:, j] = joint + ax[j, 0] * np.stack([np.cos(theta), np.sin(theta)], -1)
        angles[:, j] = theta
    return centres, angles


def _grid(h, w):
    x = (
        np.linspace(-1.0, 1.0, w, dtype=np.float32)
        if w > 1
        else np.zeros(1, np.float32)
    )
    y = (
        np.linspace(-1.0, 1.0, h, dtype=np.float32)
        if h > 1
        else np.zeros(1, np.float32)
    )
    return np.meshgrid(x, y)


def render_sprites(
    identity: SpriteIdentity,
    centres: np.ndarray,
    angles: np.ndarray,
    size,
    return_masks: bool = False,
):
    """Draw one frame: ``centres`` (K, 2), ``angles`` (K,), ``size`` int or (h, w).

    Returns ``(H, W, 3)`` float32 (and ``(K, H, W)`` soft part masks, each unoccluded,
    with ``return_masks``). Pixel ``(i, j)`` sits at
    ``x = 2 j/(W-1) - 1, y = 2 i/(H-1) - 1`` (the ``make_coordinate_grid`` convention),
    so ``centres`` are keypoints in the package convention.
    """
    h, w = media.normalize_size(size)
    X, Y = _grid(h, w)
    px = 2.0 / max(w - 1, 1)  # one pixel in normalised units (for soft edges)
    bg = np.zeros((h, w, 3), np.float32)
    for i in range(3):
        fx, fy = identity["bg_freq"][i]
        wave = 0.5 + 0.5 * np.sin(np.pi * (fx * X + fy * Y) + identity["bg_phase"][i])
        bg += wave[..., None] * identity["bg_colours"][i] / 1.5
    image = np.clip(bg, 0, 1)
    masks = []
    for j in range(identity["num_parts"]):
        ca, sa = np.cos(angles[j]), np.sin(angles[j])
        dx, dy = X - centres[j, 0], Y - centres[j, 1]
        u, v = ca * dx + sa * dy, -sa * dx + ca * dy  # part-local coordinates
        a, b = identity["axes"][j]
        if identity["shape"][j] == 0:
            r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
            dist = (r - 1.0) * min(a, b)  # approx signed distance
        else:
            dist = np.maximum(np.abs(u) - a, np.abs(v) - b)
        alpha = np.clip(0.5 - dist / px, 0.0, 1.0).astype(np.float32)
        fu, fv = identity["texture_freq"][j]
        pu, pv = identity["texture_phase"][j]
        tex = 0.8 + 0.2 * np.sin(fu * np.pi * u / a + pu) * np.sin(
            fv * np.pi * v / b + pv
        )
        colour = np.clip(tex[..., None] * identity["colours"][j], 0, 1)
        image = image * (1 - alpha[..., None]) + colour * alpha[..., None]
        masks.append(alpha)
    image = image.astype(np.float32)
    if return_masks:
        return image, np.stack(masks)
    return image


def sprite_video(
    num_frames: int = 32,
    size=64,
    num_parts: int = 4,
    seed: int = 0,
    identity_seed: Optional[int] = None,
    return_masks: bool = False,
):
    """An articulated-sprite video in memory.

    Returns ``frames`` ``(T, H, W, 3)`` float32 in [0, 1] and ``positions``
    ``(T, K, 2)`` float32: the true part centres in [-1, 1], (x, y) (part 0 = body).
    With ``return_masks`` also ``masks`` ``(T, K, H, W)``. Appearance comes from
    ``identity_seed`` (default ``seed``), motion from ``seed``; the same seeds give the
    same video at any resolution.
    """
    identity = sprite_identity(
        seed if identity_seed is None else identity_seed, num_parts
    )
    motion = sprite_motion(seed, num_frames, identity)
    centres, angles = _part_poses(identity, motion)
    frames, masks = [], []
    for t in range(num_frames):
        f, m = render_sprites(identity, centres[t], angles[t], size, return_masks=True)
        frames.append(f)
        masks.append(m)
    frames = np.stack(frames)
    if return_masks:
        return frames, centres, np.stack(masks)
    return frames, centres


def sprite_angles(
    num_frames: int = 32,
    num_parts: int = 4,
    seed: int = 0,
    identity_seed: Optional[int] = None,
) -> np.ndarray:
    """The true angle of every part ``(T, K)`` in radians, of the video
    :func:`sprite_video` draws with the same arguments: part 0 the body's turn, part
    ``k`` its limb's direction. Measured in the image's (x, y) axes (y down), as the
    rotation ``[[cos, -sin], [sin, cos]]`` of a part turns its local frame: the truth
    for the rotation in a learned Jacobian (chapter 10)."""
    identity = sprite_identity(
        seed if identity_seed is None else identity_seed, num_parts
    )
    return _part_poses(identity, sprite_motion(seed, num_frames, identity))[1]


def write_sprite_dataset(
    root: PathLike,
    num_videos: int = 20,
    num_frames: int = 32,
    size=64,
    num_parts: int = 4,
    seed: int = 0,
    num_identities: Optional[int] = None,
    test_fraction: float = 0.2,
    video_format: str = "png",
) -> Path:
    """Write a sprite dataset in the original layout and return ``root``.

    ``root/train/<id>#<n>.mp4/0000000.png...`` (``video_format="png"``: folders of PNG
    frames, named ``.mp4`` as the original taichi/vox loaders do, so ``id_sampling``
    works) or real ``.mp4`` files (``video_format="mp4"``; lossy). ``root/test/``
    likewise. Ground truth: ``root/positions/<split>/<name>.npy`` ``(T, K, 2)`` float32,
    (x, y) in [-1, 1]; plus ``root/sprites.json`` (the arguments). Identities
    (appearance) are shared between the splits -- test videos are new motions --
    ``id<i>`` with ``i = video % num_identities`` (default ``num_videos // 4``); the
    last ``ceil(test_fraction * num_videos)`` videos go to test, so with at least as
    many test videos as identities every identity is tested.
    """
    if video_format not in ("png", "mp4"):
        raise ValueError(f"video_format must be 'png' or 'mp4', got {video_format!r}")
    root = Path(root)
    num_identities = num_identities or max(1, num_videos // 4)
    n_test = (
        min(num_videos - 1, int(math.ceil(test_fraction * num_videos)))
        if test_fraction > 0 and num_videos > 1
        else 0
    )
    hw = media.normalize_size(size)
    for i in range(num_videos):
        split = "test" if i >= num_videos - n_test else "train"
        ident = i % num_identities
        name = f"id{ident:04d}#{i:05d}.mp4"
        frames, pos = sprite_video(
            num_frames,
            hw,
            num_parts,
            seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]),
            identity_seed=int(
                np.random.SeedSequence([seed, 10**6 + ident]).generate_state(1)[0]
            ),
        )
        (root / split).mkdir(parents=True, exist_ok=True)
        if video_format == "png":
            from PIL import Image

            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for t, frame in enumerate(media._to_uint8(frames, str(folder))):
                Image.fromarray(frame).save(folder / f"{t:07d}.png")
        else:
            media.write_video(root / split / name, frames, fps=25)
        (root / "positions" / split).mkdir(parents=True, exist_ok=True)
        np.save(root / "positions" / split / f"{name}.npy", pos.astype(np.float32))
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
    (root / "sprites.json").write_text(
        json.dumps(
            dict(
                num_videos=num_videos,
                num_frames=num_frames,
                size=list(hw),
                num_parts=num_parts,
                seed=seed,
                num_identities=num_identities,
                test_fraction=test_fraction,
                video_format=video_format,
            ),
            indent=1,
        )
    )
    return root


def load_sprite_positions(root: PathLike, split: str, name: str) -> np.ndarray:
    """True part positions ``(T, K, 2)`` of video ``name`` of a sprite dataset."""
    path = Path(root) / "positions" / split / f"{name}.npy"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no ground-truth positions (is {root} a sprite dataset "
            "written by write_sprite_dataset?)"
        )
    return np.load(path)


# ======================================================================================
# Small configuration and the chapter's training run
# ======================================================================================
def sprite_config(
    size: int = 64,
    num_kp: int = 4,
    num_epochs: int = 1,
    batch_size: int = 8,
    num_repeats: int = 1,
    root_dir: str = "data/sprites",
) -> dict:
    """A small config for 64x64 sprites: few keypoints, narrow networks, no GAN.

    The original schema (:func:`fomm_tutorial.config.load_config` accepts it);
    ``root_dir`` is where :func:`write_sprite_dataset` wrote the data. The shipped
    model's config, ``configs/sprites-64.yaml``, is this one with ``num_kp=10``.
    """
    return {
        "dataset_params": {
            "root_dir": str(root_dir),
            "frame_shape": [size, size, 3],
            "id_sampling": False,
            "augmentation_params": {
                "flip_param": {"horizontal_flip": False, "time_flip": True}
            },
        },
        "model_params": {
            "common_params": {
                "num_kp": num_kp,
                "num_channels": 3,
                "estimate_jacobian": True,
            },
            "kp_detector_params": {
                "temperature": 0.1,
                "block_expansion": 16,
                "max_features": 64,
                "scale_factor": 0.5,
                "num_blocks": 3,
            },
            "generator_params": {
                "block_expansion": 16,
                "max_features": 64,
                "num_down_blocks": 2,
                "num_bottleneck_blocks": 2,
                "estimate_occlusion_map": True,
                "dense_motion_params": {
                    "block_expansion": 16,
                    "max_features": 64,
                    "num_blocks": 3,
                    "scale_factor": 0.5,
                },
            },
            "discriminator_params": {
                "scales": [1],
                "block_expansion": 8,
                "max_features": 32,
                "num_blocks": 4,
                "sn": True,
                "use_kp": False,
            },
        },
        "train_params": {
            "num_epochs": num_epochs,
            "num_repeats": num_repeats,
            "epoch_milestones": [],
            "lr_generator": 2e-4,
            "lr_discriminator": 2e-4,
            "lr_kp_detector": 2e-4,
            "batch_size": batch_size,
            "scales": [1, 0.5, 0.25],
            "checkpoint_freq": 0,
            "transform_params": {
                "sigma_affine": 0.05,
                "sigma_tps": 0.005,
                "points_tps": 5,
            },
            "loss_weights": {
                "generator_gan": 0,
                "discriminator_gan": 1,
                "feature_matching": [10, 10, 10, 10],
                "perceptual": [10, 10, 10, 10, 10],
                "equivariance_value": 10,
                "equivariance_jacobian": 10,
            },
        },
    }


def train_sprites_demo(
    out_dir,
    steps: int = 300,
    seed: int = 0,
    size: int = 64,
    num_kp: int = 4,
    batch_size: int = 8,
    num_videos: int = 24,
    num_frames: int = 32,
    simple_losses: bool = True,
    resume: bool = True,
    progress: bool = False,
):
    """Train a small model on a procedural sprite dataset, deterministically.

    Writes the sprites to ``out_dir/sprites`` (once) and trains ``steps`` steps into
    ``out_dir/log`` (resuming when a checkpoint is there, so a second call with the same
    arguments is free). ``simple_losses`` (default): multi-scale L1 + equivariance
    (the CPU configuration of :class:`fomm_tutorial.losses.GeneratorFullModel`);
    ``False``: the original losses with VGG19.
    Returns ``(trainer, history, config, data_root)``; the models are
    ``trainer.models``.
    """
    out_dir = Path(out_dir)
    root = out_dir / "sprites"
    if not (root / "sprites.json").is_file():
        write_sprite_dataset(
            root, num_videos=num_videos, num_frames=num_frames, size=size, seed=seed
        )
    n_train = len(list_videos(root / "train"))
    num_repeats = max(1, int(np.ceil(batch_size * 8 / n_train)))
    cfg = sprite_config(
        size, num_kp, num_epochs=10**6, batch_size=batch_size, num_repeats=num_repeats
    )
    cfg["dataset_params"]["root_dir"] = str(root)
    import keras

    from fomm_tutorial.training import Trainer

    keras.utils.set_random_seed(seed)

    def dataset_fn(epoch):
        return make_dataset(
            cfg, batch_size=batch_size, seed=seed, epoch=epoch, num_parallel_calls=1
        )

    trainer = Trainer(
        cfg,
        out_dir / "log",
        dataset_fn,
        seed=seed,
        simple_losses=simple_losses,
        progress=progress,
        image_every=100,
    )
    history = trainer.train(max_steps=steps, resume=resume)
    return trainer, history, cfg, root


# ======================================================================================
# Scoring keypoints against the true part positions
# ======================================================================================
def sprite_keypoints(kp_detector, root, split: str, batch_size: int = 32):
    """Keypoints and true positions of every video of a split of a sprite dataset.

    Returns two lists with one array per video (sorted names): detected keypoints
    ``(T, K, 2)`` and true part positions ``(T, P, 2)``, ready for
    :func:`fomm_tutorial.evaluation.keypoint_metrics` (``np.concatenate`` them for all
    frames).
    """
    from fomm_tutorial.evaluation import detect_keypoints

    root = Path(root)
    size = json.loads((root / "sprites.json").read_text())["size"]
    kps, gts = [], []
    for name in list_videos(root / split):
        video = read_frames(root / split / name, (size[0], size[1], 3))
        kps.append(detect_keypoints(video, kp_detector, batch_size=batch_size))
        gts.append(load_sprite_positions(root, split, name).astype(np.float32))
    return kps, gts


# ======================================================================================
# The held-out protocol of the shipped model
# ======================================================================================
#: Held-out videos of the shipped model's evaluation: video ``i`` has motion seed
#: ``motion + i`` and identity seed ``identity + i``. Far from the seeds of
#: :func:`write_sprite_dataset` (``SeedSequence`` draws; :func:`training_identity_seeds`
#: checks that none collides).
HELDOUT_SEEDS = {"motion": 1_000_000, "identity": 2_000_000}


def training_identity_seeds(num_identities: int, seed: int = 0) -> np.ndarray:
    """Identity seeds (num_identities,) of :func:`write_sprite_dataset` for ``seed``."""
    return np.array(
        [
            int(np.random.SeedSequence([seed, 10**6 + i]).generate_state(1)[0])
            for i in range(num_identities)
        ],
        np.int64,
    )


def heldout_videos(
    num_videos: int = 16,
    num_frames: int = 64,
    size=64,
    num_parts: int = 4,
    first: int = 0,
    seeds: Optional[dict] = None,
):
    """The held-out sprite videos ``first .. first + num_videos - 1``.

    Video ``i`` is ``sprite_video(num_frames, size, num_parts, seed=motion + i,
    identity_seed=identity + i)`` with ``seeds`` (default :data:`HELDOUT_SEEDS`).
    Returns ``(videos, positions, seed_list)``: lists of ``(T, H, W, 3)`` and
    ``(T, P, 2)`` arrays and the ``{"seed", "identity_seed"}`` of each video.
    """
    seeds = dict(HELDOUT_SEEDS if seeds is None else seeds)
    videos, positions, used = [], [], []
    for i in range(first, first + int(num_videos)):
        kw = {"seed": seeds["motion"] + i, "identity_seed": seeds["identity"] + i}
        frames, pos = sprite_video(num_frames, size, num_parts, **kw)
        videos.append(frames)
        positions.append(pos)
        used.append(kw)
    return videos, positions, used


def evaluate_heldout(
    kp_detector,
    generator=None,
    videos: Optional[Sequence[np.ndarray]] = None,
    positions: Optional[Sequence[np.ndarray]] = None,
    image_size: Optional[int] = None,
    batch_size: int = 16,
) -> dict:
    """The shipped model's metrics on held-out sprite videos (:func:`heldout_videos`).

    Keypoints: :func:`fomm_tutorial.evaluation.keypoint_metrics` with one linear map for
    all videos, fitted on the first half of every video's frames and scored on the
    second halves (``regression_error_px``; ``baseline_error_px`` predicts every part at
    its mean position). Reconstruction (with a ``generator``):
    :func:`fomm_tutorial.evaluation.reconstruction` (``l1``) against copying the first
    frame to every frame (``l1_copy_first``). Returns
    ``{"keypoints": ..., "reconstruction": {"l1", "l1_copy_first", "ratio"}}``.
    """
    from fomm_tutorial.evaluation import (
        detect_keypoints,
        keypoint_metrics,
        reconstruction,
    )

    if videos is None:
        videos, positions, _ = heldout_videos()
    if positions is None or len(positions) != len(videos):
        raise ValueError(
            "evaluate_heldout: give one positions array (T, P, 2) per video "
            "(sprite_video returns both)"
        )
    size = image_size or int(videos[0].shape[1])
    kps = [detect_keypoints(v, kp_detector, batch_size=batch_size) for v in videos]
    result = {"keypoints": keypoint_metrics(kps, positions, image_size=size)}
    if generator is not None:
        rec = reconstruction(videos, kp_detector, generator, batch_size=batch_size)
        result["reconstruction"] = {
            "l1": rec["l1"],
            "l1_copy_first": rec["l1_copy_first"],
            "ratio": rec["l1"] / rec["l1_copy_first"],
        }
    return result


def transfer_errors(
    kp_detector,
    generator,
    num_pairs: int = 8,
    num_frames: int = 32,
    size=64,
    first: int = 200,
    seeds: Optional[dict] = None,
    batch_size: int = 16,
    return_videos: bool = False,
) -> dict:
    """Cross-identity motion transfer scored against the renderer's ground truth.

    Pair ``j`` takes held-out creature A (video ``first + 2j`` of :func:`heldout_videos`)
    and held-out creature B (video ``first + 2j + 1``). The truth, A moving with B's
    motion, is ``sprite_video(seed=<B's motion>, identity_seed=<A's identity>)``: the
    renderer can draw it, no real dataset can.

    * ``"absolute"``: source = A in its own first pose, driving = B's video, absolute
      keypoints (``make_animation(..., relative=False)``).
    * ``"relative"``: source = A in B's first pose (the truth's frame 0), relative motion
      with the convex-hull scale (``relative=True, adapt_scale=True``), the original
      demo's mode.

    Each: ``{"l1", "l1_copy", "ratio"}``, mean L1 in [0, 1] over every frame of every
    pair, against copying the source to every frame (``l1_copy``); ``ratio = l1 /
    l1_copy``. Returns ``{"absolute", "relative", "pairs": [{"source", "driving"}]}``
    with the seeds of each pair; with ``return_videos`` also ``"videos"``: per pair
    ``{"driving", "truth", "absolute", "relative"}`` ``(T, H, W, 3)`` float32 arrays.
    """
    from fomm_tutorial.animation import make_animation

    seeds = dict(HELDOUT_SEEDS if seeds is None else seeds)
    sums = {m: {"l1": [], "l1_copy": []} for m in ("absolute", "relative")}
    pairs, pair_videos = [], []
    for j in range(int(num_pairs)):
        a, b = first + 2 * j, first + 2 * j + 1
        id_a = seeds["identity"] + a
        own, _ = sprite_video(
            num_frames, size, seed=seeds["motion"] + a, identity_seed=id_a
        )
        driving, _ = sprite_video(
            num_frames,
            size,
            seed=seeds["motion"] + b,
            identity_seed=seeds["identity"] + b,
        )
        truth, _ = sprite_video(
            num_frames, size, seed=seeds["motion"] + b, identity_seed=id_a
        )
        pairs.append(
            {
                "source": {"seed": seeds["motion"] + a, "identity_seed": id_a},
                "driving": {
                    "seed": seeds["motion"] + b,
                    "identity_seed": seeds["identity"] + b,
                },
            }
        )
        pair_videos.append({"driving": driving, "truth": truth})
        for mode, source in (("absolute", own[0]), ("relative", truth[0])):
            relative = mode == "relative"
            pred = make_animation(
                source,
                driving,
                kp_detector,
                generator,
                relative=relative,
                adapt_scale=relative,
                batch_size=batch_size,
                progress=False,
            )
            pair_videos[-1][mode] = pred
            truth64 = truth.astype(np.float64)
            sums[mode]["l1"].append(np.abs(pred - truth64).mean(axis=(1, 2, 3)))
            sums[mode]["l1_copy"].append(
                np.abs(source[None] - truth64).mean(axis=(1, 2, 3))
            )
    result = {"pairs": pairs}
    if return_videos:
        result["videos"] = pair_videos
    for mode, v in sums.items():
        l1 = float(np.concatenate(v["l1"]).mean())
        copy = float(np.concatenate(v["l1_copy"]).mean())
        result[mode] = {"l1": l1, "l1_copy": copy, "ratio": l1 / copy}
    return result


def reference_keypoints(positions: Sequence[np.ndarray], image_size: int = 64) -> dict:
    """Keypoint metrics of an ideal detector that sees only the body: the yardstick of
    :func:`evaluate_heldout` between "mean position" and a model that tracks the limbs.

    ``"body_only"``: every keypoint exactly on the body centre (part 0). It knows where
    the creature is, but not how its body turns or its limbs swing; one linear map from
    it to the part centres works for all creatures only because they share one body plan
    (:func:`sprite_identity`). ``positions``: one ``(T, P, 2)`` array per video. Returns
    ``{"body_only": keypoint_metrics}``.
    """
    from fomm_tutorial.evaluation import keypoint_metrics

    body = [np.repeat(p[:, :1], p.shape[1], axis=1) for p in positions]
    return {"body_only": keypoint_metrics(body, list(positions), image_size=image_size)}
