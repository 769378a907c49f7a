"""Reading and writing images and videos (float32 RGB in [0, 1], NHWC).

Explained in chapter 10 (book/10_animation.ipynb).

Formats (as the original ``frames_dataset.read_video``, spec 7.1, plus ``.avi``):

* images: anything Pillow / imageio reads (``.png``, ``.jpg``, ...);
* videos: ``.mp4`` / ``.mov`` / ``.avi`` / ``.mkv`` / ``.webm`` through imageio + imageio-ffmpeg,
  ``.gif`` through Pillow, a folder of frames (sorted by name), and a ``.png`` / ``.jpg`` "strip"
  ``(H, N*W, C)`` of square frames (the format the original reconstruction/animation write).
  Unlike the original ``mimread`` there is no 256 MB memory test.

Channel handling: greyscale is repeated to RGB; an alpha channel is **dropped** (the original
does ``[..., :3]``; composite onto white first yourself if you need it); 2 channels
(grey + alpha) keep the grey. Anything else raises a ``ValueError`` naming the file.

Public API::

    read_image(path, size=None) -> (H, W, 3) float32
    read_video(path, size=None, max_frames=None) -> (T, H, W, 3) float32
    iter_video(path, size=None, max_frames=None) -> iterator of (H, W, 3) float32
    video_fps(path, default=25.0) -> float
    count_frames(path) -> int
    write_image(path, image)
    write_video(path, frames, fps=25)          # .mp4 (libx264, yuv420p) / .gif / .png strip / folder
    VideoWriter(path, fps=25)                  # the same, batch by batch: with ... as w: w.write(b)
    check_fps(path, fps) -> float              # the rates each container stores (FPS_RANGES)
    check_resize(frame_hw, size, name)         # too small to enlarge: ValueError; stretch: warning
    check_writable_folder(folder, what)        # an output's folder can be created and written

``size`` is ``None`` (keep), an int ``s`` (-> ``(s, s)``) or ``(h, w)`` (:func:`normalize_size`);
resizing uses ``skimage.transform.resize`` with anti-aliasing (:func:`resize_frames`, the
package's one resizer). :func:`to_float_rgb` is the package's one image normalisation.
GIFs are written frame by frame, so every frame is kept (identical frames too). Videos are
written atomically: into a temporary file beside the target, renamed once the encoder reports
success (a full disk is an ``OSError`` and an existing file is left as it was).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, os.PathLike]
Size = Optional[Union[int, Sequence[int]]]

FFMPEG_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
GIF_EXTENSIONS = (".gif",)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = FFMPEG_EXTENSIONS + GIF_EXTENSIONS + IMAGE_EXTENSIONS

__all__ = [
    "read_image",
    "read_video",
    "iter_video",
    "video_fps",
    "count_frames",
    "write_image",
    "write_video",
    "VideoWriter",
    "check_fps",
    "check_resize",
    "check_writable_folder",
    "FPS_RANGES",
    "to_float_rgb",
    "resize_frames",
    "normalize_size",
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "FFMPEG_EXTENSIONS",
]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def normalize_size(size: Size) -> Optional[Tuple[int, int]]:
    """``None`` -> None, ``s`` -> ``(s, s)``, ``(h, w)`` or ``(h, w, c)`` -> ``(h, w)``.

    Sizes are positive integers (Python or NumPy ints, or integral floats such as ``64.0``);
    anything else (a string, ``64.5``, ``True``) raises a ValueError naming the size.
    """
    if size is None:
        return None
    if isinstance(size, (str, bytes)):
        raise ValueError(
            f"size must be an int or (height, width) of ints, got the string {size!r}; "
            "write size=64 or size=(64, 64)."
        )
    items = (size,) if np.ndim(size) == 0 else tuple(np.asarray(size).ravel().tolist())
    if len(items) == 3:  # accept a frame_shape (h, w, c)
        items = items[:2]
    if len(items) not in (1, 2):
        raise ValueError(f"size must be an int or (height, width), got {size!r}.")
    dims = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(
            item, (int, float, np.integer, np.floating)
        ):
            raise ValueError(
                f"size must be an int or (height, width) of ints, got {size!r}."
            )
        if float(item) != int(item):
            raise ValueError(
                f"size must be whole pixels, got {size!r}; give integers such as size=64."
            )
        dims.append(int(item))
    h, w = (dims[0], dims[0]) if len(dims) == 1 else dims
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {(h, w)}.")
    return h, w


def to_float_rgb(array, name: str = "image") -> np.ndarray:
    """Images ``(H, W)`` or ``(..., H, W, C)``, uint8/uint16/bool/float -> float32 RGB in [0, 1].

    The one image normalisation of the package (files, the CLI and
    :mod:`fomm_tutorial.animation` use it). A 2-D array is one grey image; otherwise the
    last axis holds the channels: grey -> RGB, grey+alpha -> grey -> RGB, RGBA -> RGB
    (alpha dropped, as the original's ``[..., :3]``). uint8 is divided by 255, uint16 by
    65535, bool -> {0, 1}; floats must already be in [0, 1] (up to 1e-3 rounding, then
    clipped): NaN/inf or values such as 0..255 raise a ValueError rather than turning
    white. Other integer dtypes (int32 0..255 from arithmetic, signed int16) carry no
    range a pixel value can be read from, so they raise a ValueError too.

    Returns:
      ``(..., H, W, 3)`` float32, C-contiguous.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim < 3 or min(a.shape[-3:-1], default=0) < 1:
        raise ValueError(
            f"{name}: expected an image of shape (H, W) or (H, W, C) (or a stack "
            f"(..., H, W, C)), got {a.shape}."
        )
    c = a.shape[-1]
    if c in (1, 2):
        a = np.repeat(a[..., :1], 3, axis=-1)
    elif c == 4:
        a = a[..., :3]
    elif c != 3:
        raise ValueError(
            f"{name}: unsupported channel count {c} (shape {a.shape}); expected 1 "
            "(grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA). Convert the file to RGB."
        )
    if a.dtype == np.bool_:
        out = a.astype(np.float32)
    elif a.dtype in (np.uint8, np.uint16):
        out = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    elif np.issubdtype(a.dtype, np.integer):
        raise ValueError(
            f"{name}: unsupported integer dtype {a.dtype}; give uint8 (0..255), uint16 "
            "(0..65535) or floats in [0, 1], e.g. image.astype(np.uint8) for 0..255 "
            "values or image / 255.0."
        )
    elif np.issubdtype(a.dtype, np.floating):
        out = a.astype(np.float32)
        if not np.all(np.isfinite(out)):
            raise ValueError(f"{name} contains NaN or infinite values.")
        lo, hi = float(out.min(initial=0.0)), float(out.max(initial=0.0))
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"{name} has values in [{lo:.3g}, {hi:.3g}]; expected floats in [0, 1] "
                "(divide 0..255 data by 255)."
            )
        out = np.clip(out, 0.0, 1.0)
    else:
        raise ValueError(
            f"{name}: unsupported dtype {a.dtype}; give floats in [0, 1], uint8 or "
            "uint16."
        )
    return np.ascontiguousarray(out, dtype=np.float32)


