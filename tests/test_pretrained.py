"""Tests of fomm_tutorial.pretrained: the shipped models (no training)."""

import json
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fomm_tutorial import pretrained  # noqa: E402
from fomm_tutorial.pretrained import (  # noqa: E402
    list_pretrained,
    load_pretrained,
    shipped_loss_curve,
    shipped_metrics,
)


@pytest.fixture(scope="module")
def sprites64():
    return load_pretrained("sprites-64")


def test_shipped_models_listed():
    assert "sprites-64" in list_pretrained()
    folder = pretrained.pretrained_dir("sprites-64")
    for name in ("kp_detector.weights.h5", "generator.weights.h5", "MODEL_CARD.md"):
        assert (folder / name).is_file()
        assert (folder / name).stat().st_size <= 10 * 2**20  # at most 10 MB per file


def test_heldout_keypoints_of_the_shipped_model(sprites64):
    """Two held-out videos (new motions, new identities): the card's protocol, small."""
    from fomm_tutorial.sprites import evaluate_heldout, heldout_videos

    assert set(sprites64) == {"config", "kp_detector", "generator"}
    videos, positions, _ = heldout_videos(num_videos=2, num_frames=64)
    kp = evaluate_heldout(sprites64["kp_detector"], None, videos, positions)[
        "keypoints"
    ]
    recorded = shipped_metrics("sprites-64")["two_video_check"]
    # the shipped weights are the ones the card's numbers were measured with
    assert kp["regression_error_px"] == pytest.approx(
        recorded["regression_error_px"], abs=0.05
    )
    assert kp["baseline_error_px"] == pytest.approx(recorded["baseline_error_px"])
    # and the keypoints encode the pose: far better than the mean position
    assert kp["regression_error_px"] < 0.75 * kp["baseline_error_px"]


def test_shipped_metrics_and_curve():
    m = shipped_metrics("sprites-64")
    # the targets of the shipped model (issue 9), on 16 held-out videos
    assert m["regression_error_px"] <= 1.5
    assert m["regression_error_px"] < m["body_only_regression_error_px"]
    assert m["reconstruction_l1"] <= 0.5 * m["copy_first_frame_l1"]
    assert m["heldout_videos"]["num_videos"] == len(m["heldout_videos"]["seeds"])
    curve = shipped_loss_curve("sprites-64")
    assert {"step", "reconstruction", "total"} <= set(curve)
    # both stages: the first stage's curve, then the warm-started run's
    assert curve["step"][-1] == m["training"]["total_step"]
    assert curve["total"][-1] < curve["total"][0]
    # issue 20: first order, and at least as good as the zeroth-order model it started
    # from on every held-out measure (its keypoints are that model's: frozen)
    config = load_pretrained("sprites-64")["config"]
    assert config["model_params"]["common_params"]["estimate_jacobian"]
    before, after = m["init_metrics"], pretrained.headline_metrics(m)
    # the export reads the learning-rate drops off the run's log: one per milestone
    milestones = config["train_params"]["epoch_milestones"]
    assert len(m["training"]["lr_decay_steps"]) == len(milestones)
    assert after["keypoints"] <= before["keypoints"] + 1e-6
    for key in ("reconstruction", "absolute", "relative"):
        assert after[key] < before[key], key
    assert after["keypoints"] <= 0.3 and after["reconstruction"] <= 0.45


def test_animation_runs_with_the_shipped_model(sprites64):
    from fomm_tutorial.animation import make_animation
    from fomm_tutorial.sprites import sprite_video

    source, _ = sprite_video(1, 64, seed=5, identity_seed=2_000_100)
    driving, _ = sprite_video(4, 64, seed=6, identity_seed=2_000_101)
    out = make_animation(
        source[0], driving, sprites64["kp_detector"], sprites64["generator"]
    )
    assert out.shape == (4, 64, 64, 3) and np.isfinite(out).all()


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="sprites-64"):
        load_pretrained("vox-9000")


def test_truncated_weights_file(tmp_path, monkeypatch):
    fake = tmp_path / "weights"
    shutil.copytree(pretrained.pretrained_dir("sprites-64"), fake / "sprites-64")
    path = fake / "sprites-64" / "generator.weights.h5"
    path.write_bytes(path.read_bytes()[:1000])
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", fake)
    with pytest.raises(ValueError, match="generator.weights.h5.*damaged") as info:
        load_pretrained("sprites-64")
    assert "\n" not in str(info.value)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="generator.weights.h5 is missing"):
        load_pretrained("sprites-64")


