"""Tests of fomm_tutorial.sprites: the procedural sprite dataset and the held-out protocol."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fomm_tutorial import data  # noqa: E402
from fomm_tutorial import media  # noqa: E402
from fomm_tutorial.sprites import (  # noqa: E402
    HELDOUT_SEEDS,
    heldout_videos,
    load_sprite_positions,
    sprite_config,
    sprite_identity,
    sprite_video,
    training_identity_seeds,
    write_sprite_dataset,
)


@pytest.fixture(scope="module")
def sprites(tmp_path_factory):
    root = tmp_path_factory.mktemp("sprites")
    return write_sprite_dataset(
        root, num_videos=10, num_frames=6, size=32, num_parts=3, seed=3
    )


def test_sprite_layout(sprites):
    train = data.list_videos(sprites / "train")
    test = data.list_videos(sprites / "test")
    assert len(train) == 8 and len(test) == 2 and not set(train) & set(test)
    assert {n.split("#")[0] for n in test} == {
        n.split("#")[0] for n in train
    }  # shared ids
    assert all(
        "#" in n and n.endswith(".mp4") and (sprites / "train" / n).is_dir()
        for n in train
    )
    assert len(os.listdir(sprites / "train" / train[0])) == 6
    pos = load_sprite_positions(sprites, "test", test[0])
    assert pos.shape == (6, 3, 2) and pos.dtype == np.float32 and np.abs(pos).max() <= 1


def test_sprite_determinism_and_resolution():
    f1, p1 = sprite_video(5, 24, 4, seed=7)
    f2, p2 = sprite_video(5, 24, 4, seed=7)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(p1, p2)
    f3, p3 = sprite_video(5, (40, 56), 4, seed=7)
    assert f3.shape == (5, 40, 56, 3)
    np.testing.assert_array_equal(p1, p3)  # positions do not depend on the resolution
    f4, _ = sprite_video(5, 24, 4, seed=8)
    assert not np.array_equal(f1, f4)
    # identity = appearance: same identity_seed, different motion -> same part colours
    fa, pa = sprite_video(3, 24, 4, seed=1, identity_seed=9)
    fb, pb = sprite_video(3, 24, 4, seed=2, identity_seed=9)
    assert not np.allclose(pa, pb)
    assert 0 <= f1.min() and f1.max() <= 1 and f1.dtype == np.float32


def test_sprite_positions_match_drawn_parts():
    size = 96
    frames, pos, masks = sprite_video(8, size, 4, seed=11, return_masks=True)
    xs = np.linspace(-1, 1, size)
    for t in range(8):
        for k in range(4):
            m = masks[t, k]
            assert m.sum() > 10
            cx = (m.sum(0) * xs).sum() / m.sum()
            cy = (m.sum(1) * xs).sum() / m.sum()
            assert (
                abs(cx - pos[t, k, 0]) < 2.5 / size
                and abs(cy - pos[t, k, 1]) < 2.5 / size
            )
    # the last-drawn part is visible at its centre with its own colour
    ident = sprite_identity(11, 4)
    t, k = 0, 3
    j = int(round((pos[t, k, 0] + 1) / 2 * (size - 1)))
    i = int(round((pos[t, k, 1] + 1) / 2 * (size - 1)))
    c = frames[t, i, j]
    col = ident["colours"][k]
    assert np.abs(c / c.max() - col / col.max()).max() < 0.15
    # smooth motion: small frame-to-frame displacement
    assert np.abs(np.diff(pos, axis=0)).max() < 0.15


def test_sprite_dataset_deterministic(tmp_path, sprites):
    again = write_sprite_dataset(
        tmp_path / "again", num_videos=10, num_frames=6, size=32, num_parts=3, seed=3
    )
    for split in ("train", "test"):
        assert data.list_videos(again / split) == data.list_videos(sprites / split)
    name = data.list_videos(sprites / "train")[0]
    a = data.read_frames(sprites / "train" / name, (32, 32))
    b = data.read_frames(again / "train" / name, (32, 32))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        load_sprite_positions(sprites, "train", name),
        load_sprite_positions(again, "train", name),
    )
    # the saved frames are the in-memory ones (8-bit)
    mp4 = write_sprite_dataset(
        tmp_path / "mp4",
        num_videos=2,
        num_frames=4,
        size=32,
        num_parts=3,
        seed=3,
        video_format="mp4",
        test_fraction=0.5,
    )
    v = media.read_video(mp4 / "train" / data.list_videos(mp4 / "train")[0])
    assert v.shape == (4, 32, 32, 3)


def test_identities_are_unique_per_video_when_asked(tmp_path):
    root = write_sprite_dataset(
        tmp_path / "s", num_videos=5, num_frames=3, size=16, seed=0, num_identities=5
    )
    names = data.list_videos(root / "train") + data.list_videos(root / "test")
    assert len({n.split("#")[0] for n in names}) == 5


def test_heldout_videos_are_new_identities():
    videos, positions, seeds = heldout_videos(num_videos=2, num_frames=4, size=16)
    assert videos[0].shape == (4, 16, 16, 3) and positions[1].shape == (4, 4, 2)
    assert seeds[1] == {
        "seed": HELDOUT_SEEDS["motion"] + 1,
        "identity_seed": HELDOUT_SEEDS["identity"] + 1,
    }
    f, p = sprite_video(
        4, 16, seed=seeds[0]["seed"], identity_seed=seeds[0]["identity_seed"]
    )
    np.testing.assert_array_equal(f, videos[0])
    # the shipped model's training identities (write_sprite_dataset, seed 0) never collide
    trained = set(training_identity_seeds(3000, seed=0).tolist())
    assert not trained & {HELDOUT_SEEDS["identity"] + i for i in range(1000)}
    assert not trained & {HELDOUT_SEEDS["motion"] + i for i in range(1000)}


def test_sprite_config_builds():
    from fomm_tutorial.config import load_config

    # 64 px: at 32 its 4-block discriminator shrinks the frame to nothing (load_config
    # refuses a frame_shape the networks cannot take)
    cfg = load_config(sprite_config(64, num_kp=3))
    assert cfg["model_params"]["common_params"]["num_kp"] == 3
    assert cfg["dataset_params"]["frame_shape"][:2] == [64, 64]


def test_reference_keypoints():
    from fomm_tutorial.evaluation import keypoint_metrics
    from fomm_tutorial.sprites import reference_keypoints

    _, positions, _ = heldout_videos(num_videos=6, num_frames=40, size=8)
    body = reference_keypoints(positions, image_size=8)["body_only"]
    exact = keypoint_metrics(positions, positions, image_size=8)
    # one body plan: exact part tracking needs no per-creature map
    assert exact["regression_error_px"] < 1e-3
    # the body alone misses the limbs, but beats the mean position
    assert 0.05 < body["regression_error_px"] < body["baseline_error_px"]


def test_one_body_plan():
    """Part k has the same place and hue band on every creature (up to the jitter)."""
    import colorsys

    identities = [sprite_identity(s) for s in range(50)]
    attach = np.stack([i["attach"] for i in identities])
    base = 2 * np.pi * np.arange(3) / 3 + np.pi / 2
    assert np.abs(attach - base).max() <= 0.2 + 1e-6
    hues = np.array(
        [[colorsys.rgb_to_hsv(*c)[0] for c in i["colours"]] for i in identities]
    )
    offset = (hues - np.arange(4) / 4 + 0.5) % 1.0 - 0.5  # wrapped distance to k/4
    assert np.abs(offset).max() <= 0.05 + 1e-3


def test_transfer_errors_against_the_renderers_truth():
    """Transfer is scored against A drawn with B's motion; copying is the baseline."""
    from fomm_tutorial.pretrained import load_pretrained
    from fomm_tutorial.sprites import transfer_errors

    models = load_pretrained("sprites-64")
    r = transfer_errors(models["kp_detector"], models["generator"], 1, 8, first=0)
    a, b = r["pairs"][0]["source"], r["pairs"][0]["driving"]
    assert a == {
        "seed": HELDOUT_SEEDS["motion"],
        "identity_seed": HELDOUT_SEEDS["identity"],
    }
    assert b["seed"] == HELDOUT_SEEDS["motion"] + 1
    assert b["identity_seed"] == HELDOUT_SEEDS["identity"] + 1
    truth, _ = sprite_video(8, 64, seed=b["seed"], identity_seed=a["identity_seed"])
    own, _ = sprite_video(8, 64, seed=a["seed"], identity_seed=a["identity_seed"])
    # relative: the source is A in B's first pose, so copying it is exact at frame 0
    assert r["relative"]["l1_copy"] == pytest.approx(np.abs(truth - truth[0]).mean())
    assert r["absolute"]["l1_copy"] == pytest.approx(np.abs(truth - own[0]).mean())
    for mode in ("absolute", "relative"):
        m = r[mode]
        assert m["ratio"] == pytest.approx(m["l1"] / m["l1_copy"])
        assert np.isfinite(m["l1"]) and m["l1"] > 0, mode


