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
            str(reference_dir / "vox-256-tiny.yaml"),
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