def test_export_of_a_model_trained_on_one_clip(tmp_path, data_dir):
    """A run on one clip split in time is scored on its held-out frames: the card,
    metrics, figures (held-out, previews, new identity) and weights that load."""
    from fomm_tutorial import cli, media
    from fomm_tutorial.data import write_clip_dataset
    from fomm_tutorial.sprites import sprite_video

    frames, _ = sprite_video(20, 64, seed=3, identity_seed=4)
    media.write_video(tmp_path / "clip.gif", frames, fps=10)
    write_clip_dataset(tmp_path / "clip.gif", tmp_path / "data", 14)
    run = tmp_path / "run"
    args = ["train", "--config", "sprites-64", "--data", str(tmp_path / "data")]
    args += ["--out", str(run), "--simple-losses", "--steps", "2"]
    args += ["--checkpoint-every", "1", "--batch-size", "2", "--num-repeats", "4"]
    assert cli.main(args) == 0
    out = pretrained.export_pretrained(
        run, "clip-64", tmp_path / "shipped", previews=[run / "checkpoints" / "ckpt-1"]
    )
    # the loss comparison: runs read at one step, its section in the card
    comparison = pretrained.loss_comparison({"l1": run}, 1, tmp_path / "data", out)
    row = comparison["rows"]["l1"]
    assert row["step"] == 1 and row["sharpness_ratio"] > 0
    assert row["reconstruction_ratio"] == pytest.approx(
        row["reconstruction_l1"] / row["copy_first_frame_l1"]
    )
    with np.load(out / "loss_comparison.npz") as z:
        assert sorted(z.files) == ["heldout", "l1"] and z["l1"].shape == (4, 64, 64, 3)
    assert pretrained.loss_table(comparison).splitlines()[2].startswith("| l1 | ")
    out = pretrained.export_pretrained(
        run, "clip-64", tmp_path / "shipped", previews=[run / "checkpoints" / "ckpt-1"]
    )
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Losses that work offline" in card
    assert "`l1` gives both the lowest held-out L1 and the sharpest frames." in card
    m = json.loads((out / "metrics.json").read_text())
    assert m["heldout_frames"] == {
        "clip": "clip",
        "first": 14,
        "num_frames": 6,
        "protocol": m["heldout_frames"]["protocol"],
    }
    assert m["reconstruction_ratio"] == pytest.approx(
        m["reconstruction_l1"] / m["copy_first_frame_l1"]
    )
    assert m["training"]["step"] == 2 and m["sharpness_ratio"] > 0
    for name in ("heldout.png", "previews.png", "new_identity.png", "MODEL_CARD.md"):
        assert (out / name).is_file(), name
    card = (out / "MODEL_CARD.md").read_text()
    assert "frames 14-19 held out" in card


def test_shipped_talking_head_model_keeps_its_card(data_dir):
    """talking-head-128: at most 20 MB of weights, and its held-out numbers are true.

    Re-scores the shipped weights on the held-out frames 199-264 of the sample clip
    (source = frame 0, absolute keypoints) and compares with ``metrics.json``.
    """
    from fomm_tutorial import media
    from fomm_tutorial.evaluation import reconstruction

    folder = pretrained.pretrained_dir("talking-head-128")
    weights = sum(p.stat().st_size for p in folder.glob("*.weights.h5"))
    assert weights <= 20 * 2**20
    m = shipped_metrics("talking-head-128")
    assert m["reconstruction_l1"] < 0.6 * m["copy_first_frame_l1"]
    assert m["reconstruction_l1"] < 0.5 * m["untrained_reconstruction_l1"]
    models = load_pretrained("talking-head-128")
    clip = media.read_video(data_dir / "driving.mp4", size=128)
    first = m["heldout_frames"]["first"]
    scored = reconstruction(
        [clip[first:]], models["kp_detector"], models["generator"], source=clip[0]
    )
    assert len(clip) - first == m["heldout_frames"]["num_frames"]
    np.testing.assert_allclose(scored["l1"], m["reconstruction_l1"], atol=2e-3)
    np.testing.assert_allclose(
        scored["l1_copy_first"], m["copy_first_frame_l1"], atol=2e-3
    )
    # the card's table of the offline losses is the shipped comparison's, every row at
    # one step, scored against the same copy baseline as this model
    comparison = pretrained.shipped_loss_comparison("talking-head-128")
    assert pretrained.loss_table(comparison) in (folder / "MODEL_CARD.md").read_text()
    assert sorted(comparison["rows"]) == ["hed-vgg16", "l1", "ms-ssim"]
    for row in comparison["rows"].values():
        assert row["step"] == comparison["step"]
        assert row["copy_first_frame_l1"] == pytest.approx(m["copy_first_frame_l1"])


def test_heldout_clip_is_the_split_the_model_was_scored_on(data_dir):
    """The chapters' held-out frames are the card's: frames 199-264 at 128 px."""
    from fomm_tutorial import media

    split = pretrained.heldout_clip("talking-head-128")
    m = shipped_metrics("talking-head-128")["heldout_frames"]
    assert split["first"] == m["first"] == len(split["train"])
    assert len(split["heldout"]) == m["num_frames"]
    clip = media.read_video(data_dir / "driving.mp4", size=128)
    np.testing.assert_array_equal(split["heldout"], clip[m["first"] :])
    np.testing.assert_array_equal(split["source"], clip[0])
    with pytest.raises(ValueError, match="not trained on a clip"):
        pretrained.heldout_clip("sprites-64")


