"""`fomm-tutorial convert` then `fomm-tutorial animate` end to end on the real shared media with
the tiny reference checkpoint; clear errors for bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from fomm_tutorial import cli


def _short_video(data_dir, tmp_path, num_frames=16):
    """The first frames of the shared driving.mp4 (keeps the test fast), written as mp4."""
    from fomm_tutorial import media

    frames = media.read_video(data_dir / "driving.mp4", max_frames=num_frames)
    path = tmp_path / "driving16.mp4"
    media.write_video(path, frames, fps=media.video_fps(data_dir / "driving.mp4"))
    return path


@pytest.fixture(scope="module")
def converted(reference_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    rc = cli.main(
        [
            "convert",
            str(reference_dir / "vox-256-tiny-cpk.pth.tar"),
            "--config",
            "vox-256-tiny",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    for name in ("kp_detector", "generator", "discriminator"):
        assert (out / f"{name}.weights.h5").exists()
    return out


def test_convert_then_animate_on_real_media(
    converted, reference_dir, data_dir, tmp_path, capsys
):
    from fomm_tutorial import media

    driving = _short_video(data_dir, tmp_path)
    out = tmp_path / "result.mp4"
    rc = cli.main(
        [
            "animate",
            "--config",
            str(reference_dir / "vox-256-tiny.yaml"),
            "--checkpoint",
            str(converted),
            "--source",
            str(data_dir / "source.png"),
            "--driving",
            str(driving),
            "--out",
            str(out),
            "--relative",
            "--adapt-scale",
            "--batch-size",
            "8",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    video = media.read_video(out)
    assert video.shape == (
        16,
        128,
        128,
        3,
    )  # the config's frame_shape, every driving frame
    assert media.video_fps(out) == pytest.approx(
        30, abs=0.5
    )  # the driving video's frame rate
    assert 0.02 < video.mean() < 0.98


def test_animate_from_original_checkpoint_side_by_side_gif(
    reference_dir, data_dir, tmp_path, capsys
):
    from fomm_tutorial import media

    driving = _short_video(data_dir, tmp_path, num_frames=4)
    out = tmp_path / "result.gif"
    rc = cli.main(
        [
            "animate",
            "--config",
            str(reference_dir / "vox-256-tiny.yaml"),
            "--checkpoint",
            str(reference_dir / "vox-256-tiny-cpk.pth.tar"),
            "--source",
            str(data_dir / "source.png"),
            "--driving",
            str(driving),
            "--out",
            str(out),
            "--side-by-side",
            "--fps",
            "10",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    video = media.read_video(out)
    assert video.shape[0] == 4 and video.shape[1] == 128 and video.shape[2] >= 3 * 128


def test_converted_weights_equal_original(converted, reference_dir, reference):
    from fomm_tutorial import animation

    a = animation.load_models(
        str(reference_dir / "vox-256-tiny.yaml"), converted / "generator.weights.h5"
    )
    src, drv = reference["source"][:1], reference["driving"][:2]
    out = animation.make_animation(
        src[0],
        drv,
        a["kp_detector"],
        a["generator"],
        relative=False,
        adapt_scale=False,
        progress=False,
    )
    np.testing.assert_allclose(
        out[:1], reference["generator/prediction"][:1], atol=1e-4
    )


def test_animate_errors_name_the_problem(reference_dir, data_dir, tmp_path, capsys):
    base = [
        "animate",
        "--config",
        str(reference_dir / "vox-256-tiny.yaml"),
        "--checkpoint",
        str(reference_dir / "vox-256-tiny-cpk.pth.tar"),
        "--driving",
        str(data_dir / "driving.mp4"),
    ]
    assert (
        cli.main(
            base
            + ["--source", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o.mp4")]
        )
        == 2
    )
    assert "nope.png" in capsys.readouterr().err
    assert (
        cli.main(
            base
            + [
                "--source",
                str(data_dir / "source.png"),
                "--out",
                str(tmp_path / "o.avi"),
            ]
        )
        == 2
    )
    assert ".mp4 or .gif" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        cli.main(
            [
                "animate",
                "--config",
                str(reference_dir / "vox-256-tiny.yaml"),
                "--checkpoint",
                str(empty),
                "--source",
                str(data_dir / "source.png"),
                "--driving",
                str(data_dir / "driving.mp4"),
                "--out",
                str(tmp_path / "o.mp4"),
            ]
        )
        == 2
    )
    assert "generator.weights.h5" in capsys.readouterr().err


def test_console_script_help():
    exe = os.path.join(os.path.dirname(sys.executable), "fomm-tutorial")
    if not os.path.exists(exe):
        pytest.skip(
            "the fomm-tutorial console script is not installed in this environment"
        )
    res = subprocess.run(
        [exe, "animate", "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and "--adapt-scale" in res.stdout


# ---------------------------------------------------------------------------------------------
# The README's commands, verbatim but for the file names and small sizes
# ---------------------------------------------------------------------------------------------
def readme_commands():
    """The ``fomm-tutorial ...`` commands of the README's "Command line" section."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split("## Command line", 1)[1].split("```bash", 1)[1].split("```")[0]
    block = block.replace("\\\n", " ")
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("fomm-tutorial "):
            commands.append(line.split()[1:])
    return {c[0]: c for c in commands}


