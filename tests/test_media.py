"""Tests of fomm_tutorial.media on the shared real media and tiny generated files."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from fomm_tutorial import media


def test_read_real_video(data_dir):
    v = media.read_video(data_dir / "driving.mp4")
    assert v.shape == (265, 256, 256, 3) and v.dtype == np.float32
    assert 0.0 <= v.min() and v.max() <= 1.0 and v.std() > 0.05
    assert media.video_fps(data_dir / "driving.mp4") == pytest.approx(30.0)
    assert media.count_frames(data_dir / "driving.mp4") == 265


def test_read_real_video_resized_and_limited(data_dir):
    with pytest.warns(UserWarning, match="stretches the picture 1.50x wider"):
        v = media.read_video(data_dir / "driving.mp4", size=(64, 96), max_frames=4)
    assert v.shape == (4, 64, 96, 3) and v.dtype == np.float32
    frames = list(media.iter_video(data_dir / "driving.mp4", size=32, max_frames=3))
    assert len(frames) == 3 and frames[0].shape == (32, 32, 3)
    np.testing.assert_allclose(
        frames[0], media.read_video(data_dir / "driving.mp4", size=32, max_frames=1)[0]
    )


def test_read_real_image_rgba_dropped(data_dir):
    raw = np.asarray(Image.open(data_dir / "source.png"))
    assert raw.shape == (402, 402, 4)
    img = media.read_image(data_dir / "source.png")
    assert img.shape == (402, 402, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img, raw[..., :3] / 255.0, atol=1e-6)
    small = media.read_image(data_dir / "source.png", size=64)
    assert small.shape == (64, 64, 3) and 0 <= small.min() and small.max() <= 1
    assert abs(small.mean() - img.mean()) < 0.02


def test_grey_and_uint16_images(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "g.png")
    img = media.read_image(tmp_path / "g.png")
    assert img.shape == (3, 4, 3)
    np.testing.assert_allclose(img[..., 1], grey / 255.0, atol=1e-6)
    deep = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    Image.fromarray(deep).save(tmp_path / "d.png")
    img = media.read_image(tmp_path / "d.png")
    np.testing.assert_allclose(img[..., 0], deep / 65535.0, atol=1e-6)
    la = np.stack([grey, np.full_like(grey, 7)], -1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(
        media.read_image(tmp_path / "la.png")[..., 2], grey / 255.0, atol=1e-6
    )


def _clip(t=5, h=16, w=24, seed=0):
    rng = np.random.default_rng(seed)
    # smooth content survives lossy codecs
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([yy, xx, 0.5 + 0 * xx], -1)
    return np.stack(
        [
            np.clip(base + 0.05 * k + 0.01 * rng.random((h, w, 3)), 0, 1)
            for k in range(t)
        ]
    ).astype(np.float32)


@pytest.mark.parametrize(
    "name,tol",
    [
        ("v.mp4", 0.05),
        ("v.gif", 0.05),
        ("v.png", 0.003),
        ("frames", 0.003),
        ("v.avi", 0.05),
        ("v.mov", 0.05),
    ],
)
def test_write_read_round_trip(tmp_path, name, tol):
    clip = _clip()
    media.write_video(tmp_path / name, clip, fps=10)
    back = media.read_video(tmp_path / name, frame_shape=clip.shape[1:3])
    assert back.shape == clip.shape and back.dtype == np.float32
    assert np.abs(back - clip).mean() < tol


def test_write_mp4_odd_size_and_fps(tmp_path):
    clip = _clip(t=3, h=15, w=17)
    media.write_video(tmp_path / "odd.mp4", clip, fps=12)
    back = media.read_video(tmp_path / "odd.mp4")
    assert back.shape == (3, 16, 18, 3)  # padded to even sizes by edge replication
    assert np.abs(back[:, :15, :17] - clip).mean() < 0.05
    assert media.video_fps(tmp_path / "odd.mp4") == pytest.approx(12.0)


def test_folder_sorted(tmp_path):
    d = tmp_path / "vid"
    d.mkdir()
    for i in [2, 0, 10, 1]:
        Image.fromarray(np.full((4, 4, 3), i * 20, np.uint8)).save(d / f"{i:07d}.png")
    v = media.read_video(d)
    np.testing.assert_allclose(v[:, 0, 0, 0] * 255, [0, 20, 40, 200], atol=1e-4)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        media.read_video(tmp_path / "missing.mp4")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        media.read_image(tmp_path / "missing.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*empty folder"):
        media.read_video(tmp_path / "empty")
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ValueError, match="corrupt.mp4"):
        media.read_video(bad)
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="zero.mp4"):
        media.read_video(tmp_path / "zero.mp4")
    (tmp_path / "bad.gif").write_bytes(b"GIF89a" + b"\0" * 5)
    with pytest.raises(ValueError, match="bad.gif"):
        media.read_video(tmp_path / "bad.gif")
    (tmp_path / "x.xyz").write_bytes(b"abc")
    with pytest.raises(ValueError, match="x.xyz.*unknown"):
        media.read_video(tmp_path / "x.xyz")
    (tmp_path / "img.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="img.png"):
        media.read_image(tmp_path / "img.png")


def test_rgba_gif_and_wrong_channel_count(tmp_path):
    frames = [
        Image.fromarray(np.full((8, 8, 4), (10 * k, 100, 200, 128), np.uint8), "RGBA")
        for k in range(3)
    ]
    frames[0].save(
        tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100
    )
    v = media.read_video(tmp_path / "a.gif")
    assert v.shape == (3, 8, 8, 3)
    with pytest.raises(ValueError, match="channel"):
        media.to_float_rgb(np.zeros((4, 4, 5), np.uint8), name="five.png")
    # a 5-channel TIFF is the realistic case; check the message names the file
    with pytest.raises(ValueError, match="five.png"):
        media.to_float_rgb(np.zeros((4, 4, 5), np.uint8), name="five.png")


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match=r"out.mp4.*\[0, 1\]"):
        media.write_video(
            tmp_path / "out.mp4", np.full((2, 4, 4, 3), 255.0, np.float32)
        )
    with pytest.raises(ValueError, match="out.mp4.*shape"):
        media.write_video(tmp_path / "out.mp4", np.zeros((2, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="out.webp2"):
        media.write_video(tmp_path / "out.webp2", np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        media.write_video(tmp_path / "n.gif", np.full((2, 4, 4, 3), np.nan, np.float32))
    for fps in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="fps"):
            media.write_video(tmp_path / "f.gif", np.zeros((2, 4, 4, 3)), fps=fps)
    assert not (tmp_path / "f.gif").exists()


def test_gif_keeps_every_frame(tmp_path):
    # Pillow's multi-frame writer merged identical consecutive frames (20 -> 1).
    rng = np.random.default_rng(0)
    still = np.repeat(rng.random((1, 16, 24, 3)).astype(np.float32), 20, axis=0)
    media.write_video(tmp_path / "still.gif", still, fps=10)
    assert media.count_frames(tmp_path / "still.gif") == 20
    assert media.video_fps(tmp_path / "still.gif") == pytest.approx(10)
    # Frames that differ by less than a palette step were merged too (20 -> 15 or 16).
    slow = np.stack(
        [np.full((8, 8, 3), 0.5 + 0.001 * k, np.float32) for k in range(20)]
    )
    media.write_video(tmp_path / "slow.gif", slow, fps=25)
    back = media.read_video(tmp_path / "slow.gif")
    assert back.shape == slow.shape and np.abs(back - slow).max() < 0.01


@pytest.mark.parametrize("size", ["64", 64.5, True, (64, "64"), (64, 64, 3, 1), -4])
def test_bad_sizes_raise(size, data_dir):
    # size="64" used to be read as ("6", "4") -> 6x4 frames; 64.5 gave a TypeError.
    with pytest.raises(ValueError, match="size"):
        media.normalize_size(size)
    with pytest.raises(ValueError, match="size"):
        media.read_video(data_dir / "driving.mp4", size=size, max_frames=1)


def test_sizes():
    assert media.normalize_size(64) == (64, 64)
    assert media.normalize_size(np.int64(32)) == (32, 32)
    assert media.normalize_size((48.0, 64)) == (48, 64)
    assert media.normalize_size((48, 64, 3)) == (48, 64)
    assert media.normalize_size(None) is None


def test_to_float_rgb_stacks_and_ranges():
    video = np.zeros((2, 3, 4, 5, 1), np.uint8)  # any leading axes, grey
    assert media.to_float_rgb(video).shape == (2, 3, 4, 5, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        media.to_float_rgb(np.full((4, 4, 3), 255.0))
    with pytest.raises(ValueError, match="NaN"):
        media.to_float_rgb(np.full((4, 4, 3), np.nan))
    np.testing.assert_array_equal(media.to_float_rgb(np.full((2, 2), 1.0005)), 1.0)


def test_gif_with_a_still_part_reads_back_whole_frames(tmp_path):
    # Frames store only the changed rectangle; readers composite them onto the previous frame.
    rng = np.random.default_rng(2)
    background = (
        rng.random((20, 30, 3)) * 4
    ).round() / 4  # few colours: exact in a palette
    frames = np.repeat(background[None], 6, axis=0)
    for t in range(6):
        frames[t, 5:9, 3 * t : 3 * t + 4] = [1.0, 0.0, 0.0]
    media.write_video(tmp_path / "moving.gif", frames, fps=10)
    back = media.read_video(tmp_path / "moving.gif")
    assert back.shape == frames.shape
    assert np.abs(back - frames).max() < 1 / 255 + 1e-6


# ---------------------------------------------------------------------------------------------
# Issue 18: nothing a user owns is lost, one clear line for bad input, no silent wrong result
# ---------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fresh_aspect_warnings(monkeypatch):
    """Each test sees the once-per-size stretch warnings afresh."""
    monkeypatch.setattr(media, "_warned_aspects", set(), raising=False)


def test_to_float_rgb_accepts_uint8_uint16_floats_and_refuses_other_integers():
    # int32/int64 0..255 were divided by 2**31 / 2**63 (black); int16 negatives passed.
    for dtype in (np.int32, np.int64, np.int16, np.int8, np.uint32):
        with pytest.raises(ValueError, match=f"{np.dtype(dtype).name}.*uint8"):
            media.to_float_rgb(np.full((4, 4, 3), 100, dtype))
    assert media.to_float_rgb(np.full((2, 2, 3), 255, np.uint8)).max() == 1.0
    assert media.to_float_rgb(np.full((2, 2, 3), 65535, np.uint16)).max() == 1.0
    assert media.to_float_rgb(np.full((2, 2, 3), 0.5, np.float64)).max() == 0.5


def _png_header(path, width, height):
    """A PNG whose header claims width x height (one tiny compressed row of data)."""
    import struct
    import zlib

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4))
        + chunk(b"IEND", b"")
    )
    return path


def test_decompression_bomb_is_one_clear_line(tmp_path):
    # Pillow's DecompressionBombError went through as a traceback.
    bomb = _png_header(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(ValueError, match="bomb.png.*60000 x 60000.*shrink"):
        media.read_image(bomb, size=64)


def test_an_image_renamed_to_a_video_is_refused(tmp_path):
    # A PNG renamed .mp4 was read by ffmpeg as a one-frame video.
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "still.png")
    for name in ("still.mp4", "still.mov"):
        (tmp_path / name).write_bytes((tmp_path / "still.png").read_bytes())
        with pytest.raises(ValueError, match=f"{name} is a PNG image.*still.png"):
            media.read_video(tmp_path / name)
        with pytest.raises(ValueError, match="PNG image"):
            media.video_fps(tmp_path / name)


def test_fps_must_suit_the_container(tmp_path):
    # GIF 1e-300: OverflowError; mp4 1e-300: ffmpeg's broken pipe; mp4 1e9: fps read 0.
    frames = np.zeros((3, 8, 8, 3), np.float32)
    for name, fps in (("a.gif", 1e-300), ("a.mp4", 1e-300), ("b.mp4", 1e9)):
        with pytest.raises(ValueError, match=f"{name}: fps .* cannot be stored"):
            media.write_video(tmp_path / name, frames, fps=fps)
    with pytest.raises(ValueError, match=r"GIF.*0.01 to 50 \(write .mp4"):
        media.write_video(tmp_path / "fast.gif", frames, fps=60)
    assert not list(tmp_path.iterdir())
    lo, hi = media.FPS_RANGES["ffmpeg"]
    for fps in (lo, hi):
        media.write_video(tmp_path / "edge.mp4", frames, fps=fps)
        assert media.video_fps(tmp_path / "edge.mp4", default=-1) == pytest.approx(fps)
    media.write_video(tmp_path / "edge.gif", frames, fps=50)
    assert media.video_fps(tmp_path / "edge.gif") == pytest.approx(50)


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """The temporary file of the next video written is /dev/full (writes: ENOSPC)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    made = []

    def temporary(path):
        link = path.parent / f".{path.name}.part{path.suffix}"
        link.symlink_to("/dev/full")
        made.append(link)
        return link

    monkeypatch.setattr(media, "_temporary_beside", temporary, raising=False)
    return made