def _resize_one(frame: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    if frame.shape[:2] == tuple(hw):
        return frame
    from skimage.transform import resize

    out = resize(
        frame,
        hw + (frame.shape[-1],),
        order=1,
        mode="reflect",
        anti_aliasing=True,
        preserve_range=True,
    )
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# A frame enlarged more than this many times per side has its details invented.
MAX_ENLARGEMENT = 4.0
# Resizing that changes the width/height ratio by more than this fraction is warned about.
ASPECT_TOLERANCE = 0.05
_warned_aspects: set = set()


def check_resize(frame_hw: Sequence[int], size: Size, name: str = "image") -> None:
    """Refuse a resize from ``frame_hw`` to ``size`` that cannot be meaningful; warn when it
    stretches.

    A side enlarged more than :data:`MAX_ENLARGEMENT` times (a 1 x 1 source, 8 x 8 frames
    for a 64-pixel model) raises a ValueError naming the smallest usable size; a change of
    the aspect ratio beyond :data:`ASPECT_TOLERANCE` (a 402 x 100 frame made square) gives
    one ``UserWarning`` per pair of sizes and process, since the object is then distorted.
    """
    hw = normalize_size(size)
    h, w = (int(v) for v in frame_hw[:2])
    if hw is None or (h, w) == hw:
        return
    if hw[0] > MAX_ENLARGEMENT * h or hw[1] > MAX_ENLARGEMENT * w:
        need_h = math.ceil(hw[0] / MAX_ENLARGEMENT)
        need_w = math.ceil(hw[1] / MAX_ENLARGEMENT)
        raise ValueError(
            f"{name}: {w} x {h} pixels (width x height) is too small to be resized to "
            f"{hw[1]} x {hw[0]} (more than {MAX_ENLARGEMENT:g}x enlarged, the details "
            f"would be invented); give at least {need_w} x {need_h} pixels, ideally "
            f"{hw[1]} x {hw[0]} or more."
        )
    stretch = (hw[1] / hw[0]) / (w / h)
    if abs(math.log(stretch)) > math.log1p(ASPECT_TOLERANCE):
        key = ((h, w), hw)
        if key not in _warned_aspects:
            _warned_aspects.add(key)
            way = "wider" if stretch > 1 else "narrower"
            warnings.warn(
                f"{name}: resizing {w} x {h} pixels to {hw[1]} x {hw[0]} stretches the "
                f"picture {max(stretch, 1 / stretch):.2f}x {way}; crop it to the "
                f"target's aspect ratio first for an undistorted result.",
                UserWarning,
                stacklevel=3,
            )


def resize_frames(
    frames: np.ndarray, size: Size, name: Optional[str] = None
) -> np.ndarray:
    """Resize ``(H, W, 3)`` or ``(T, H, W, 3)`` float frames to ``size`` (anti-aliased).

    With a ``name`` (the file or argument the frames come from), the resize is checked
    first by :func:`check_resize` (too small: ValueError; stretched: a warning).
    """
    hw = normalize_size(size)
    if hw is None:
        return frames
    if name is not None:
        check_resize(frames.shape[-3:-1], hw, name)
    if frames.ndim == 3:
        return _resize_one(frames, hw)
    if frames.shape[1:3] == hw:
        return frames
    return (
        np.stack([_resize_one(f, hw) for f in frames])
        if len(frames)
        else np.zeros((0,) + hw + (frames.shape[-1],), np.float32)
    )


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such file or folder (check the path; relative paths "
            f"are relative to {os.getcwd()})"
        )


def _kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    ext = path.suffix.lower()
    if ext in FFMPEG_EXTENSIONS:
        return "ffmpeg"
    if ext in GIF_EXTENSIONS:
        return "gif"
    if ext in IMAGE_EXTENSIONS:
        return "strip"
    raise ValueError(
        f"{path}: unknown video extension {ext!r}; supported: a folder of frames, "
        f"{', '.join(VIDEO_EXTENSIONS)}. Convert it (e.g. ffmpeg -i in out.mp4)."
    )


def _frame_files(folder: Path):
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise ValueError(
            f"{folder}: empty folder (no frames with extensions "
            f"{', '.join(IMAGE_EXTENSIONS)}); put the frames there as images named "
            "so that they sort in time order (e.g. 0000000.png)."
        )
    return files


# An image more than this many times the requested size is first shrunk by Pillow (a box
# filter on the 8-bit data) to about this many times the size, then resized as usual: the
# anti-aliased resize of a 9000 x 9000 photograph alone took over a minute.
_SHRINK_FIRST = 8


def _load_raw_image(path: Path, hw: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """The pixels of an image file as Pillow decodes them (uint8/uint16/float32).

    With ``hw`` (the size it will be resized to), an image more than ``_SHRINK_FIRST``
    times larger is first reduced by a whole factor, to at least half that many times ``hw``.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if hw is not None and _shrink_factor(im.size, hw) >= 2:
                # JPEG can decode at 1/2, 1/4 or 1/8 scale (draft; other formats ignore
                # it), then Pillow's reduce averages whole blocks of pixels.
                factor = _shrink_factor(im.size, hw)
                im.draft(im.mode, (im.width // factor, im.height // factor))
                factor = _shrink_factor(im.size, hw)
                if factor >= 2 and im.mode in ("L", "LA", "RGB", "RGBA", "I", "F"):
                    im = im.reduce(factor)
            im.load()
            mode = im.mode
            if mode in ("P", "PA"):
                im = im.convert("RGBA")
            elif mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im, dtype=np.uint16)
            elif mode == "I":
                return (np.asarray(im, dtype=np.int64).clip(0, 65535)).astype(np.uint16)
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif mode == "F":
                return np.asarray(im, dtype=np.float32)
            elif mode == "1":
                im = im.convert("L")
            return np.asarray(im)
    except Image.DecompressionBombError:
        width, height = _image_header_size(path)
        raise ValueError(
            f"{path}: the image claims {width} x {height} pixels, more than "
            f"{2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, which is refused as a "
            "possible decompression bomb; shrink it first (e.g. to 4096 x 4096)."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(
            f"{path}: cannot decode the image ({e}); the file is corrupt or not an "
            "image. Re-export it as PNG/JPEG."
        ) from None


def _shrink_factor(image_wh: Tuple[int, int], hw: Tuple[int, int]) -> int:
    """The whole factor that keeps an image at least ``_SHRINK_FIRST / 2`` times ``hw``."""
    ratio = min(image_wh[1] // hw[0], image_wh[0] // hw[1])
    return ratio // (_SHRINK_FIRST // 2)


def _image_header_size(path: Path) -> Tuple[int, int]:
    """(width, height) that an image's header claims, read without the pixel limit."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return im.size
    finally:
        Image.MAX_IMAGE_PIXELS = limit


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
def read_image(path: PathLike, size: Size = None) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` float32 RGB in [0, 1] (alpha dropped, grey -> RGB).

    ``size``: None, int or ``(h, w)``; anti-aliased resize with ``skimage.transform.resize``.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        raise ValueError(
            f"{path}: is a folder, expected an image file (use read_video for a "
            "folder of frames)"
        )
    hw = normalize_size(size)
    image = to_float_rgb(_load_raw_image(path, hw), name=str(path))
    return resize_frames(image, hw, name=str(path))


def write_image(path: PathLike, image) -> None:
    """Write ``(H, W, 3)`` float in [0, 1] (or uint8) as an 8-bit image (format from extension)."""
    from PIL import Image

    path = Path(path)
    arr = _to_uint8(np.asarray(image)[None], name=str(path))[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


# --------------------------------------------------------------------------------------------
# videos
# --------------------------------------------------------------------------------------------
# The first bytes of image files, which ffmpeg would otherwise read as a one-frame video.
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG", ".png"),
    (b"\xff\xd8\xff", "JPEG", ".jpg"),
    (b"BM", "BMP", ".bmp"),
    (b"II*\x00", "TIFF", ".tif"),
    (b"MM\x00*", "TIFF", ".tif"),
)


def _refuse_image_as_video(path: Path) -> None:
    """A still image with a video extension (a PNG renamed ``.mp4``) raises a ValueError."""
    with open(path, "rb") as f:
        head = f.read(16)
    found = [
        (kind, ext) for sig, kind, ext in _IMAGE_SIGNATURES if head.startswith(sig)
    ]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        found = [("WebP", ".webp")]
    if found:
        kind, ext = found[0]
        raise ValueError(
            f"{path} is a {kind} image, not a video, although its name ends in "
            f"{path.suffix}; give the real video, or rename the file to {path.stem}{ext} "
            "(an image is read as a strip of frames)."
        )


def _ffmpeg_reader(path: Path):
    import imageio.v2 as iio

    _refuse_image_as_video(path)

    try:
        return iio.get_reader(str(path), format="FFMPEG")
    except (
        Exception
    ) as e:  # imageio raises OSError / RuntimeError / IndexError variants
        raise ValueError(
            f"{path}: cannot open the video ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); the file is corrupt, "
            "empty or not a video. Re-encode it, e.g. "
            "ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4"
        ) from None


def _iter_ffmpeg(path: Path):
    reader = _ffmpeg_reader(path)
    n = 0
    try:
        while True:
            try:
                frame = reader.get_next_data()
            except (IndexError, StopIteration):
                break
            except RuntimeError as e:
                if n == 0:
                    raise ValueError(
                        f"{path}: cannot decode the video ({e}); the file is "
                        "corrupt. Re-encode it with ffmpeg."
                    ) from None
                break
            n += 1
            yield frame
    finally:
        reader.close()
    if n == 0:
        raise ValueError(
            f"{path}: the video has zero frames; check the file (ffprobe) or "
            "re-encode it."
        )


def _iter_gif(path: Path):
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        im = Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(
            f"{path}: cannot decode the GIF ({e}); the file is corrupt."
        ) from None
    n = 0
    with im:
        try:
            for frame in ImageSequence.Iterator(im):
                n += 1
                yield np.asarray(frame.convert("RGB"))
        except OSError as e:
            if n == 0:
                raise ValueError(
                    f"{path}: cannot decode the GIF ({e}); the file is corrupt."
                ) from None
    if n == 0:
        raise ValueError(f"{path}: the GIF has zero frames.")


def _strip_frames(path: Path, frame_hw: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """A strip ``(H, N*W, C)`` -> ``(N, H, W, 3)``; frames are square unless ``frame_hw`` says."""
    image = to_float_rgb(_load_raw_image(path), name=str(path))
    h, total_w, _ = image.shape
    fw = h if frame_hw is None else frame_hw[1]
    if total_w % fw != 0:
        raise ValueError(
            f"{path}: an image strip of width {total_w} is not a whole number of "
            f"frames of width {fw} (frames are assumed square, height {h}); pass "
            "frame_shape=(h, w) or store the video as a folder of frames / mp4."
        )
    n = total_w // fw
    return image.reshape(h, n, fw, 3).transpose(1, 0, 2, 3).copy()


def iter_video(
    path: PathLike,
    size: Size = None,
    max_frames: Optional[int] = None,
    frame_shape: Optional[Sequence[int]] = None,
) -> Iterator[np.ndarray]:
    """Stream the frames of a video as ``(H, W, 3)`` float32 in [0, 1] (see module docstring).

    Errors (``ValueError`` / ``FileNotFoundError``) name the file: missing file, empty folder,
    zero-frame or corrupt video, wrong channel count, unknown extension.
    """
    path = Path(path)
    _check_exists(path)
    kind = _kind(path)
    hw = normalize_size(size)
    if max_frames is not None and max_frames <= 0:
        return
    if kind == "folder":
        raw = (_load_raw_image(p, hw) for p in _frame_files(path))
        names = iter(_frame_files(path))
    elif kind == "ffmpeg":
        raw = _iter_ffmpeg(path)
        names = None
    elif kind == "gif":
        raw = _iter_gif(path)
        names = None
    else:
        raw = iter(
            _strip_frames(path, normalize_size(frame_shape) if frame_shape else None)
        )
        names = None
    checked = None  # the frame size whose resize was checked
    for i, frame in enumerate(raw):
        if max_frames is not None and i >= max_frames:
            break
        name = str(next(names)) if names is not None else f"{path} (frame {i})"
        f = to_float_rgb(frame, name=name)
        if hw is not None:
            if f.shape[:2] != checked:
                check_resize(f.shape[:2], hw, name=str(path) if i == 0 else name)
                checked = f.shape[:2]
            f = _resize_one(f, hw)
        yield f


def read_video(
    path: PathLike,
    size: Size = None,
    max_frames: Optional[int] = None,
    frame_shape: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """Read a whole video as ``(T, H, W, 3)`` float32 RGB in [0, 1].

    ``path``: a folder of frames (sorted by name), ``.mp4/.mov/.avi/...``, ``.gif`` or a
    ``.png/.jpg`` strip of square frames (``frame_shape=(h, w)`` for non-square strips).
    ``size``: None, int or ``(h, w)`` to resize every frame; ``max_frames``: read at most that many.
    """
    frames = list(
        iter_video(path, size=size, max_frames=max_frames, frame_shape=frame_shape)
    )
    if not frames:
        if max_frames is not None and max_frames <= 0:
            raise ValueError(f"{path}: max_frames must be positive, got {max_frames}")
        raise ValueError(f"{path}: the video has zero frames.")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(
            f"{path}: frames have different sizes {sorted(shapes)}; pass size=(h, w) "
            "to resize them all."
        )
    return np.stack(frames)


def count_frames(path: PathLike) -> int:
    """Number of frames of a video (decodes it for ffmpeg/gif formats; exact)."""
    path = Path(path)
    _check_exists(path)
    kind = _kind(path)
    if kind == "folder":
        return len(_frame_files(path))
    if kind == "strip":
        return len(_strip_frames(path))
    return sum(1 for _ in (_iter_ffmpeg(path) if kind == "ffmpeg" else _iter_gif(path)))


def video_fps(path: PathLike, default: float = 25.0) -> float:
    """Frames per second from the file's metadata (``default`` for folders/strips/unknown)."""
    path = Path(path)
    _check_exists(path)
    kind = _kind(path)
    if kind == "ffmpeg":
        reader = _ffmpeg_reader(path)
        try:
            fps = reader.get_meta_data().get("fps")
        finally:
            reader.close()
        return float(fps) if fps else float(default)
    if kind == "gif":
        from PIL import Image

        try:
            with Image.open(path) as im:
                duration = im.info.get("duration")
        except OSError:
            return float(default)
        return 1000.0 / float(duration) if duration else float(default)
    return float(default)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def _to_uint8(frames: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim == 3:  # (T, H, W) grey
        a = a[..., None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{name}: frames must have shape (T, H, W, 3) (or 1/4 channels), "
            f"got {a.shape}"
        )
    if a.shape[0] == 0:
        raise ValueError(f"{name}: no frames to write (T = 0)")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif a.shape[-1] == 4:
        a = a[..., :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: frames contain NaN or Inf")
        lo, hi = float(a.min()), float(a.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"{name}: float frames must be in [0, 1], got values in "
                f"[{lo:.4g}, {hi:.4g}]; clip them (np.clip(x, 0, 1)) or rescale "
                "(x / 255 for 0..255 data)."
            )
        return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(
        f"{name}: frames must be float in [0, 1] or uint8, got dtype {a.dtype}"
    )


def _gif_image_block(data: bytes) -> Tuple[bytes, bytes]:
    """The logical screen descriptor and the image block of a one-frame GIF written by Pillow.

    Returns ``(screen_descriptor (7 bytes), image block)``; the image block is the image
    descriptor with the frame's colour table as a *local* table, then the LZW data.
    """
    screen = data[6:13]
    packed = screen[4]
    table = 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0
    global_table = data[13 : 13 + table]
    pos = 13 + table
    while data[pos] == 0x21:  # skip extensions: introducer, label, then sub-blocks
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    if data[pos] != 0x2C:
        raise RuntimeError("Pillow wrote a GIF without an image block")
    descriptor = bytearray(data[pos : pos + 10])
    pos += 10
    if not descriptor[9] & 0x80 and global_table:
        # Move the global table into the frame: every frame keeps its own palette.
        descriptor[9] = (descriptor[9] & 0x40) | 0x80 | (packed & 7)
        local_table = global_table
    else:
        size = 3 * 2 ** ((descriptor[9] & 7) + 1) if descriptor[9] & 0x80 else 0
        local_table = data[pos : pos + size]
        pos += size
    start = pos
    pos += 1  # LZW minimum code size
    while data[pos]:
        pos += data[pos] + 1
    pos += 1
    return bytes(screen), bytes(descriptor) + local_table + data[start:pos]


# Frame rates each container can store and read back: a GIF's delay is a whole number of
# 1/100 s from 2 (viewers show shorter delays as 10) to 65535; above ~1000 fps ffmpeg's
# metadata no longer reads back (the rate reads 0), below 0.01 fps a frame lasts minutes.
FPS_RANGES = {"gif": (0.01, 50.0), "ffmpeg": (0.01, 960.0), "other": (0.0, math.inf)}


def check_fps(path: PathLike, fps) -> float:
    """``fps`` as a float, if the container of ``path`` can store it, else a ValueError.

    Ranges (:data:`FPS_RANGES`): GIF 0.01..50, MP4/MOV/AVI/MKV 0.01..960; a strip or a
    folder of frames stores no rate (any positive number).
    """
    ext = Path(path).suffix.lower()
    kind = (
        "gif"
        if ext in GIF_EXTENSIONS
        else "ffmpeg"
        if ext in FFMPEG_EXTENSIONS
        else "other"
    )
    lo, hi = FPS_RANGES[kind]
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: fps must be a number, got {fps!r}") from None
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"{path}: fps must be a positive number, got {fps:g}")
    if not lo <= fps <= hi:
        what = "a GIF" if kind == "gif" else f"a {ext} video"
        hint = " (write .mp4 for faster rates)" if kind == "gif" and fps > hi else ""
        raise ValueError(
            f"{path}: fps {fps:g} cannot be stored in {what}: give {lo:g} to {hi:g}"
            f"{hint}."
        )
    return fps


def check_writable_folder(folder: PathLike, what: str) -> Path:
    """The folder an output goes into can be written (or created), checked by trying it.

    ``folder`` may not exist yet: the nearest existing folder above it, where the folders
    still to be created would go, is checked instead, by creating (and removing) a
    temporary file in it (``os.access`` says yes to root on a read-only file system).
    ``what`` starts the messages (``"--out result/video.mp4"``). Returns that existing
    folder; a file in the way or a folder that cannot be written raises a one-line
    ValueError.
    """
    existing = Path(folder)
    while not existing.exists():  # the folders still to be created go under this one
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(
            f"{what}: {existing} is a file, so the folder cannot be created; choose "
            "another path"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ValueError(
            f"{what}: cannot write in {existing} ({exc.strerror}); choose a writable "
            "folder"
        ) from None
    return existing


def _temporary_beside(path: Path) -> Path:
    """A new empty file in ``path``'s folder, with ``path``'s extension (for ffmpeg)."""
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".part{path.suffix}"
    )
    os.close(fd)
    umask = os.umask(0)  # mkstemp creates 0600: give the result the usual permissions
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


class VideoWriter:
    """Write a video batch by batch, atomically: nothing replaces ``path`` but a whole file.

    ::

        with VideoWriter("result.mp4", fps=25) as writer:
            for frames in batches:        # (B, H, W, 3) float in [0, 1] or uint8
                writer.write(frames)

    ``.mp4/.mov/.avi/.mkv``: libx264 yuv420p through ffmpeg (odd sizes padded by edge
    replication to even); ``.gif``: looping, every frame kept (:func:`_gif_frame_block`);
    ``.png/.jpg``: a strip ``(H, T*W, 3)``, written at the end; no extension: a folder of
    ``%07d.png`` frames, written as they come (not atomic). A symbolic link is kept: the
    file it points to is replaced.

    The frames are encoded as they arrive into a temporary file beside ``path``; when the
    ``with`` block ends without an error and the encoder reports success, the file is
    renamed to ``path`` (``os.replace``: one step on one file system). Any failure - a full
    disk, ffmpeg's error, an exception or Ctrl-C inside the block - deletes the temporary
    file and leaves an existing ``path`` as it was; write and encoder failures are an
    ``OSError`` naming ``path`` and the cause.
    """

    def __init__(self, path: PathLike, fps: float = 25, quality: Optional[float] = 8):
        self.path = Path(path)
        self.ext = self.path.suffix.lower()
        if self.ext in FFMPEG_EXTENSIONS:
            self.kind = "ffmpeg"
        elif self.ext in GIF_EXTENSIONS:
            self.kind = "gif"
        elif self.ext in IMAGE_EXTENSIONS:
            self.kind = "strip"
        elif self.ext == "":
            self.kind = "folder"
        else:
            raise ValueError(
                f"{self.path}: unknown video extension {self.ext!r}; use .mp4, .gif, "
                ".png (strip) or no extension (a folder of PNG frames)."
            )
        self.fps = check_fps(self.path, fps)
        if self.kind != "folder" and self.path.is_symlink():
            self.path = (
                self.path.resolve()
            )  # replace the file the link names, keep the link
        if self.kind != "folder" and self.path.exists() and not self.path.is_file():
            raise ValueError(
                f"{self.path} exists and is not a regular file; choose another name."
            )
        self.quality = quality
        self.frames_written = 0
        self.frame_hw: Optional[Tuple[int, int]] = None
        self._temp: Optional[Path] = None
        self._process = None
        self._stderr = None
        self._file = None
        self._previous = None  # the last GIF frame (a frame stores what changed)
        self._strip: list = []

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- writing -----------------------------------------------------------------------------
    def write(self, frames) -> None:
        """Append ``(B, H, W, 3)`` frames (float in [0, 1] or uint8; 1 or 4 channels too)."""
        data = _to_uint8(frames, name=str(self.path))
        if self.frame_hw is None:
            self.frame_hw = tuple(data.shape[1:3])
            self._open()
        elif tuple(data.shape[1:3]) != self.frame_hw:
            raise ValueError(
                f"{self.path}: frames of {data.shape[2]} x {data.shape[1]} pixels after "
                f"{self.frame_hw[1]} x {self.frame_hw[0]} ones; a video has one size."
            )
        try:
            if self.kind == "ffmpeg":
                self._write_ffmpeg(data)
            elif self.kind == "gif":
                for frame in data:
                    self._file.write(self._gif_block(frame))
            elif self.kind == "strip":
                self._strip.append(data)
            else:
                from PIL import Image

                for i, frame in enumerate(data, start=self.frames_written):
                    Image.fromarray(frame).save(self.path / f"{i:07d}.png")
        except OSError as exc:
            self.abort()
            raise self._error(exc.strerror or str(exc)) from None
        self.frames_written += len(data)

    def close(self) -> Path:
        """Finish the file and rename it to ``path``; a failure is an OSError naming it."""
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frames to write (T = 0)")
        try:
            if self.kind == "ffmpeg":
                self._process.stdin.close()
                if self._process.wait() != 0:
                    raise OSError(self._ffmpeg_message())
                self._stderr.close()
            elif self.kind == "gif":
                self._file.write(b"\x3b")
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
            elif self.kind == "strip":
                from PIL import Image

                strip = np.concatenate([f for batch in self._strip for f in batch], 1)
                format = Image.registered_extensions()[self.ext]
                Image.fromarray(strip).save(self._temp, format=format)
                self._strip = []
            if self._temp is not None:
                os.replace(self._temp, self.path)
                self._temp = None
        except (OSError, ValueError) as exc:
            self.abort()
            raise self._error(getattr(exc, "strerror", None) or str(exc)) from None
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop encoding and delete the temporary file (``path`` is left as it was)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for handle in (
            self._file,
            self._stderr,
            getattr(self._process, "stdin", None),
        ):
            if handle is not None:
                try:
                    handle.close()
                except OSError:
                    pass
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None

    # -- helpers -----------------------------------------------------------------------------
    def _error(self, reason: str) -> OSError:
        state = "is left as it was" if self.path.exists() else "was not created"
        return OSError(
            f"{self.path}: writing the video failed ({' '.join(reason.split())}); "
            f"{self.path.name} {state}; free disk space or write elsewhere."
        )

    def _open(self) -> None:
        if self.kind == "folder":
            self.path.mkdir(parents=True, exist_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = _temporary_beside(self.path)
        if self.kind == "gif":
            self._file = open(self._temp, "wb")
        elif self.kind == "ffmpeg":
            self._start_ffmpeg()

    def _start_ffmpeg(self) -> None:
        from fractions import Fraction

        import imageio_ffmpeg

        h, w = self.frame_hw
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "rawvideo"]
        cmd += ["-vcodec", "rawvideo", "-s", f"{w + w % 2}x{h + h % 2}"]
        cmd += ["-pix_fmt", "rgb24", "-r", str(Fraction(self.fps).limit_denominator())]
        cmd += ["-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p"]
        if self.quality is not None:  # imageio's scale: 10 is best, crf 0; 8 is crf 10
            cmd += ["-crf", str(int((1 - self.quality / 10.0) * 51))]
        cmd += ["-v", "error", str(self._temp)]
        # ffmpeg's messages go to a file (a pipe could fill up and block it) and are
        # reported, in one line, only if it fails.
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
        )

    def _write_ffmpeg(self, data: np.ndarray) -> None:
        h, w = self.frame_hw
        if h % 2 or w % 2:
            data = np.pad(data, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        try:
            self._process.stdin.write(np.ascontiguousarray(data).tobytes())
        except OSError:  # ffmpeg stopped (a broken pipe): its own message says why
            self._process.wait()
            raise OSError(self._ffmpeg_message()) from None

    def _ffmpeg_message(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").splitlines()
        # "[out#0/mp4 @ 0x55...] Could not write header: No space left on device"
        lines = [re.sub(r"^\[[^]]*\]\s*", "", line).strip() for line in lines]
        lines = [line for line in lines if line]
        space = [line for line in lines if "No space left" in line]
        detail = (space or lines or [f"exit code {self._process.returncode}"])[0]
        return f"ffmpeg: {detail}"

    def _gif_block(self, frame: np.ndarray) -> bytes:
        """One frame's graphic-control extension and image block (header before frame 0).

        Pillow's multi-frame writer merges identical consecutive frames (after palette
        quantisation) into one longer frame, so a GIF of T frames could read back with
        fewer; here each frame is encoded by Pillow on its own and the frames are joined, so
        T frames are written and read. As Pillow does, a frame stores only the rectangle
        that changed since the previous one (the rest stays on screen), which keeps
        animations with a still part small.
        """
        import io

        from PIL import Image

        # GIF delays are in 1/100 s (check_fps keeps fps <= 50, a delay of at least 2).
        delay = max(2, int(round(100.0 / self.fps)))
        control = b"\x21\xf9\x04\x04" + delay.to_bytes(2, "little") + b"\x00\x00"
        top, left, bottom, right = 0, 0, frame.shape[0], frame.shape[1]
        previous, self._previous = self._previous, frame
        if previous is not None:
            changed = np.any(frame != previous, axis=-1)
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            if len(rows):
                top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            else:  # unchanged: a 1x1 frame keeps the frame (and its duration)
                bottom, right = 1, 1
        buffer = io.BytesIO()
        Image.fromarray(frame[top:bottom, left:right]).save(buffer, format="GIF")
        screen, block = _gif_image_block(buffer.getvalue())
        offset = int(left).to_bytes(2, "little") + int(top).to_bytes(2, "little")
        out = control + block[:1] + offset + block[5:]
        if previous is None:
            # Same canvas, no global colour table (each frame carries its own), colour
            # resolution kept; loop forever.
            screen = screen[:4] + bytes([screen[4] & 0x70, 0, 0])
            loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
            out = b"GIF89a" + screen + loop + out
        return out


def write_video(
    path: PathLike, frames, fps: float = 25, quality: Optional[float] = 8
) -> Path:
    """Write ``(T, H, W, 3)`` frames (float in [0, 1] or uint8), atomically.

    ``.mp4/.mov/.avi/.mkv``: libx264 yuv420p (odd sizes are padded by edge replication to
    even); ``.gif``: looping; ``.png/.jpg``: a strip ``(H, T*W, 3)``; a path without
    extension: a folder of ``%07d.png`` frames. ``fps`` must suit the container
    (:func:`check_fps`). A failure (a full disk) is an OSError and leaves an existing file
    at ``path`` as it was (:class:`VideoWriter`, which also writes batch by batch). Returns
    the path.
    """
    writer = VideoWriter(path, fps=fps, quality=quality)
    data = _to_uint8(frames, name=str(writer.path))
    with writer:
        writer.write(data)
    return writer.path