def test_sprite_ablation_scores_each_row_at_one_step(tmp_path):
    """Each row's run is read at the same step; the table names its switches."""
    from fomm_tutorial import cli
    from fomm_tutorial.sprites import write_sprite_dataset

    data = write_sprite_dataset(tmp_path / "data", num_videos=5, num_frames=4, size=64)
    runs = {}
    for row in ("baseline", "jacobian-no-eq12"):
        runs[row] = tmp_path / row
        args = ["train", "--config", pretrained.ABLATION_ROWS[row], "--data", str(data)]
        args += ["--out", str(runs[row]), "--simple-losses", "--steps", "2"]
        args += ["--checkpoint-every", "1", "--batch-size", "2", "--seed", "0"]
        assert cli.main(args) == 0
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    result = pretrained.sprite_ablation(
        runs, 1, shipped, num_videos=2, num_frames=4, num_pairs=1
    )
    assert json.loads((shipped / "ablation.json").read_text()) == result
    with np.load(shipped / "ablation_transfer.npz") as z:
        assert sorted(z.files) == ["baseline", "driving", "jacobian-no-eq12", "truth"]
        assert z["baseline"].shape == (32, 64, 64, 3) and z["truth"].dtype == np.uint8
    # the card of a model exported into that folder carries the table and the transfer
    pretrained.export_pretrained(
        runs["baseline"], "tiny", shipped, num_videos=2, num_frames=4
    )
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "## Ablation" in card and "| jacobian-no-eq12 | 3 | yes | yes | 0 |" in card
    assert "| relative | A in B's first pose |" in card
    base, jac = result["rows"]["baseline"], result["rows"]["jacobian-no-eq12"]
    assert base["step"] == jac["step"] == 1
    assert base["scales"] == [1.0] and not base["occlusion"] and not base["jacobian"]
    assert jac["jacobian"] and jac["occlusion"] and jac["equivariance_jacobian"] == 0
    for r in (base, jac):
        for key in ("reconstruction", "absolute", "relative"):
            assert r[key]["ratio"] > 0, key
    table = pretrained.ablation_table(result).splitlines()
    assert len(table) == 4 and table[2].startswith("| baseline | 1 | no | no | 0 |")
    with pytest.raises(ValueError, match="unknown rows"):
        pretrained.sprite_ablation({"pyr": runs["baseline"]}, 1, tmp_path)
    # a warm start (--init-from, recorded in run.json): the card's commands train the
    # run it started from first, with that run's shipped config and steps
    eight = write_sprite_dataset(tmp_path / "d8", num_videos=10, num_frames=2, size=64)
    first, warm = tmp_path / "first", tmp_path / "warm"
    args = ["--data", str(eight), "--simple-losses", "--steps", "2", "--seed", "0"]
    # the shipped config as it is (batch 8): run.json can name it
    assert (
        cli.main(
            ["train", "--config", "sprites-64-baseline", "--out", str(first)] + args
        )
        == 0
    )
    args[-3] = "1"
    # the shipped recipe's second stage: Jacobians learn, the keypoints stay
    args += ["--init-from", str(first), "--config", "sprites-64-full"]
    args += ["--freeze-keypoints"]
    assert cli.main(["train", "--out", str(warm)] + args) == 0
    pretrained.export_pretrained(warm, "tiny", shipped, num_videos=2, num_frames=4)
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "make sprites-model SPRITES_INIT_STEPS=2 SPRITES_STEPS=1" in card
    assert "--config sprites-64-baseline --out runs/tiny/init --steps 2" in card
    assert (
        "--out runs/tiny/run --init-from runs/tiny/init --freeze-keypoints --steps 1"
        in card
    )
    assert "then the keypoints stayed frozen (`--freeze-keypoints`" in card
    # its history is both stages: the first run's curve, then this one's steps after it
    curve = (shipped / "loss_curve.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in curve[1:]] == ["2", "3"]
    training = json.loads((shipped / "metrics.json").read_text())["training"]
    assert training["init_from"]["step"] == 2 and training["total_step"] == 3
    # and the card compares it with the model it started from, on the same protocol
    assert "## Before and after the warm start" in card
    assert "| first stage: `sprites-64-baseline`, 2 steps |" in card
    init = json.loads((shipped / "metrics.json").read_text())["init_metrics"]
    assert sorted(init) == ["absolute", "keypoints", "reconstruction", "relative"]
    assert (
        "warm-started (`--init-from`) from 2 steps of config `sprites-64-baseline`"
        in card
    )


def test_ablation_cli_needs_pairs_and_a_step(capsys):
    with pytest.raises(SystemExit) as exc:
        pretrained._main(["--ablation", "baseline"])
    assert exc.value.code == 2
    assert "ROW=RUN_DIR" in capsys.readouterr().err