@pytest.mark.parametrize("name", ["result.mp4", "result.gif"])
def test_full_disk_fails_and_keeps_the_existing_file(tmp_path, full_disk, name):
    # ffmpeg's failure was ignored (a "written" unreadable mp4 over a good one); a GIF was
    # left half-written.
    target = tmp_path / name
    target.write_bytes(b"the user's good video")
    frames = np.random.default_rng(0).random((40, 32, 32, 3)).astype(np.float32)
    with pytest.raises(OSError, match=f"{name}.*No space left.*left as it was") as err:
        media.write_video(target, frames, fps=25)
    assert len(str(err.value).splitlines()) == 1
    assert target.read_bytes() == b"the user's good video"
    assert full_disk and not any(os.path.lexists(p) for p in full_disk)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["result.mp4", "result.gif", "strip.png"])
def test_a_failure_while_writing_leaves_no_temporary_file(tmp_path, name):
    target = tmp_path / name
    target.write_bytes(b"old")
    frames = np.zeros((2, 8, 8, 3), np.float32)
    with pytest.raises(KeyboardInterrupt):
        with media.VideoWriter(target, fps=10) as writer:
            writer.write(frames)
            assert len(list(tmp_path.iterdir())) == 2  # the target and the temporary
            raise KeyboardInterrupt
    with pytest.raises(ValueError, match="one size"):
        with media.VideoWriter(target, fps=10) as writer:
            writer.write(frames)
            writer.write(np.zeros((2, 10, 8, 3), np.float32))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_video_writer_in_batches_equals_write_video(tmp_path):
    frames = _clip(t=7, h=16, w=24)
    media.write_video(tmp_path / "whole.gif", frames, fps=10)
    with media.VideoWriter(tmp_path / "batches.gif", fps=10) as writer:
        for start in range(0, 7, 3):
            writer.write(frames[start : start + 3])
    assert writer.frames_written == 7
    whole = (tmp_path / "whole.gif").read_bytes()
    assert (tmp_path / "batches.gif").read_bytes() == whole
    with media.VideoWriter(tmp_path / "batches.mp4", fps=10) as writer:
        for start in range(0, 7, 3):
            writer.write(frames[start : start + 3])
    back = media.read_video(tmp_path / "batches.mp4")
    assert back.shape == (7, 16, 24, 3) and np.abs(back - frames).mean() < 0.03
    mode = (tmp_path / "batches.mp4").stat().st_mode & 0o777
    assert mode == (tmp_path / "whole.gif").stat().st_mode & 0o777  # not mkstemp's 0600


