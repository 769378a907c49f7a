"""Datasets: the original layout (``frames_dataset.py``), its augmentations, a ``tf.data`` pipeline.

The procedural "articulated sprites" dataset with ground-truth part positions is in
:mod:`fomm_tutorial.sprites`.

Layout (spec 7.1/7.2). ``root_dir`` holds videos -- folders of frames, ``.mp4/.mov/.avi/.gif``,
or ``.png/.jpg`` strips -- either in ``root_dir/train`` and ``root_dir/test`` (predefined split)
or directly in ``root_dir`` (a deterministic 80/20 split: seeded permutation of the sorted
names, ``ceil(0.2 n)`` test videos, like ``sklearn.train_test_split(test_size=0.2)``).

``id_sampling``: names ``<id>#<anything>`` (e.g. ``id10001#7w0IBEWc9Qw#000993#001143.mp4``);
training items are the identities, and each item picks one video of that identity at random.
The original globs only ``<id>*.mp4``; here any video name starting with ``<id>#`` counts, and a
name without ``#`` raises a ``ValueError`` naming it (instead of numpy's "'a' cannot be empty").

Items (NHWC, float32 in [0, 1]):

* train: ``{"source": (H, W, 3), "driving": (H, W, 3), "name": str}`` -- two frames drawn with
  replacement, sorted (``source`` is the earlier; may be the same frame), augmented together;
* test: ``{"video": (T, H, W, 3), "name": str}``.

Every random draw takes an explicit ``numpy.random.Generator`` (no global state), so a
``tf.data`` pipeline built with :func:`make_dataset` is deterministic for a given seed.

Deliberate deviations: training frames of a folder are taken in **sorted** order (the original
uses unsorted ``os.listdir``); frames whose size differs from ``frame_shape`` are resized; the
colour jitter works in float (the original quantises to uint8 through PIL).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from fomm_tutorial import media

PathLike = Union[str, os.PathLike]

__all__ = [
    "list_videos",
    "split_videos",
    "read_frames",
    "num_frames",
    "video_problem",
    "FramesDataset",
    "DatasetRepeater",
    "PairedDataset",
    "AllAugmentationTransform",
    "RandomFlip",
    "RandomResize",
    "RandomCrop",
    "RandomRotation",
    "ColorJitter",
    "make_dataset",
    "write_clip_dataset",
]


# ============================================================================================
# Layout
# ============================================================================================
def _is_video(p: Path) -> bool:
    return p.is_dir() or p.suffix.lower() in media.VIDEO_EXTENSIONS


def list_videos(directory: PathLike) -> List[str]:
    """Sorted names of the videos (folders of frames or video/strip files) in ``directory``.

    Hidden entries (``.``-prefixed) are ignored.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{directory}: dataset folder not found (dataset_params.root_dir "
            "must point at a folder of videos, or with train/ and test/)"
        )
    return sorted(
        p.name
        for p in directory.iterdir()
        if not p.name.startswith(".") and _is_video(p)
    )


def split_videos(
    names: Sequence[str], test_size: float = 0.2, seed: int = 0
) -> Tuple[List[str], List[str]]:
    """Deterministic train/test split of ``names``: ``ceil(test_size * n)`` test videos."""
    names = sorted(names)
    n = len(names)
    n_test = int(math.ceil(test_size * n))
    if n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    perm = np.random.RandomState(seed).permutation(n)
    test = sorted(names[i] for i in perm[:n_test])
    train = sorted(names[i] for i in perm[n_test:])
    return train, test


