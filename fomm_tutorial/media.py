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

``size`` is ``None`` (keep), an int ``s`` (-> ``(s, s)``) or ``(h, w)`` (:func:`normalize_size`);
resizing uses ``skimage.transform.resize`` with anti-aliasing (:func:`resize_frames`, the
package's one resizer). :func:`to_float_rgb` is the package's one image normalisation.
GIFs are written frame by frame, so every frame is kept (identical frames too).
"""

from __future__ import annotations

import os
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
    """Images ``(H, W)`` or ``(..., H, W, C)`` of any integer/float dtype -> float32 RGB in [0, 1].

    The one image normalisation of the package (files, the CLI and :mod:`fomm_tutorial.animation`
    use it). A 2-D array is one grey image; otherwise the last axis holds the channels:
    grey -> RGB, grey+alpha -> grey -> RGB, RGBA -> RGB (alpha dropped, as the original's
    ``[..., :3]``). uint8 is divided by 255, uint16 by 65535, other integers by their max,
    bool -> {0, 1}; floats must already be in [0, 1] (up to 1e-3 rounding, then clipped):
    NaN/inf or values such as 0..255 raise a ValueError rather than turning white.

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
    elif np.issubdtype(a.dtype, np.integer):
        out = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
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
            f"{name}: unsupported dtype {a.dtype}; give floats in [0, 1] or uint8."
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


def resize_frames(frames: np.ndarray, size: Size) -> np.ndarray:
    """Resize ``(H, W, 3)`` or ``(T, H, W, 3)`` float frames to ``size`` (anti-aliased)."""
    hw = normalize_size(size)
    if hw is None:
        return frames
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


def _load_raw_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
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
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(
            f"{path}: cannot decode the image ({e}); the file is corrupt or not an "
            "image. Re-export it as PNG/JPEG."
        ) from None


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
    image = to_float_rgb(_load_raw_image(path), name=str(path))
    return resize_frames(image, size)


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
def _ffmpeg_reader(path: Path):
    import imageio.v2 as iio

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
        raw = (_load_raw_image(p) for p in _frame_files(path))
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
    for i, frame in enumerate(raw):
        if max_frames is not None and i >= max_frames:
            break
        name = str(next(names)) if names is not None else f"{path} (frame {i})"
        f = to_float_rgb(frame, name=name)
        if hw is not None:
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


def _write_gif(path: Path, data: np.ndarray, fps: float) -> None:
    """Write every frame of ``(T, H, W, 3)`` uint8 as a looping GIF, one palette per frame.

    Pillow's multi-frame writer merges identical consecutive frames (after palette quantisation)
    into one longer frame, so a GIF of T frames could read back with fewer; here each frame is
    encoded by Pillow on its own and the frames are joined, so T frames are written and read.
    As Pillow does, a frame stores only the rectangle that changed since the previous one (the
    rest stays on screen), which keeps animations with a still part small.
    """
    import io

    from PIL import Image

    # GIF delays are in 1/100 s; viewers show delays below 2 as 10, so 50 fps is the fastest.
    delay = max(2, int(round(100.0 / fps)))
    control = b"\x21\xf9\x04\x04" + delay.to_bytes(2, "little") + b"\x00\x00"
    blocks = []
    screen = None
    previous = None
    for frame in data:
        top, left, bottom, right = 0, 0, frame.shape[0], frame.shape[1]
        if previous is not None:
            changed = np.any(frame != previous, axis=-1)
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            if len(rows):
                top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            else:  # unchanged: a 1x1 frame keeps the frame (and its duration)
                bottom, right = 1, 1
        previous = frame
        buffer = io.BytesIO()
        Image.fromarray(frame[top:bottom, left:right]).save(buffer, format="GIF")
        frame_screen, block = _gif_image_block(buffer.getvalue())
        screen = screen or frame_screen
        offset = int(left).to_bytes(2, "little") + int(top).to_bytes(2, "little")
        blocks.append(control + block[:1] + offset + block[5:])
    # Same canvas, no global colour table (each frame carries its own), colour resolution kept.
    screen = screen[:4] + bytes([screen[4] & 0x70, 0, 0])
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    path.write_bytes(b"GIF89a" + screen + loop + b"".join(blocks) + b"\x3b")


def write_video(
    path: PathLike, frames, fps: float = 25, quality: Optional[float] = 8
) -> Path:
    """Write ``(T, H, W, 3)`` frames (float in [0, 1] or uint8).

    ``.mp4/.mov/.avi/.mkv``: libx264 yuv420p (odd sizes are padded by edge replication to even);
    ``.gif``: Pillow, looping; ``.png/.jpg``: a strip ``(H, T*W, 3)``; a path without extension:
    a folder of ``%07d.png`` frames. Returns the path.
    """
    path = Path(path)
    fps = float(fps)
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"{path}: fps must be a positive number, got {fps}")
    data = _to_uint8(frames, name=str(path))
    ext = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext in FFMPEG_EXTENSIONS:
        import imageio.v2 as iio

        t, h, w, _ = data.shape
        ph, pw = h % 2, w % 2
        if ph or pw:
            data = np.pad(data, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        writer = iio.get_writer(
            str(path),
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            quality=quality,
            macro_block_size=1,
            ffmpeg_log_level="error",
        )
        try:
            for f in data:
                writer.append_data(f)
        finally:
            writer.close()
    elif ext in GIF_EXTENSIONS:
        _write_gif(path, data, fps)
    elif ext in IMAGE_EXTENSIONS:
        from PIL import Image

        strip = np.concatenate(list(data), axis=1)
        Image.fromarray(strip).save(path)
    elif ext == "":
        from PIL import Image

        path.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(data):
            Image.fromarray(f).save(path / f"{i:07d}.png")
    else:
        raise ValueError(
            f"{path}: unknown video extension {ext!r}; use .mp4, .gif, .png (strip) "
            "or no extension (a folder of PNG frames)."
        )
    return path