def test_a_symlinked_output_keeps_the_link_and_a_device_is_refused(tmp_path):
    real = tmp_path / "real.gif"
    real.write_bytes(b"old")
    (tmp_path / "link.gif").symlink_to(real)
    media.write_video(tmp_path / "link.gif", np.zeros((2, 4, 4, 3)), fps=10)
    assert (tmp_path / "link.gif").is_symlink() and media.count_frames(real) == 2
    if os.path.exists("/dev/null"):
        (tmp_path / "null.mp4").symlink_to("/dev/null")
        with pytest.raises(ValueError, match="not a regular file"):
            media.write_video(tmp_path / "null.mp4", np.zeros((2, 4, 4, 3)))


def test_resizing_refuses_tiny_images_and_warns_on_stretching(tmp_path):
    # A 1 x 1 source or 8 x 8 frames for a 64-pixel model were enlarged without a word.
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    with pytest.raises(ValueError, match=r"dot.png: 1 x 1 .* at least 16 x 16"):
        media.read_image(tmp_path / "dot.png", size=64)
    media.write_video(tmp_path / "tiny.gif", np.zeros((2, 8, 8, 3)), fps=10)
    with pytest.raises(ValueError, match="tiny.gif: 8 x 8 .*too small"):
        media.read_video(tmp_path / "tiny.gif", size=64)
    assert media.read_video(tmp_path / "tiny.gif", size=32).shape == (2, 32, 32, 3)
    # A 402 x 100 frame made square: one warning per pair of sizes, none within 5 %.
    wide = np.zeros((100, 402, 3), np.uint8)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    with pytest.warns(UserWarning, match=r"402 x 100 .* 64 x 64 stretches .*4.02x"):
        media.read_image(tmp_path / "wide.png", size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        media.read_image(tmp_path / "wide.png", size=64)  # warned once already
        media.resize_frames(np.zeros((100, 104, 3), np.float32), 64, name="x")
    with pytest.warns(UserWarning, match="driving"):
        media.resize_frames(np.zeros((3, 64, 32, 3), np.float32), 64, name="driving")


def test_large_images_are_shrunk_before_the_anti_aliased_resize(tmp_path, monkeypatch):
    # A 9000 x 9000 source took 88 s in skimage's resize before the progress bar showed.
    yy, xx = np.mgrid[0:2048, 0:2048] / 2048.0
    smooth = [np.sin(6 * xx), np.cos(5 * yy), np.sin(4 * (xx + yy))]
    big = (127.5 + 127 * np.stack(smooth, -1)).astype(np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")  # 2048 x 2048
    seen = []
    resize = media._resize_one
    monkeypatch.setattr(
        media, "_resize_one", lambda f, hw: seen.append(f.shape) or resize(f, hw)
    )
    small = media.read_image(tmp_path / "big.png", size=64)
    assert seen == [(256, 256, 3)]  # 8x smaller first, still 4x the target
    direct = resize(big / np.float32(255.0), (64, 64))  # the slow way, whole image
    assert np.abs(small - direct).mean() < 0.01 and np.abs(small - direct).max() < 0.05