def _video_dataset(root, size=128):
    """train/ and test/ with two identities of 4-frame png videos (vox's '<id>#<clip>')."""
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("id0#a", "id1#b"):
            folder = root / split / name
            folder.mkdir(parents=True)
            base = rng.uniform(0, 255, (size // 8, size // 8, 3))
            for t in range(4):
                frame = np.kron(np.roll(base, t, axis=1), np.ones((8, 8, 1)))
                iio.imwrite(folder / f"{t:07d}.png", frame.astype(np.uint8))
    return root


def test_readme_commands(reference_dir, data_dir, tmp_path, capsys, monkeypatch):
    from fomm_tutorial import media
    from fomm_tutorial.training import find_checkpoints

    commands = readme_commands()
    assert set(commands) == {"convert", "animate", "train"}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vox-cpk.pth.tar").symlink_to(
        reference_dir / "vox-256-tiny-cpk.pth.tar"
    )
    (tmp_path / "face.png").symlink_to(data_dir / "source.png")
    frames = media.read_video(data_dir / "driving.mp4", max_frames=4)
    media.write_video(tmp_path / "video.mp4", frames, fps=25)
    _video_dataset(tmp_path / "data" / "vox")

    def run(argv):
        # vox-256's networks take minutes on a CPU: the tiny config of the same schema
        argv = ["vox-256-tiny" if a == "vox-256" else a for a in argv]
        argv = [a for a in argv if a != "[--resume]"]
        rc = cli.main(argv)
        assert rc == 0, capsys.readouterr().err
        return rc

    run(commands["convert"])
    assert (tmp_path / "weights" / "generator.weights.h5").is_file()
    run(commands["animate"])
    assert media.read_video(tmp_path / "result.mp4").shape == (4, 128, 128, 3)
    vgg = str(reference_dir / "vox-256-tiny-vgg19.npz")
    small = ["--steps", "1", "--batch-size", "2", "--num-repeats", "1"]
    small += ["--vgg-weights", vgg, "--no-xla"]
    run(commands["train"] + small)
    run_dir = tmp_path / "runs" / "vox"
    assert find_checkpoints(run_dir)[0].endswith("ckpt-1")
    run(commands["train"] + ["--steps", "2"] + small[2:] + ["--resume"])
    assert find_checkpoints(run_dir)[0].endswith("ckpt-2")


def test_shipped_config_names_everywhere(reference_dir, tmp_path, capsys):
    """`--config vox-256` resolves for every command (it failed for convert and train)."""
    rc = cli.main(
        [
            "convert",
            str(reference_dir / "vox-256-tiny-cpk.pth.tar"),
            "--config",
            "vox-256",
            "--out",
            str(tmp_path / "w"),
        ]
    )
    err = capsys.readouterr().err
    # the config was found and read; the tiny checkpoint does not fit vox-256's networks
    assert rc == 2 and "does not match the config" in err and "not found" not in err
    assert err.count("\n") == 1
    rc = cli.main(
        ["train", "--config", "vox-256", "--data", str(tmp_path), "--out", "o"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "no videos" in err and err.count("\n") == 1


# Train and animate command lines that pass every check but the one a case adds.
TRAIN = ["train", "--config", "vox-256", "--data", ".", "--out", "o"]
ANIMATE = ["animate", "--config", "vox-256", "--checkpoint", "."]
ANIMATE += ["--source", "a", "--driving", "b", "--out", "c.mp4"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            TRAIN + ["--batch-size", "0"],
            "--batch-size: must be at least 1",
        ),
        (["train", "--config", "vox-256", "--out", "o"], "required: --data"),
        (
            ["train", "--config", "vox-256", "--data", "nope", "--out", "o"],
            "nope does not exist",
        ),
        (
            ["train", "--config", "vox-257", "--data", ".", "--out", "o"],
            "did you mean 'vox-256'",
        ),
        (
            ["train", "--config", "vox-256", "--data", ".", "--out", "FILE"],
            "FILE is a file",
        ),
        (
            ["train", "--config", "vox-256", "--data", ".", "--out", "FILE/sub"],
            "is a file, so",
        ),
        (
            TRAIN + ["--vgg-weights", "x.npz"],
            "x.npz does not exist",
        ),
        (
            TRAIN + ["--resume-from", "nope"],
            "nope does not exist",
        ),
        (
            TRAIN + ["--steps", "-1"],
            "--steps: must be at least 1",
        ),
        (
            ["convert", "x.pth.tar", "--config", "vox-256", "--out", "o"],
            "x.pth.tar does not exist",
        ),
        (
            ["convert", "FILE", "--config", "vox-256", "--out", "FILE"],
            "--out: FILE is a file",
        ),
        (
            ANIMATE + ["--batch-size", "0"],
            "--batch-size: must be at least 1",
        ),
        (
            ANIMATE + ["--fps", "0"],
            "--fps: must be a finite number > 0",
        ),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_one_line_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("a file")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_resume_errors_before_any_model_is_built(tmp_path, capsys, monkeypatch):
    from fomm_tutorial import training

    def no_models(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(training, "Trainer", no_models)
    _video_dataset(tmp_path / "data", size=32)
    base = ["train", "--config", "vox-256", "--data", str(tmp_path / "data")]
    assert cli.main(base + ["--out", str(tmp_path / "o"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def _no_models(monkeypatch):
    """Replace the Trainer: a run that gets past every check ends with this line."""
    from fomm_tutorial import training

    def no_models(*args, **kwargs):
        raise ValueError("checks passed; no model is built in this test")

    monkeypatch.setattr(training, "Trainer", no_models)


def test_resume_refuses_another_config_before_writing(tmp_path, capsys, monkeypatch):
    """A rejected --resume with num_kp 8 still overwrote config.json, and another
    lr_generator was silently accepted."""
    import json

    import yaml
    from fomm_tutorial.config import load_config

    _no_models(monkeypatch)
    data = _video_dataset(tmp_path / "data", size=32)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-1.index").write_bytes(b"")  # a checkpoint to resume
    cfg = load_config("vox-256")
    cfg["dataset_params"]["root_dir"] = str(data)
    (run / "config.json").write_text(json.dumps(cfg))
    before = (run / "config.json").read_text()
    base = ["train", "--data", str(data), "--out", str(run), "--resume"]
    num_kp, lr = load_config("vox-256"), load_config("vox-256")
    num_kp["model_params"]["common_params"]["num_kp"] = 8
    lr["train_params"]["lr_generator"] = 0.001
    for name, changed in (("num_kp", num_kp), ("lr_generator", lr)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(changed))
    assert cli.main(base + ["--config", str(tmp_path / "num_kp.yaml")]) == 2
    err = capsys.readouterr().err
    assert "the config differs from the run's" in err and err.count("\n") == 1
    assert "model_params.common_params.num_kp 10 -> 8" in err
    assert (run / "config.json").read_text() == before
    lr = base + ["--config", str(tmp_path / "lr_generator.yaml")]
    assert cli.main(lr) == 2
    err = capsys.readouterr().err
    assert (
        "train_params.lr_generator 0.0002 -> 0.001" in err
        and "--allow-lr-change" in err
    )
    assert cli.main(lr + ["--allow-lr-change"]) == 2
    assert "no model is built" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["train_params"][
        "lr_generator"
    ] == pytest.approx(0.001)
    assert not (run / "train.lock").exists()  # released after the refusal
    # an older run's config.json, without a key load_config fills in today, still fits
    del cfg["model_params"]["kp_detector_params"]["pad"]
    (run / "config.json").write_text(json.dumps(cfg))
    assert cli.main(base + ["--config", "vox-256"]) == 2
    assert "no model is built" in capsys.readouterr().err


def test_train_checks_before_any_model_is_built(tmp_path, capsys, monkeypatch):
    """A live trainer on --out, a truncated mp4 in the dataset and a garbage VGG19 file
    each end as one line before any model is built (they were tracebacks)."""
    from fomm_tutorial import media, training

    _no_models(monkeypatch)
    data = tmp_path / "videos"
    data.mkdir()
    for i in range(3):
        frames = np.full((4, 32, 32, 3), 0.2 * (i + 1), np.float32)
        media.write_video(data / f"id{i}#v{i}.mp4", frames, fps=25)
    base = ["train", "--config", "vox-256", "--data", str(data)]
    base += ["--out", str(tmp_path / "run")]
    with training.run_lock(tmp_path / "run"):
        assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert f"is in use: pid {os.getpid()} on " in err and err.count("\n") == 1
    (tmp_path / "garbage.npz").write_bytes(bytes(range(256)) * 4)
    assert cli.main(base + ["--vgg-weights", str(tmp_path / "garbage.npz")]) == 2
    err = capsys.readouterr().err
    assert "garbage.npz is not a readable VGG19 weights file" in err
    assert "allow_pickle" not in err and err.count("\n") == 1
    cut = data / "id1#v1.mp4"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert (
        f"1 of the 2 training videos in {data} cannot be read: {cut}: cut short" in err
    )
    assert err.count("\n") == 1
    assert list((tmp_path / "run").iterdir()) == []  # nothing was written


def test_convert_refuses_to_overwrite_and_starts_quietly(
    reference_dir, tmp_path, capsys
):
    """convert overwrote weights and left a stale MODEL_CARD.md beside them, and printed
    TensorFlow's start-up notices; junk given as .pth.tar showed torch's weights_only text."""
    out = tmp_path / "weights"
    out.mkdir()
    (out / "generator.weights.h5").write_bytes(b"the user's weights")
    (out / "MODEL_CARD.md").write_text("describes the user's weights")
    argv = ["convert", str(reference_dir / "vox-256-tiny-cpk.pth.tar")]
    argv += ["--config", "vox-256-tiny", "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds generator.weights.h5, MODEL_CARD.md: pass --overwrite" in err
    assert (out / "generator.weights.h5").read_bytes() == b"the user's weights"
    res = subprocess.run(
        [sys.executable, "-m", "fomm_tutorial", *argv, "--overwrite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert "removed" in res.stdout and not (out / "MODEL_CARD.md").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "discriminator.weights.h5",
        "generator.weights.h5",
        "kp_detector.weights.h5",
    ]
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(np.random.default_rng(0).bytes(3000))
    argv = ["convert", str(junk), "--config", "vox-256", "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{junk} is not a readable PyTorch checkpoint (UnpicklingError)" in err
    assert "weights_only" not in err and err.count("\n") == 1


def test_keyboard_interrupt_is_one_line(monkeypatch, capsys):
    from fomm_tutorial import config

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(config, "run_cli", interrupted)
    assert cli.main(["configs"]) == 2
    assert capsys.readouterr().err == "fomm-tutorial configs: interrupted\n"


def test_version_configs_and_python_m(capsys):
    from fomm_tutorial import __version__

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and __version__ in capsys.readouterr().out
    assert cli.main(["configs"]) == 0
    listed = capsys.readouterr().out
    assert "vox-256 " in listed and "taichi-256" in listed and "vox-256-tiny" in listed
    res = subprocess.run(
        [sys.executable, "-m", "fomm_tutorial", "--cpu", "configs"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and "vox-adv-256" in res.stdout, res.stderr


@pytest.mark.skipif(
    not os.path.isdir("/proc/self"), reason="needs a read-only /proc to test with"
)
def test_out_folder_on_a_read_only_file_system_is_refused():
    """train/convert --out: tried by writing (os.access says yes to root on /proc)."""
    import argparse

    from fomm_tutorial import cli

    with pytest.raises(argparse.ArgumentTypeError, match="cannot write in /proc"):
        cli.output_dir("/proc/fomm-run")
