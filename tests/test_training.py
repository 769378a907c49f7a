"""Training loop: lr schedule, exact resume, NaN stop, atomic checkpoints, strategies, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from fomm_tutorial import training as T  # noqa: E402

tf.config.experimental.enable_op_determinism()

SIZE = 32


def tiny_config(milestones=(), num_epochs=2):
    cfg = T.sprite_config(size=SIZE, num_kp=2, num_epochs=num_epochs, batch_size=2)
    mp = cfg["model_params"]
    mp["kp_detector_params"].update(block_expansion=4, max_features=16)
    mp["generator_params"].update(
        block_expansion=4, max_features=16, num_bottleneck_blocks=1
    )
    mp["generator_params"]["dense_motion_params"].update(
        block_expansion=4, max_features=16
    )
    mp["discriminator_params"].update(num_blocks=2)
    cfg["train_params"]["epoch_milestones"] = list(milestones)
    return cfg


def frames(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, SIZE, SIZE, 3)).astype(np.float32)
    # smooth them a little so the task is not pure noise
    return tf.nn.avg_pool2d(x, 3, 1, "SAME").numpy()


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
    return T.Trainer(cfg, tmp_path / name, dataset_fn or dataset_fn_for(), seed=0, **kw)


def weights(trainer):
    return [
        v.numpy()
        for n in ("kp_detector", "generator")
        for v in trainer.models[n].weights
    ]


def test_multistep_lr():
    assert T.multistep_lr(2e-4, 0, [60, 90]) == pytest.approx(2e-4)
    assert T.multistep_lr(2e-4, 59, [60, 90]) == pytest.approx(2e-4)
    assert T.multistep_lr(2e-4, 60, [60, 90]) == pytest.approx(2e-5)
    assert T.multistep_lr(2e-4, 95, [60, 90]) == pytest.approx(2e-6)
    assert T.multistep_lr(2e-4, 5, []) == pytest.approx(2e-4)


def test_optimizer_hyperparameters():
    opt = T.make_optimizer(2e-4)
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.5, 0.999, 1e-8)
    assert isinstance(
        T.make_optimizer(1e-3, mixed_precision=True),
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


def test_nan_stops_and_keeps_good_checkpoint(tmp_path):
    t = make_trainer(
        tmp_path, "nan", dataset_fn=dataset_fn_for(nan_at_batch=2), checkpoint_every=1
    )
    with pytest.raises(T.NonFiniteLossError, match=r"loss '\w+' is nan at step 2"):
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


def test_cli_train_and_resume(tmp_path):
    import yaml
    from fomm_tutorial import cli
    from fomm_tutorial.data import write_sprite_dataset

    root = write_sprite_dataset(
        tmp_path / "sprites", num_videos=4, num_frames=4, size=SIZE
    )
    cfg = tiny_config()
    cfg["dataset_params"]["root_dir"] = str(root)
    cfg["train_params"]["num_repeats"] = 2
    cfg["train_params"]["scales"] = [
        1
    ]  # the CLI uses the faithful losses: VGG19 needs >= 16 px
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "log"
    args = [
        "train",
        "--config",
        str(tmp_path / "c.yaml"),
        "--data",
        str(root),
        "--out",
        str(out),
        "--steps",
        "1",
        "--no-xla",
        "--no-mixed-precision",
    ]
    assert cli.main(args) == 0
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000001"
    assert cli.main(args) == 2  # refuses to overwrite without --resume
    args[args.index("1")] = "2"
    assert cli.main(args + ["--resume"]) == 0
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000002"
    assert (
        cli.main(
            [
                "train",
                "--config",
                str(tmp_path / "c.yaml"),
                "--data",
                str(tmp_path / "nope"),
                "--out",
                str(out),
            ]
        )
        == 2
    )


def test_cli_train_simple_losses(tmp_path):
    import yaml
    from fomm_tutorial import cli
    from fomm_tutorial.data import write_sprite_dataset

    root = write_sprite_dataset(
        tmp_path / "sprites", num_videos=4, num_frames=4, size=SIZE
    )
    cfg = tiny_config()
    cfg["dataset_params"]["root_dir"] = str(root)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "log"
    args = ["train", "--config", str(tmp_path / "c.yaml"), "--data", str(root)]
    args += ["--out", str(out), "--steps", "1", "--no-xla", "--simple-losses"]
    assert cli.main(args) == 0
    log = (out / "tensorboard").glob("events.*")
    tags = set()
    for f in log:
        for raw in tf.data.TFRecordDataset(str(f)):
            ev = tf.compat.v1.Event.FromString(raw.numpy())
            tags |= {v.tag for v in ev.summary.value}
    assert "loss/reconstruction" in tags and "loss/perceptual" not in tags
