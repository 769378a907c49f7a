"""Tests of fomm_tutorial.data: layout, splits, id_sampling, augmentations, tf.data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fomm_tutorial import data  # noqa: E402
from fomm_tutorial import media  # noqa: E402
from fomm_tutorial.sprites import write_sprite_dataset  # noqa: E402

FLIP = {"flip_param": {"horizontal_flip": True, "time_flip": True}}
JITTER = {
    "jitter_param": {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.1}
}


@pytest.fixture(scope="module")
def sprites(tmp_path_factory):
    root = tmp_path_factory.mktemp("sprites")
    return write_sprite_dataset(
        root, num_videos=10, num_frames=6, size=32, num_parts=3, seed=3
    )


def _make_flat(root, names, t=4, size=8):
    root.mkdir(parents=True, exist_ok=True)
    for k, n in enumerate(names):
        clip = np.full((t, size, size, 3), k / max(len(names), 1), np.float32)
        media.write_video(root / n, clip)
    return root


# ---------------------------------------------------------------------------- layout and splits
def test_predefined_split_and_id_sampling(sprites):
    ds = data.FramesDataset(sprites, frame_shape=(32, 32, 3), is_train=True)
    assert len(ds) == 8
    ids = data.FramesDataset(
        sprites, frame_shape=(32, 32, 3), id_sampling=True, is_train=True
    )
    assert ids.videos == ["id0000", "id0001"]
    chosen = {ids.video_path(0, np.random.default_rng(s)).name for s in range(30)}
    assert len(chosen) > 1 and all(n.startswith("id0000#") for n in chosen)
    test = data.FramesDataset(sprites, frame_shape=(32, 32, 3), is_train=False)
    item = test[0]
    assert item["video"].shape == (6, 32, 32, 3) and item["video"].dtype == np.float32
    item = ds[3]
    assert set(item) == {"source", "driving", "name"} and item["source"].shape == (
        32,
        32,
        3,
    )


def test_auto_split_is_deterministic_80_20(tmp_path):
    names = [f"v{i:02d}.gif" for i in range(10)]
    root = _make_flat(tmp_path / "flat", names)
    tr = data.FramesDataset(root, frame_shape=(8, 8), is_train=True)
    te = data.FramesDataset(root, frame_shape=(8, 8), is_train=False)
    assert len(tr) == 8 and len(te) == 2 and not set(tr.videos) & set(te.videos)
    assert set(tr.videos) | set(te.videos) == set(names)
    assert (
        data.FramesDataset(root, frame_shape=(8, 8), is_train=False).videos == te.videos
    )


def test_id_sampling_bad_names_clear_error(tmp_path):
    root = _make_flat(tmp_path / "ds" / "train", ["a.gif", "b#1.gif"])
    (tmp_path / "ds" / "test").mkdir()
    with pytest.raises(ValueError, match=r"a\.gif.*id_sampling: False"):
        data.FramesDataset(tmp_path / "ds", frame_shape=(8, 8), id_sampling=True)
    assert root.exists()


def test_train_without_test_folder(tmp_path):
    _make_flat(tmp_path / "ds" / "train", ["a.gif"])
    with pytest.raises(FileNotFoundError, match="test"):
        data.FramesDataset(tmp_path / "ds", frame_shape=(8, 8))


def test_mixed_formats_and_strip(tmp_path):
    root = tmp_path / "mix"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    clip = np.random.default_rng(0).random((5, 8, 8, 3)).astype(np.float32)
    media.write_video(root / "train" / "s.png", clip)  # strip
    media.write_video(root / "train" / "f", clip)  # folder
    media.write_video(root / "train" / "g.gif", clip)
    media.write_video(root / "test" / "s.png", clip)
    ds = data.FramesDataset(root, frame_shape=(8, 8, 3))
    assert ds.videos == ["f", "g.gif", "s.png"]
    for i in range(3):
        item = ds.get(i, np.random.default_rng(i))
        assert item["source"].shape == (8, 8, 3)
    v = data.FramesDataset(root, frame_shape=(8, 8, 3), is_train=False)[0]["video"]
    np.testing.assert_allclose(v, clip, atol=1 / 255)


def test_bad_media_errors_name_the_file(tmp_path):
    root = tmp_path / "bad"
    (root / "train" / "empty#1.mp4").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "train" / "corrupt#1.mp4").write_bytes(np.random.default_rng(1).bytes(500))
    ds = data.FramesDataset(root, frame_shape=(8, 8))
    with pytest.raises(ValueError, match="corrupt#1.mp4"):
        ds.get(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty#1.mp4.*empty folder"):
        ds.get(1, np.random.default_rng(0))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.FramesDataset(tmp_path / "nowhere")


def test_unreadable_videos_refused_before_training(tmp_path):
    """A truncated mp4 in a training set was a tf.data traceback in the middle of training:
    check_videos names every unreadable video first (headers only for MP4/MOV)."""
    root = _make_flat(tmp_path / "videos", [f"v{i}.mp4" for i in range(4)] + ["g.gif"])
    (root / "frames").mkdir()
    whole = (root / "v1.mp4").read_bytes()
    assert data.video_problem(root / "v1.mp4") is None
    assert data.video_problem(root / "g.gif") is None
    for cut in (len(whole) // 2, len(whole) - 1, 40):
        (root / "v1.mp4").write_bytes(whole[:cut])
        assert "v1.mp4: cut short" in data.video_problem(root / "v1.mp4")
    (root / "v2.mp4").write_bytes(b"")
    assert data.video_problem(root / "v2.mp4").endswith("v2.mp4: the file is empty")
    assert "empty folder" in data.video_problem(root / "frames")
    (root / "g.gif").write_bytes(np.random.default_rng(0).bytes(100))
    assert "g.gif" in data.video_problem(root / "g.gif")
    params = {"root_dir": str(root), "frame_shape": [8, 8, 3]}
    ds = data.FramesDataset(root, frame_shape=(8, 8), is_train=True)
    with pytest.raises(ValueError) as err:
        data.make_dataset(params, batch_size=1, check_videos=True)
    bad = [n for n in ds.videos if n in ("v1.mp4", "v2.mp4", "frames", "g.gif")]
    assert f"{len(bad)} of the {len(ds)} training videos in {root} cannot be read" in (
        str(err.value)
    )
    assert all(n in str(err.value) for n in bad[:3])


def test_repeater_and_pairs(sprites):
    ds = data.FramesDataset(sprites, frame_shape=(32, 32, 3), is_train=True)
    rep = data.DatasetRepeater(ds, num_repeats=3)
    assert len(rep) == 24
    np.testing.assert_array_equal(rep[9]["source"], ds[1]["source"])
    test = data.FramesDataset(sprites, frame_shape=(32, 32, 3), is_train=False)
    pairs = data.PairedDataset(test, number_of_pairs=3, seed=0)
    assert len(pairs) == 3 and len(set(pairs.pairs)) == 3
    item = pairs[0]
    assert set(item) == {"driving_video", "driving_name", "source_video", "source_name"}
    assert data.PairedDataset(test, 3, seed=0).pairs == pairs.pairs


def test_pairs_list_csv(sprites, tmp_path):
    test = data.FramesDataset(sprites, frame_shape=(32, 32, 3), is_train=False)
    a, b = test.videos
    csv = tmp_path / "pairs.csv"
    csv.write_text(f"distance,source,driving,frame\n0,{a},{b},0\n0,{a},missing.mp4,0\n")
    test.pairs_list = csv
    pairs = data.PairedDataset(test, number_of_pairs=5)
    assert pairs.pairs == [(1, 0)]
    assert pairs[0]["driving_name"] == b and pairs[0]["source_name"] == a


# ---------------------------------------------------------------------------- augmentation
def _clip(seed=0, t=2, h=12, w=16):
    return np.random.default_rng(seed).random((t, h, w, 3)).astype(np.float32)


def test_flip_probabilities():
    aug = data.AllAugmentationTransform(**FLIP)
    clip = _clip()
    counts = {"time": 0, "h": 0, "none": 0}
    rng = np.random.default_rng(123)
    n = 4000
    for _ in range(n):
        out = aug(clip, rng)
        if np.array_equal(out, clip[::-1]):
            counts["time"] += 1
        elif np.array_equal(out, clip[:, :, ::-1]):
            counts["h"] += 1
        else:
            assert np.array_equal(out, clip)
            counts["none"] += 1
    # P = 0.5, 0.25, 0.25; 5 sigma bounds
    assert abs(counts["time"] / n - 0.5) < 5 * np.sqrt(0.25 / n)
    assert abs(counts["h"] / n - 0.25) < 5 * np.sqrt(0.1875 / n)
    assert abs(counts["none"] / n - 0.25) < 5 * np.sqrt(0.1875 / n)


def test_jitter_same_parameters_for_both_frames():
    aug = data.AllAugmentationTransform(**JITTER)
    frame = _clip(1, t=1)[0]
    clip = np.stack([frame, frame])
    for s in range(5):
        out = aug(clip, np.random.default_rng(s))
        assert out.shape == clip.shape and out.dtype == np.float32
        np.testing.assert_array_equal(out[0], out[1])
        assert not np.allclose(out[0], frame)
        assert 0 <= out.min() and out.max() <= 1


def test_crop_resize_same_for_both_frames():
    aug = data.AllAugmentationTransform(
        resize_param={"ratio": [0.9, 1.1]},
        crop_param={"size": [12, 12]},
        **FLIP,
        **JITTER,
    )
    frame = _clip(2, t=1, h=16, w=16)[0]
    clip = np.stack([frame, frame])
    for s in range(5):
        out = aug(clip, np.random.default_rng(s))
        assert out.shape == (2, 12, 12, 3)
        np.testing.assert_array_equal(out[0], out[1])
    # crop only: a crop of the original, position random
    crop = data.RandomCrop([8, 8])
    out = crop(np.stack([frame, 1 - frame]), np.random.default_rng(0))
    found = [
        (y, x)
        for y in range(9)
        for x in range(9)
        if np.array_equal(out[0], frame[y : y + 8, x : x + 8])
    ]
    assert len(found) == 1 and np.array_equal(
        out[1], 1 - frame[found[0][0] : found[0][0] + 8, found[0][1] : found[0][1] + 8]
    )
    # smaller than the crop: edge padding
    assert crop(_clip(3, h=5, w=6), np.random.default_rng(0)).shape == (2, 8, 8, 3)


def test_jitter_factors_ranges():
    j = data.ColorJitter(brightness=0.1, contrast=0.2, saturation=0.3, hue=0.05)
    fs = {}
    rng = np.random.default_rng(0)
    for _ in range(300):
        for fn, f in j.sample(rng):
            fs.setdefault(fn.__name__, []).append(f)
    assert 0.9 <= min(fs["adjust_brightness"]) and max(fs["adjust_brightness"]) <= 1.1
    assert 0.8 <= min(fs["adjust_contrast"]) and max(fs["adjust_contrast"]) <= 1.2
    assert 0.7 <= min(fs["adjust_saturation"]) and max(fs["adjust_saturation"]) <= 1.3
    assert -0.05 <= min(fs["adjust_hue"]) and max(fs["adjust_hue"]) <= 0.05
    with pytest.raises(ValueError, match="unknown keys.*bogus"):
        data.AllAugmentationTransform.from_params({"bogus": {}})


# ---------------------------------------------------------------------------- tf.data
def test_make_dataset_shapes_and_determinism(sprites):
    import tensorflow as tf

    cfg = {
        "dataset_params": {
            "root_dir": str(sprites),
            "frame_shape": [32, 32, 3],
            "id_sampling": True,
            "augmentation_params": {**FLIP, **JITTER},
        },
        "train_params": {"num_repeats": 3},
    }
    ds = data.make_dataset(cfg, batch_size=4, seed=5, num_parallel_calls=2)
    batches = list(ds)
    assert len(batches) == 1  # 2 identities x 3 repeats = 6 items, drop_remainder
    b = batches[0]
    assert set(b) == {"source", "driving"}
    assert b["source"].shape == (4, 32, 32, 3) and b["source"].dtype == tf.float32
    again = list(data.make_dataset(cfg, batch_size=4, seed=5, num_parallel_calls=2))
    np.testing.assert_array_equal(b["driving"].numpy(), again[0]["driving"].numpy())
    other = list(data.make_dataset(cfg, batch_size=4, seed=6))
    assert not np.array_equal(b["driving"].numpy(), other[0]["driving"].numpy())
    plain = data.make_dataset(
        {**cfg["dataset_params"], "id_sampling": False},
        batch_size=3,
        seed=0,
        with_names=True,
    )
    first = next(iter(plain))
    assert first["name"].shape == (3,)
    test = data.make_dataset(cfg, is_train=False)
    v = next(iter(test))
    assert v["video"].shape == (1, 6, 32, 32, 3)


def test_make_dataset_errors(sprites):
    with pytest.raises(ValueError, match="unknown keys.*frame_size"):
        data.make_dataset({"root_dir": str(sprites), "frame_size": 3}, batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        data.make_dataset(
            {"root_dir": str(sprites), "frame_shape": [32, 32, 3]}, batch_size=100
        )


def test_real_video_dataset(data_dir, tmp_path):
    """The shared driving.mp4 (linked, not copied) through FramesDataset and make_dataset."""
    root = tmp_path / "real"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "train" / "face#1.mp4").symlink_to(data_dir / "driving.mp4")
    (root / "test" / "face#1.mp4").symlink_to(data_dir / "driving.mp4")
    ds = data.FramesDataset(root, frame_shape=(32, 32, 3), id_sampling=True)
    a = ds.get(0, np.random.default_rng(0))  # first call decodes the whole video
    b = ds.get(0, np.random.default_rng(0))  # later calls decode up to the frame needed
    np.testing.assert_allclose(a["source"], b["source"], atol=1e-6)
    np.testing.assert_allclose(a["driving"], b["driving"], atol=1e-6)
    assert ds._frame_counts[root / "train" / "face#1.mp4"] == 265
    batch = next(iter(data.make_dataset(ds, batch_size=2, num_repeats=2, seed=0)))
    assert batch["source"].shape == (2, 32, 32, 3)


def test_write_clip_dataset_splits_in_time(tmp_path):
    """One video split in time: the held-out frames never reach the training folder."""
    frames = np.linspace(0, 1, 10)[:, None, None, None] * np.ones((10, 16, 24, 3))
    media.write_video(tmp_path / "clip.gif", frames.astype(np.float32), fps=10)
    folders = data.write_clip_dataset(
        tmp_path / "clip.gif", tmp_path / "data", 7, size=8
    )
    assert folders["train"] == tmp_path / "data" / "train" / "clip"
    train = media.read_video(folders["train"])
    test = media.read_video(folders["test"])
    assert train.shape == (7, 8, 8, 3) and test.shape == (3, 8, 8, 3)
    assert test[0].mean() > train[-1].mean()  # frames kept in order across the split
    with pytest.raises(ValueError, match="already holds"):
        data.write_clip_dataset(tmp_path / "clip.gif", tmp_path / "data", 7)
    with pytest.raises(ValueError, match="test_start=10"):
        data.write_clip_dataset(tmp_path / "clip.gif", tmp_path / "other", 10)