def read_frames(
    path: PathLike,
    frame_shape: Sequence[int] = (256, 256, 3),
    indices: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` float32 of a video, resized to ``frame_shape[:2]`` if needed.

    ``indices``: only those frames (for a folder, only those files are decoded).
    """
    path = Path(path)
    hw = tuple(int(s) for s in frame_shape[:2])
    if path.is_dir() and indices is not None:
        files = media._frame_files(path)
        return np.stack([media.read_image(files[i], size=hw) for i in indices])
    if indices is not None and path.suffix.lower() in media.FFMPEG_EXTENSIONS + (
        ".gif",
    ):
        # decode up to the last wanted frame, resize only the wanted ones
        wanted = [int(i) for i in indices]
        kept, count = {}, 0
        for i, frame in enumerate(media.iter_video(path, max_frames=max(wanted) + 1)):
            count = i + 1
            if i in wanted:
                kept[i] = frame
        missing = sorted(set(wanted) - set(kept))
        if missing:
            raise ValueError(
                f"{path}: has only {count} frames, frame {missing[0]} requested"
            )
        return np.stack([media.resize_frames(kept[i], hw) for i in wanted])
    video = media.read_video(path, size=hw, frame_shape=hw)
    return video if indices is None else video[np.asarray(indices)]


def num_frames(path: PathLike) -> int:
    """Number of frames of a video (folder: number of image files)."""
    return media.count_frames(path)


def _id_of(name: str) -> str:
    return name.split("#")[0]


_ISO_MEDIA = (".mp4", ".mov", ".m4v")


def video_problem(path: PathLike) -> Optional[str]:
    """Why the video at ``path`` cannot be read in full, or None; cheap (headers only).

    MP4/MOV (ISO media files): the top-level boxes must tile the file and one of them must
    be the index (``moov``); a file cut short (a copy or a download that stopped) has a
    last box running past its end, or no index. A folder of frames must hold frames.
    Other formats (GIF, AVI, MKV, WebM, image strips): their first frame is decoded.
    """
    path = Path(path)
    if path.is_dir():
        try:
            media._frame_files(path)
        except ValueError as exc:
            return str(exc)
        return None
    size = path.stat().st_size
    if size == 0:
        return f"{path}: the file is empty"
    if path.suffix.lower() in _ISO_MEDIA:
        kinds, pos = [], 0
        with open(path, "rb") as f:
            while pos < size:
                f.seek(pos)
                header = f.read(16)
                n = int.from_bytes(header[:4], "big") if len(header) >= 8 else -1
                if n == 1 and len(header) == 16:  # a 64-bit box size follows the type
                    n = int.from_bytes(header[8:], "big")
                elif n == 0:  # the last box runs to the end of the file
                    n = size - pos
                if n < 8:
                    return f"{path}: damaged at byte {pos} (not an MP4/MOV box)"
                if pos + n > size:
                    return (
                        f"{path}: cut short ({size} bytes; its "
                        f"{header[4:8].decode('latin-1')!r} box needs {pos + n})"
                    )
                kinds.append(header[4:8])
                pos += n
        if b"moov" not in kinds:
            return f"{path}: cut short or never finished (no 'moov' index)"
        return None
    try:
        next(media.iter_video(path, max_frames=1))
    except (ValueError, OSError) as exc:
        return " ".join(str(exc).split())
    return None


# ============================================================================================
# Augmentation (augmentation.py), NumPy, explicit generator, order fixed
# ============================================================================================
class RandomFlip:
    """With p=0.5 reverse time **and return**; otherwise with p=0.5 flip left-right (all frames)."""

    def __init__(self, time_flip: bool = False, horizontal_flip: bool = False):
        self.time_flip, self.horizontal_flip = bool(time_flip), bool(horizontal_flip)

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5 and self.time_flip:
            return clip[::-1]
        if rng.random() < 0.5 and self.horizontal_flip:
            return clip[:, :, ::-1]
        return clip


class RandomRotation:
    """Rotate every frame by the same angle U(-degrees, degrees) (unused by every config)."""

    def __init__(self, degrees):
        if np.isscalar(degrees):
            degrees = (-abs(degrees), abs(degrees))
        self.degrees = tuple(float(d) for d in degrees)

    def __call__(self, clip, rng):
        from skimage.transform import rotate

        angle = rng.uniform(*self.degrees)
        return np.stack([rotate(f, angle, preserve_range=True) for f in clip]).astype(
            np.float32
        )


class RandomResize:
    """Scale by ``f ~ U(ratio)`` with nearest-neighbour resizing (``int(h f), int(w f)``)."""

    def __init__(self, ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation="nearest"):
        self.ratio = tuple(float(r) for r in ratio)
        self.order = 0 if interpolation == "nearest" else 1

    def __call__(self, clip, rng):
        from skimage.transform import resize

        f = rng.uniform(*self.ratio)
        t, h, w, c = clip.shape
        nh, nw = int(h * f), int(w * f)
        return np.stack(
            [
                resize(
                    x,
                    (nh, nw, c),
                    order=self.order,
                    preserve_range=True,
                    mode="constant",
                    anti_aliasing=True,
                )
                for x in clip
            ]
        ).astype(np.float32)


class RandomCrop:
    """Edge-pad to at least ``size`` (centred), then crop ``size`` at a random position."""

    def __init__(self, size):
        if np.isscalar(size):
            size = (size, size)
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, clip, rng):
        h, w = self.size
        t, ih, iw, c = clip.shape
        ph, pw = max(0, h - ih), max(0, w - iw)
        if ph or pw:
            clip = np.pad(
                clip,
                ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)),
                mode="edge",
            )
            t, ih, iw, c = clip.shape
        y = 0 if ih == h else int(rng.integers(0, ih - h + 1))
        x = 0 if iw == w else int(rng.integers(0, iw - w + 1))
        return clip[:, y : y + h, x : x + w]


def _grey(x):
    # ITU-R 601-2 luma, as PIL's convert("L")
    return x[..., 0:1] * 0.299 + x[..., 1:2] * 0.587 + x[..., 2:3] * 0.114


def adjust_brightness(x, f):
    return np.clip(x * f, 0.0, 1.0)


def adjust_contrast(x, f):
    mean = _grey(x).mean(axis=(-3, -2, -1), keepdims=True)
    return np.clip(mean + f * (x - mean), 0.0, 1.0)


def adjust_saturation(x, f):
    g = _grey(x)
    return np.clip(g + f * (x - g), 0.0, 1.0)


def adjust_hue(x, shift):
    from skimage.color import hsv2rgb, rgb2hsv

    if shift == 0:
        return x
    hsv = rgb2hsv(x)
    hsv[..., 0] = np.mod(hsv[..., 0] + shift, 1.0)
    return np.clip(hsv2rgb(hsv), 0.0, 1.0)


class ColorJitter:
    """Brightness/contrast/saturation/hue factors drawn once per clip, applied in a random order.

    Factors: ``U(max(0, 1-b), 1+b)``, ``U(max(0, 1-c), 1+c)``, ``U(max(0, 1-s), 1+s)``,
    ``U(-h, h)`` (hue in turns, |h| <= 0.5); zero parameters are skipped.
    """

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.saturation, self.hue = float(saturation), float(hue)
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"jitter_param.hue must be in [0, 0.5], got {hue}")

    def sample(self, rng):
        ops = []
        if self.brightness > 0:
            ops.append(
                (
                    adjust_brightness,
                    rng.uniform(max(0, 1 - self.brightness), 1 + self.brightness),
                )
            )
        if self.contrast > 0:
            ops.append(
                (
                    adjust_contrast,
                    rng.uniform(max(0, 1 - self.contrast), 1 + self.contrast),
                )
            )
        if self.saturation > 0:
            ops.append(
                (
                    adjust_saturation,
                    rng.uniform(max(0, 1 - self.saturation), 1 + self.saturation),
                )
            )
        if self.hue > 0:
            ops.append((adjust_hue, rng.uniform(-self.hue, self.hue)))
        order = rng.permutation(len(ops))
        return [ops[i] for i in order]

    def __call__(self, clip, rng):
        ops = self.sample(rng)
        out = []
        for frame in clip:
            for fn, f in ops:
                frame = fn(frame, f)
            out.append(frame)
        return np.stack(out).astype(np.float32) if out else clip


class AllAugmentationTransform:
    """The original's fixed order: flip -> rotation -> resize -> crop -> jitter.

    ``clip``: ``(T, H, W, 3)`` float32; the same random parameters for every frame.
    Parameters are the YAML ``augmentation_params`` sub-dicts.
    """

    KEYS = (
        "flip_param",
        "rotation_param",
        "resize_param",
        "crop_param",
        "jitter_param",
    )

    def __init__(
        self,
        flip_param=None,
        rotation_param=None,
        resize_param=None,
        crop_param=None,
        jitter_param=None,
    ):
        self.transforms = []
        if flip_param is not None:
            self.transforms.append(RandomFlip(**flip_param))
        if rotation_param is not None:
            self.transforms.append(RandomRotation(**rotation_param))
        if resize_param is not None:
            self.transforms.append(RandomResize(**resize_param))
        if crop_param is not None:
            self.transforms.append(RandomCrop(**crop_param))
        if jitter_param is not None:
            self.transforms.append(ColorJitter(**jitter_param))

    @classmethod
    def from_params(cls, params: Optional[Mapping]):
        params = dict(params or {})
        unknown = sorted(set(params) - set(cls.KEYS))
        if unknown:
            raise ValueError(
                f"augmentation_params: unknown keys {unknown}; expected some of "
                f"{list(cls.KEYS)}"
            )
        return cls(**params)

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            clip = t(clip, rng)
        return np.ascontiguousarray(clip, dtype=np.float32)


# ============================================================================================
# Datasets
# ============================================================================================
class FramesDataset:
    """The original ``FramesDataset`` (spec 7.2) with NHWC float32 items and explicit RNGs.

    ``dataset[i]`` draws with ``numpy.random.default_rng([random_seed, i])``; use
    ``dataset.get(i, rng)`` for your own generator.
    """

    def __init__(
        self,
        root_dir: PathLike,
        frame_shape: Sequence[int] = (256, 256, 3),
        id_sampling: bool = False,
        is_train: bool = True,
        random_seed: int = 0,
        pairs_list: Optional[PathLike] = None,
        augmentation_params: Optional[Mapping] = None,
    ):
        self.root_dir = Path(root_dir)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        if len(self.frame_shape) == 2:
            self.frame_shape += (3,)
        self.id_sampling = bool(id_sampling)
        self.is_train = bool(is_train)
        self.random_seed = int(random_seed)
        self.pairs_list = pairs_list
        names = list_videos(self.root_dir)
        if (self.root_dir / "train").is_dir():
            if not (self.root_dir / "test").is_dir():
                raise FileNotFoundError(
                    f"{self.root_dir / 'test'}: missing; a dataset with a "
                    "train/ folder also needs a test/ folder"
                )
            train_names = list_videos(self.root_dir / "train")
            test_names = list_videos(self.root_dir / "test")
            self.root_dir = self.root_dir / ("train" if is_train else "test")
        else:
            # As the original: the 80/20 split is seeded by dataset_params.random_seed.
            train_names, test_names = split_videos(names, 0.2, seed=self.random_seed)
        if self.id_sampling and is_train:
            bad = [n for n in train_names if "#" not in n]
            if bad:
                raise ValueError(
                    f"{self.root_dir}: id_sampling needs video names '<id>#<rest>' (e.g. "
                    f"'id10001#clip1.mp4'), but {len(bad)} do not contain '#', e.g. {bad[:3]}. "
                    "Rename the videos or set dataset_params.id_sampling: False."
                )
            self._by_id: Dict[str, List[str]] = {}
            for n in train_names:
                self._by_id.setdefault(_id_of(n), []).append(n)
            train_items = sorted(self._by_id)
        else:
            train_items = train_names
        self.videos = train_items if is_train else test_names
        if not self.videos:
            raise ValueError(
                f"{self.root_dir}: no videos found for the "
                f"{'train' if is_train else 'test'} split (expected folders of "
                f"frames or files with extensions {', '.join(media.VIDEO_EXTENSIONS)})"
            )
        self._frame_counts: Dict[Path, int] = {}
        self.transform = (
            AllAugmentationTransform.from_params(augmentation_params)
            if is_train and augmentation_params
            else None
        )

    def __len__(self) -> int:
        return len(self.videos)

    def check_videos(self) -> None:
        """Refuse (``ValueError`` naming them) videos of this split that cannot be read in
        full (:func:`video_problem`: truncated MP4s, empty folders, undecodable files),
        before training starts rather than as a ``tf.data`` error in the middle of it.
        With ``id_sampling``, every video of every identity is checked."""
        if self.is_train and self.id_sampling:
            names = [n for item in self.videos for n in self._by_id[item]]
        else:
            names = list(self.videos)
        problems = [
            p
            for p in (video_problem(self.root_dir / n) for n in names)
            if p is not None
        ]
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise ValueError(
                f"{len(problems)} of the {len(names)} "
                f"{'training' if self.is_train else 'test'} videos in {self.root_dir} cannot "
                f"be read: {'; '.join(problems[:3])}{more}; re-encode or remove them"
            )

    def video_path(self, idx: int, rng: Optional[np.random.Generator] = None) -> Path:
        """Path of item ``idx`` (with id_sampling: one video of that identity, chosen by rng)."""
        name = self.videos[idx]
        if self.is_train and self.id_sampling:
            choices = self._by_id[name]
            rng = (
                rng
                if rng is not None
                else np.random.default_rng([self.random_seed, idx])
            )
            name = choices[int(rng.integers(len(choices)))]
        return self.root_dir / name

    def __getitem__(self, idx: int) -> dict:
        idx = int(idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(idx)
        return self.get(
            idx % len(self), np.random.default_rng([self.random_seed, idx % len(self)])
        )

    def get(self, idx: int, rng: np.random.Generator) -> dict:
        path = self.video_path(idx, rng)
        if not self.is_train:
            return {"video": read_frames(path, self.frame_shape), "name": path.name}
        n = self._frame_counts.get(path)
        if n is None and not path.is_dir():
            # a video file: decode it once (as the original), remember its length
            video = read_frames(path, self.frame_shape)
            n = self._frame_counts[path] = len(video)
            frame_idx = np.sort(rng.choice(n, replace=True, size=2))
            clip = video[frame_idx]
        else:
            if n is None:
                n = self._frame_counts[path] = num_frames(path)
            frame_idx = np.sort(rng.choice(n, replace=True, size=2))
            clip = read_frames(path, self.frame_shape, indices=frame_idx)
        if self.transform is not None:
            clip = self.transform(clip, rng)
        return {"source": clip[0], "driving": clip[1], "name": path.name}


class DatasetRepeater:
    """``num_repeats`` passes over ``dataset`` per epoch: item ``i`` is ``dataset[i % len]``."""

    def __init__(self, dataset, num_repeats: int = 100):
        if int(num_repeats) < 1:
            raise ValueError(f"num_repeats must be >= 1, got {num_repeats}")
        self.dataset, self.num_repeats = dataset, int(num_repeats)

    def __len__(self):
        return self.num_repeats * len(self.dataset)

    def __getitem__(self, idx):
        return self.dataset[idx % len(self.dataset)]

    def get(self, idx, rng):
        return self.dataset.get(idx % len(self.dataset), rng)


class PairedDataset:
    """(driving, source) video pairs of a test dataset, as the original animate mode.

    Without ``pairs_list``: ``number_of_pairs`` pairs drawn without replacement (seeded) among all
    ordered pairs of the first ``min(number_of_pairs, len)`` videos. With ``pairs_list`` (CSV with
    columns ``source,driving``): its rows whose videos are both in the dataset, first
    ``number_of_pairs``. Items: ``{"driving_video", "driving_name", "source_video", "source_name"}``.
    """

    def __init__(
        self, initial_dataset: FramesDataset, number_of_pairs: int, seed: int = 0
    ):
        self.initial_dataset = initial_dataset
        pairs_list = getattr(initial_dataset, "pairs_list", None)
        rng = np.random.RandomState(seed)
        if pairs_list is None:
            m = min(int(number_of_pairs), len(initial_dataset))
            xy = [(i, j) for i in range(m) for j in range(m)]
            k = min(int(number_of_pairs), len(xy))
            self.pairs = [xy[i] for i in rng.choice(len(xy), size=k, replace=False)]
        else:
            path = Path(pairs_list)
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: pairs_list CSV not found (columns "
                    "source,driving); create it or set pairs_list: null"
                )
            videos = list(initial_dataset.videos)
            index = {n: i for i, n in enumerate(videos)}
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            if rows and not {"source", "driving"} <= set(rows[0]):
                raise ValueError(
                    f"{path}: pairs_list needs columns 'source' and 'driving', got "
                    f"{sorted(rows[0])}"
                )
            self.pairs = [
                (index[r["driving"]], index[r["source"]])
                for r in rows
                if r["source"] in index and r["driving"] in index
            ][: int(number_of_pairs)]

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, idx):
        d, s = self.pairs[idx]
        first, second = self.initial_dataset[d], self.initial_dataset[s]
        return {
            "driving_video": first["video"],
            "driving_name": first["name"],
            "source_video": second["video"],
            "source_name": second["name"],
        }


# ============================================================================================
# tf.data pipeline
# ============================================================================================
def make_dataset(
    config_or_dataset_params: Union[Mapping, FramesDataset],
    root_dir: Optional[PathLike] = None,
    batch_size: int = 1,
    is_train: bool = True,
    seed: int = 0,
    num_repeats: Optional[int] = None,
    epoch: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = True,
    num_parallel_calls: Optional[int] = None,
    prefetch: Optional[int] = None,
    augment: bool = True,
    with_names: bool = False,
    check_videos: bool = False,
):
    """A ``tf.data.Dataset`` over the original layout.

    ``config_or_dataset_params``: a full config (with ``dataset_params``, and
    ``train_params.num_repeats`` used when ``num_repeats`` is None), its ``dataset_params``, or a
    ready :class:`FramesDataset`. ``root_dir`` overrides ``dataset_params.root_dir``.

    Train: one epoch of ``num_repeats * len`` items, shuffled by ``(seed, epoch)``, decoded in
    parallel (``num_parallel_calls``, default AUTOTUNE) with ``deterministic=True``, batched with
    ``drop_remainder``, prefetched; elements ``{"source", "driving"}`` each ``(B, H, W, 3)``
    float32 (``"name"`` ``(B,)`` string too with ``with_names``). Item ``k`` of the epoch uses
    ``default_rng([seed, epoch, k])``, so the stream is identical for the same arguments.
    Test (``is_train=False``): every video once, ``{"video": (1, T, H, W, 3), "name": (1,)}``.
    ``check_videos``: first refuse unreadable videos (:meth:`FramesDataset.check_videos`).
    """
    import tensorflow as tf

    if isinstance(config_or_dataset_params, (FramesDataset, DatasetRepeater)):
        dataset = config_or_dataset_params
        if num_repeats is None:
            num_repeats = 1
    else:
        cfg = dict(config_or_dataset_params)
        params = dict(cfg["dataset_params"]) if "dataset_params" in cfg else cfg
        if num_repeats is None:
            num_repeats = (
                int(cfg.get("train_params", {}).get("num_repeats", 1))
                if "dataset_params" in cfg
                else 1
            )
        root = root_dir if root_dir is not None else params.get("root_dir")
        if root is None:
            raise ValueError(
                "make_dataset: no root_dir (pass root_dir=... or set "
                "dataset_params.root_dir)"
            )
        known = {
            "root_dir",
            "frame_shape",
            "id_sampling",
            "pairs_list",
            "augmentation_params",
            "random_seed",
        }
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"dataset_params: unknown keys {unknown}; expected some of "
                f"{sorted(known)}"
            )
        dataset = FramesDataset(
            root,
            frame_shape=params.get("frame_shape", (256, 256, 3)),
            id_sampling=params.get("id_sampling", False) and is_train,
            is_train=is_train,
            random_seed=params.get("random_seed", 0),
            pairs_list=params.get("pairs_list"),
            augmentation_params=params.get("augmentation_params") if augment else None,
        )
    if check_videos:
        (
            dataset.dataset if isinstance(dataset, DatasetRepeater) else dataset
        ).check_videos()
    if num_parallel_calls is None:
        num_parallel_calls = tf.data.AUTOTUNE
    if prefetch is None:
        prefetch = tf.data.AUTOTUNE
    base = dataset.dataset if isinstance(dataset, DatasetRepeater) else dataset
    h, w, c = (tuple(base.frame_shape) + (3,))[:3]

    if not is_train:

        def gen():
            for i in range(len(base)):
                item = base[i]
                yield {"video": item["video"], "name": item["name"]}

        ds = tf.data.Dataset.from_generator(
            gen,
            output_signature={
                "video": tf.TensorSpec((None, h, w, 3), tf.float32),
                "name": tf.TensorSpec((), tf.string),
            },
        )
        return ds.batch(1).prefetch(prefetch)

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_items = len(base) * int(num_repeats)
    if drop_remainder and n_items < batch_size:
        raise ValueError(
            f"{getattr(base, 'root_dir', '')}: only {n_items} items per epoch "
            f"({len(base)} videos x num_repeats {num_repeats}) but batch_size "
            f"{batch_size} with drop_remainder; raise num_repeats or lower the batch"
        )
    order = np.arange(n_items) % len(base)
    if shuffle:
        order = order[
            np.random.default_rng([int(seed), int(epoch), 2**31 - 1]).permutation(
                n_items
            )
        ]

    def load(k, idx):
        item = base.get(
            int(idx), np.random.default_rng([int(seed), int(epoch), int(k)])
        )
        out = [item["source"].astype(np.float32), item["driving"].astype(np.float32)]
        if out[0].shape != (h, w, 3) or out[1].shape != (h, w, 3):
            raise ValueError(
                f"{item['name']}: frames of shape {out[0].shape} after augmentation, "
                f"expected {(h, w, 3)}; check crop_param/resize_param"
            )
        return out + [np.asarray(item["name"].encode())]

    def tf_load(k, idx):
        s, d, name = tf.numpy_function(
            load, [k, idx], [tf.float32, tf.float32, tf.string], stateful=False
        )
        s.set_shape((h, w, 3))
        d.set_shape((h, w, 3))
        name.set_shape(())
        out = {"source": s, "driving": d}
        if with_names:
            out["name"] = name
        return out

    ds = tf.data.Dataset.from_tensor_slices(
        (np.arange(n_items, dtype=np.int64), order.astype(np.int64))
    )
    ds = ds.map(tf_load, num_parallel_calls=num_parallel_calls, deterministic=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    return ds.prefetch(prefetch)


def write_clip_dataset(
    video: PathLike, root: PathLike, test_start: int, size: Optional[int] = None
) -> Dict[str, Path]:
    """Split ONE video in time into a dataset in the original layout.

    Frames ``[0, test_start)`` become ``root/train/<stem>/`` and frames
    ``[test_start, T)`` ``root/test/<stem>/`` (folders of PNG frames, resized to
    ``size x size`` when given), so that a model trained on ``root`` never sees the held-out
    frames. Returns ``{"train": folder, "test": folder}``. Refuses a ``root`` that already
    holds frames (remove it first).
    """
    video, root = Path(video), Path(root)
    if any((root / split).exists() for split in ("train", "test")):
        raise ValueError(f"{root}: already holds train/ or test/; remove it first")
    frames = media.read_video(video, size=size)
    if not 0 < int(test_start) < len(frames):
        raise ValueError(
            f"test_start={test_start}: must split the {len(frames)} frames of {video}"
        )
    folders = {}
    for split, part in (
        ("train", frames[: int(test_start)]),
        ("test", frames[int(test_start) :]),
    ):
        folder = root / split / video.stem
        for i, frame in enumerate(part):
            media.write_image(folder / f"{i:04d}.png", frame)
        folders[split] = folder
    return folders