def test_sprite_angles_are_the_drawn_orientations():
    """The body's drawn major axis (second moments of its mask, image axes with y down)
    points along sprite_angles' part-0 angle; a limb along its own."""
    from fomm_tutorial.sprites import sprite_angles, sprite_identity

    frames, _, masks = sprite_video(8, 128, seed=3, identity_seed=5, return_masks=True)
    angles = sprite_angles(8, seed=3, identity_seed=5)
    assert angles.shape == (8, 4)
    y, x = np.mgrid[0:128, 0:128].astype(np.float64)
    axes = sprite_identity(5)["axes"]
    checked = 0
    for part in range(4):
        if axes[part, 0] <= 1.3 * axes[part, 1]:
            continue  # too round for its orientation to be measured
        for t in range(8):
            m = masks[t, part].astype(np.float64)
            cx, cy = (m * x).sum() / m.sum(), (m * y).sum() / m.sum()
            mxx = (m * (x - cx) ** 2).sum()
            myy = (m * (y - cy) ** 2).sum()
            mxy = (m * (x - cx) * (y - cy)).sum()
            drawn = 0.5 * np.arctan2(2 * mxy, mxx - myy)  # major axis, mod pi
            error = np.angle(np.exp(2j * (drawn - angles[t, part]))) / 2
            assert abs(error) < 0.05, (part, t, error)
            checked += 1
    assert checked >= 24  # the three limbs at least
