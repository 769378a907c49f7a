"""Tests of fomm_tutorial.media on the shared real media and tiny generated files."""

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
