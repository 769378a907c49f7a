"""Stage 9: the training loop of the original ``train.py`` in TensorFlow.

One iteration (spec section 4): ``losses, generated = generator_full(x)``; the summed loss is
differentiated w.r.t. the generator and keypoint-detector weights and each network is stepped by
its own ``Adam(lr, beta_1=0.5, beta_2=0.999, epsilon=1e-8)``; then, only when
``loss_weights.generator_gan != 0``, ``discriminator_full(x, generated)`` steps the
discriminator. The learning rates decay by 0.1 at ``train_params.epoch_milestones`` (MultiStepLR,
stepped after each epoch).

Engineering around it:

* both steps are ``tf.function`` (``jit_compile`` for XLA), run through a
  ``tf.distribute`` strategy (the default one, or ``MirroredStrategy``; per-replica losses are
  scaled by ``1 / num_replicas`` so gradients are those of the global-batch mean);
* mixed precision: ``keras.mixed_precision.LossScaleOptimizer`` around each Adam;
* checkpoints: ``tf.train.Checkpoint`` of the three networks, three optimizers, the step / epoch /
  position in the epoch and the random generator, written by a ``tf.train.CheckpointManager``
  into a staging folder that is renamed into place (a crash mid-save never leaves a broken
  checkpoint); ``latest`` is replaced atomically. Resume is exact: the data stream of an epoch is a
  function of ``(seed, epoch)`` and the already-consumed batches are skipped;
* a non-finite loss stops training with :class:`NonFiniteLossError` naming the loss and the step,
  before anything is saved;
* ``log.txt`` lines as the original logger (``%08d) name - %.5f; ...``, epoch means), TensorBoard
  scalars (every loss, every learning rate) and image grids, a tqdm bar.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

LOSS_ORDER = (
    "perceptual",
    "reconstruction",
    "gen_gan",
    "feature_matching",
    "equivariance_value",
    "equivariance_jacobian",
    "disc_gan",
)


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; the message names it and the step. No checkpoint was written."""


# ============================================================================================
# Learning rates and optimizers
# ============================================================================================
def multistep_lr(
    base_lr: float, epoch: int, milestones: Iterable[int], gamma: float = 0.1
) -> float:
    """``MultiStepLR``: ``base_lr * gamma ** (number of milestones <= epoch)``.

    ``milestones [60, 90]`` -> 2e-4 for epochs 0-59, 2e-5 for 60-89, 2e-6 from 90.
    """
    n = sum(1 for m in milestones if int(m) <= int(epoch))
    return float(base_lr) * float(gamma) ** n


def make_optimizer(lr: float, mixed_precision: bool = False):
    """``Adam(lr, beta_1=0.5, beta_2=0.999, epsilon=1e-8)``, wrapped for loss scaling if asked."""
    opt = keras.optimizers.Adam(
        learning_rate=float(lr), beta_1=0.5, beta_2=0.999, epsilon=1e-8
    )
    if mixed_precision:
        opt = keras.mixed_precision.LossScaleOptimizer(opt)
    return opt


def _base_optimizer(opt):
    return getattr(opt, "inner_optimizer", opt)


def _set_lr(opt, lr):
    _base_optimizer(opt).learning_rate.assign(float(lr))


def _get_lr(opt) -> float:
    return float(keras.ops.convert_to_numpy(_base_optimizer(opt).learning_rate))


# ============================================================================================
# A minimal full model (used only when fomm_tutorial.losses is unavailable or asked for)
# ============================================================================================
class ReconstructionFullModel:
    """Small stand-in for ``GeneratorFullModel``: multi-scale L1 + affine equivariance.

    ``(x, training=True, seed=None) -> (losses, generated)`` with losses ``reconstruction``
    (sum over ``train_params.scales`` of ``mean |prediction_s - driving_s|`` times the sum of the
    perceptual weights / 5 ... i.e. weight 10 per scale by default) and ``equivariance_value``
    (random affine ``A p + b``, ``A = I + N(0, sigma_affine)``, drawn from the stateless ``seed``).
    Useful for fast tests; the faithful losses are :mod:`fomm_tutorial.losses`.
    """

    def __init__(self, kp_extractor, generator, discriminator=None, train_params=None):
        tp = train_params or {}
        self.kp_extractor, self.generator = kp_extractor, generator
        self.scales = [float(s) for s in tp.get("scales", [1])]
        lw = tp.get("loss_weights", {})
        self.w_rec = float(np.mean(lw.get("perceptual", [10]) or [0]))
        self.w_eq = float(lw.get("equivariance_value", 10))
        self.sigma = float(tp.get("transform_params", {}).get("sigma_affine", 0.05))

    def _pyramid(self, img):
        h, w = img.shape[1], img.shape[2]
        out = {}
        for s in self.scales:
            out[s] = (
                img
                if s == 1
                else tf.image.resize(
                    img, (int(h * s), int(w * s)), method="bilinear", antialias=True
                )
            )
        return out

    def __call__(self, x, training=True, seed=None):
        from fomm_tutorial.resampler import grid_sample
        from fomm_tutorial.grids import make_coordinate_grid

        source, driving = x["source"], x["driving"]
        kp_source = self.kp_extractor(source, training=training)
        kp_driving = self.kp_extractor(driving, training=training)
        generated = dict(
            self.generator(
                source, kp_source=kp_source, kp_driving=kp_driving, training=training
            )
        )
        generated["kp_source"], generated["kp_driving"] = kp_source, kp_driving
        pred = tf.cast(generated["prediction"], tf.float32)
        losses = {}
        pr, pg = self._pyramid(driving), self._pyramid(pred)
        losses["reconstruction"] = tf.add_n(
            [self.w_rec * tf.reduce_mean(tf.abs(pr[s] - pg[s])) for s in self.scales]
        )
        if self.w_eq:
            b = tf.shape(driving)[0]
            if seed is None:
                seed = tf.constant([0, 0], tf.int64)
            noise = tf.random.stateless_normal((b, 2, 3), seed=seed, stddev=self.sigma)
            theta = noise + tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
            h, w = driving.shape[1], driving.shape[2]
            grid = tf.reshape(make_coordinate_grid(h, w), (1, h * w, 2))
            grid = tf.tile(grid, [b, 1, 1])
            warped = (
                tf.einsum("bij,bnj->bni", theta[:, :, :2], grid) + theta[:, None, :, 2]
            )
            transformed = grid_sample(
                driving, tf.reshape(warped, (b, h, w, 2)), padding_mode="reflection"
            )
            kp_t = self.kp_extractor(transformed, training=training)
            back = (
                tf.einsum(
                    "bij,bkj->bki", theta[:, :, :2], tf.cast(kp_t["value"], tf.float32)
                )
                + theta[:, None, :, 2]
            )
            losses["equivariance_value"] = self.w_eq * tf.reduce_mean(
                tf.abs(tf.cast(kp_driving["value"], tf.float32) - back)
            )
            generated["transformed_frame"], generated["transformed_kp"] = (
                transformed,
                kp_t,
            )
        return losses, generated


def _accepts(fn, name) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return name in sig.parameters or any(
        p.kind == p.VAR_KEYWORD for p in sig.parameters.values()
    )


def make_full_models(models, config, vgg=None, simple: bool = False):
    """``(generator_full, discriminator_full or None)`` for ``models`` and ``config``.

    The faithful ones come from :mod:`fomm_tutorial.losses`; ``simple=True`` (or no losses
    module) gives :class:`ReconstructionFullModel` and no discriminator step.
    """
    tp = config["train_params"]
    if not simple:
        try:
            from fomm_tutorial import losses as L
        except ImportError:
            simple = True
    if simple:
        return ReconstructionFullModel(
            models["kp_detector"], models["generator"], models.get("discriminator"), tp
        ), None
    kwargs = {}
    if (
        vgg is None
        and sum(tp["loss_weights"].get("perceptual", [0]) or [0]) != 0
        and not os.environ.get("FOMM_VGG19_WEIGHTS")
    ):
        from fomm_tutorial.reference import find_reference_dir

        ref = find_reference_dir()
        npz = ref / "vox-256-tiny-vgg19.npz" if ref is not None else None
        if npz is not None and npz.is_file():
            vgg = L.Vgg19.from_file(npz)  # offline: the fixture's VGG19 arrays
    if vgg is not None:
        kwargs["vgg"] = vgg
    gen_full = L.GeneratorFullModel(
        models["kp_detector"],
        models["generator"],
        models["discriminator"],
        tp,
        **kwargs,
    )
    disc_full = None
    if float(tp["loss_weights"].get("generator_gan", 0)) != 0:
        disc_full = L.DiscriminatorFullModel(
            models["kp_detector"], models["generator"], models["discriminator"], tp
        )
    return gen_full, disc_full


# ============================================================================================
# Visualisation
# ============================================================================================
def draw_keypoints(
    images: np.ndarray, kp_value: np.ndarray, radius: int = 2
) -> np.ndarray:
    """Images ``(B, H, W, 3)`` with keypoints ``(B, K, 2)`` in [-1, 1] drawn as coloured discs."""
    import matplotlib

    images = np.array(images, np.float32, copy=True)
    b, h, w = images.shape[:3]
    k = kp_value.shape[1]
    cmap = matplotlib.colormaps["gist_rainbow"]
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(b):
        for j in range(k):
            px = (kp_value[i, j, 0] + 1) / 2 * (w - 1)
            py = (kp_value[i, j, 1] + 1) / 2 * (h - 1)
            disc = (xx - px) ** 2 + (yy - py) ** 2 <= radius**2
            images[i][disc] = np.asarray(cmap(j / max(k, 1))[:3], np.float32)
    return images


def visualization_grid(x, generated, max_rows: int = 4) -> np.ndarray:
    """``(rows*H, 3*W, 3)`` grid: source + kp_source | driving + kp_driving | prediction."""

    def np_(t):
        return np.asarray(tf.cast(t, tf.float32))[:max_rows]

    src = draw_keypoints(np_(x["source"]), np_(generated["kp_source"]["value"]))
    drv = draw_keypoints(np_(x["driving"]), np_(generated["kp_driving"]["value"]))
    pred = np.clip(np_(generated["prediction"]), 0, 1)
    cols = [np.concatenate(list(c), axis=0) for c in (src, drv, pred)]
    return np.concatenate(cols, axis=1)


def _metadata(plugin):
    from tensorflow.core.framework import summary_pb2

    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = plugin
    return md


def summary_scalar(tag, value, step):
    """A TensorBoard scalar (written with ``tf.summary.write``; no tensorboard package needed)."""
    md = _metadata("scalars")
    md.data_class = 1  # DATA_CLASS_SCALAR
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=md)


def summary_image(tag, image, step):
    """A TensorBoard image ``(H, W, 3)`` in [0, 1], PNG-encoded (the images plugin's layout)."""
    img = tf.convert_to_tensor(
        np.clip(np.asarray(image) * 255 + 0.5, 0, 255).astype(np.uint8)
    )
    png = tf.io.encode_png(img)
    tensor = tf.stack(
        [tf.as_string(tf.shape(img)[1]), tf.as_string(tf.shape(img)[0]), png]
    )
    md = _metadata("images")
    md.data_class = 2  # DATA_CLASS_TENSOR
    tf.summary.write(tag, tensor, step=step, metadata=md)


# ============================================================================================
# The trainer
# ============================================================================================
class Trainer:
    """Train the three FOMM networks of ``config`` into ``out_dir``.

    Args:
      config: original config dict (``train_params`` read: ``lr_*``, ``epoch_milestones``,
        ``num_epochs``, ``batch_size``, ``loss_weights``, ``checkpoint_freq``...).
      out_dir: log directory: ``checkpoints/``, ``tensorboard/``, ``log.txt``, ``train-vis/``.
      dataset_fn: ``dataset_fn(epoch) -> tf.data.Dataset`` of global batches
        ``{"source", "driving"}`` ``(B, H, W, 3)``; must give the same stream for the same epoch
        (:func:`fomm_tutorial.data.make_dataset` with ``epoch=`` does).
      models: ``build_models``-style dict (built inside the strategy's scope when omitted).
      strategy: a ``tf.distribute.Strategy`` (default: none, i.e. the default strategy).
      simple_losses: use :class:`ReconstructionFullModel` instead of the faithful losses.
      checkpoint_every: save every N steps (default: none; always at the end and after every
        ``checkpoint_freq`` epochs).
    """

    def __init__(
        self,
        config,
        out_dir,
        dataset_fn: Callable[[int], tf.data.Dataset],
        models=None,
        strategy=None,
        mixed_precision: bool = False,
        jit_compile: bool = False,
        seed: int = 0,
        checkpoint_every: Optional[int] = None,
        max_to_keep: int = 3,
        simple_losses: bool = False,
        vgg=None,
        image_every: int = 100,
        progress: bool = True,
        callbacks: Iterable[Callable] = (),
    ):
        self.config = config
        self.tp = config["train_params"]
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.dataset_fn = dataset_fn
        self.strategy = strategy or tf.distribute.get_strategy()
        self.mixed_precision = bool(mixed_precision)
        self.jit_compile = bool(jit_compile)
        self.seed = int(seed)
        self.checkpoint_every = checkpoint_every
        self.max_to_keep = int(max_to_keep)
        self.image_every = int(image_every)
        self.progress = progress
        self.callbacks = list(callbacks)
        self.milestones = list(self.tp.get("epoch_milestones", []))
        self.base_lr = {
            "generator": float(self.tp.get("lr_generator", 2e-4)),
            "kp_detector": float(self.tp.get("lr_kp_detector", 2e-4)),
            "discriminator": float(self.tp.get("lr_discriminator", 2e-4)),
        }
        with self.strategy.scope():
            if models is None:
                from fomm_tutorial.checkpoint import build_models

                previous = keras.mixed_precision.global_policy()
                if self.mixed_precision:
                    keras.mixed_precision.set_global_policy("mixed_float16")
                try:
                    models = build_models(config)
                finally:  # layers keep the policy they were built with
                    keras.mixed_precision.set_global_policy(previous)
            self.models = models
            self.optimizers = {
                n: make_optimizer(self.base_lr[n], self.mixed_precision)
                for n in ("generator", "kp_detector", "discriminator")
            }
            for n, opt in self.optimizers.items():
                opt.build(self.models[n].trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.rng = tf.random.Generator.from_seed(self.seed)
        self.generator_full, self.discriminator_full = make_full_models(
            self.models, config, vgg=vgg, simple=simple_losses
        )
        self._gen_seed = _accepts(self.generator_full.__call__, "seed")
        self.checkpoint = tf.train.Checkpoint(
            kp_detector=self.models["kp_detector"],
            generator=self.models["generator"],
            discriminator=self.models["discriminator"],
            optimizer_generator=self.optimizers["generator"],
            optimizer_kp_detector=self.optimizers["kp_detector"],
            optimizer_discriminator=self.optimizers["discriminator"],
            step=self.step,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            rng=self.rng,
            # Every weight in model order, non-trainable ones included: layers held in Python
            # lists are not traversed by tf.train.Checkpoint, and their trainable weights are
            # only reached through the optimizers -- batch-norm statistics would be lost.
            kp_detector_weights=list(self.models["kp_detector"].weights),
            generator_weights=list(self.models["generator"].weights),
            discriminator_weights=list(self.models["discriminator"].weights),
        )
        self._writer = None
        self._compiled = None
        self.history: Dict[str, list] = {}

    # ---------------------------------------------------------------- steps
    def _replica_step(self, x, seed):
        n = tf.cast(self.strategy.num_replicas_in_sync, tf.float32)
        # a different random transform on every replica (replica 0 = no strategy)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = seed + tf.cast(replica, seed.dtype)
        gen_vars = self.models["generator"].trainable_variables
        kp_vars = self.models["kp_detector"].trainable_variables
        with tf.GradientTape() as tape:
            if self._gen_seed:
                losses, generated = self.generator_full(x, training=True, seed=seed)
            else:
                losses, generated = self.generator_full(x, training=True)
            losses = {
                k: tf.cast(tf.reduce_mean(v), tf.float32) for k, v in losses.items()
            }
            loss = tf.add_n(list(losses.values())) / n
            scaled = loss
            if self.mixed_precision:
                scaled = self.optimizers["generator"].scale_loss(loss)
        grads = tape.gradient(scaled, gen_vars + kp_vars)
        self.optimizers["generator"].apply_gradients(
            zip(grads[: len(gen_vars)], gen_vars)
        )
        self.optimizers["kp_detector"].apply_gradients(
            zip(grads[len(gen_vars) :], kp_vars)
        )
        if self.discriminator_full is not None:
            disc_vars = self.models["discriminator"].trainable_variables
            with tf.GradientTape() as tape:
                d_losses = self.discriminator_full(x, generated, training=True)
                d_losses = {
                    k: tf.cast(tf.reduce_mean(v), tf.float32)
                    for k, v in d_losses.items()
                }
                d_loss = tf.add_n(list(d_losses.values())) / n
                scaled = d_loss
                if self.mixed_precision:
                    scaled = self.optimizers["discriminator"].scale_loss(d_loss)
            grads = tape.gradient(scaled, disc_vars)
            self.optimizers["discriminator"].apply_gradients(zip(grads, disc_vars))
            losses.update(d_losses)
        # global-batch means after the SUM over replicas
        losses = {k: v / n for k, v in losses.items()}
        return losses, generated

    def _train_step(self, x):
        seed = self.rng.make_seeds(1)[:, 0]
        per_replica_losses, generated = self.strategy.run(
            self._replica_step, args=(x, seed)
        )
        losses = {
            k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in per_replica_losses.items()
        }
        return losses, generated

    def _step_fn(self):
        if self._compiled is None:
            self._compiled = tf.function(
                self._train_step,
                jit_compile=self.jit_compile or None,
                reduce_retracing=True,
            )
        return self._compiled

    # ---------------------------------------------------------------- checkpoints
    def latest_checkpoint(self) -> Optional[str]:
        latest = self.ckpt_dir / "latest"
        if not latest.is_file():
            return None
        name = latest.read_text().strip()
        path = tf.train.latest_checkpoint(str(self.ckpt_dir / name))
        return path

    def save(self) -> str:
        """Write a checkpoint atomically; returns its prefix."""
        step = int(self.step.numpy())
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        name = f"step-{step:08d}"
        staging = self.ckpt_dir / f".staging-{name}-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        manager = tf.train.CheckpointManager(
            self.checkpoint, str(staging), max_to_keep=1, checkpoint_name="ckpt"
        )
        manager.save(checkpoint_number=step)
        (staging / "state.json").write_text(
            json.dumps(
                {
                    "step": step,
                    "epoch": int(self.epoch.numpy()),
                    "step_in_epoch": int(self.step_in_epoch.numpy()),
                }
            )
        )
        final = self.ckpt_dir / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)  # the checkpoint appears complete or not at all
        tmp = self.ckpt_dir / f".latest-{os.getpid()}"
        tmp.write_text(name + "\n")
        os.replace(tmp, self.ckpt_dir / "latest")
        kept = sorted(p for p in self.ckpt_dir.glob("step-*") if p.is_dir())
        for old in kept[: -self.max_to_keep]:
            shutil.rmtree(old, ignore_errors=True)
        return tf.train.latest_checkpoint(str(final))

    def restore(self, path: Optional[str] = None) -> Optional[str]:
        path = path or self.latest_checkpoint()
        if path is None:
            return None
        self.checkpoint.read(path).assert_existing_objects_matched()
        return path

    # ---------------------------------------------------------------- logging
    def _writer_(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                str(self.out_dir / "tensorboard")
            )
        return self._writer

    def _log_epoch(self, epoch, sums, count):
        if not count:
            return
        names = [k for k in LOSS_ORDER if k in sums] + [
            k for k in sums if k not in LOSS_ORDER
        ]
        line = "; ".join(f"{k} - {sums[k] / count:.5f}" for k in names)
        with open(self.out_dir / "log.txt", "a") as f:
            f.write(f"{epoch:08d}) {line}\n")

    def lr_values(self) -> Dict[str, float]:
        return {n: _get_lr(o) for n, o in self.optimizers.items()}

    # ---------------------------------------------------------------- loop
    def train(
        self,
        num_epochs: Optional[int] = None,
        max_steps: Optional[int] = None,
        resume: bool = False,
    ) -> Dict[str, list]:
        """Run epochs ``epoch .. num_epochs - 1`` (stop early at ``max_steps`` steps in total).

        Returns the per-step history ``{loss name: [values]}`` of this call.
        """
        from tqdm.auto import tqdm

        num_epochs = int(
            num_epochs if num_epochs is not None else self.tp["num_epochs"]
        )
        if resume:
            self.restore()
        ckpt_freq = int(self.tp.get("checkpoint_freq", 0) or 0)
        step_fn = self._step_fn()
        bar = tqdm(
            total=max_steps,
            initial=int(self.step.numpy()),
            disable=not self.progress,
            desc="train",
            leave=False,
        )
        history = self.history = {}
        last_saved = None
        try:
            while int(self.epoch.numpy()) < num_epochs:
                epoch = int(self.epoch.numpy())
                for n, opt in self.optimizers.items():
                    _set_lr(opt, multistep_lr(self.base_lr[n], epoch, self.milestones))
                skip = int(self.step_in_epoch.numpy())
                ds = self.dataset_fn(epoch)
                if skip:
                    ds = ds.skip(skip)
                ds = self.strategy.experimental_distribute_dataset(ds)
                sums, count = {}, 0
                for x in ds:
                    if max_steps is not None and int(self.step.numpy()) >= max_steps:
                        break
                    losses, generated = step_fn(x)
                    values = {k: float(v.numpy()) for k, v in losses.items()}
                    step = int(self.step.numpy())
                    for k, v in values.items():
                        if not np.isfinite(v):
                            raise NonFiniteLossError(
                                f"loss '{k}' is {v} at step {step} (epoch {epoch}); training "
                                f"stopped, last good checkpoint kept: {last_saved or self.latest_checkpoint()}"
                            )
                    self.step.assign_add(1)
                    self.step_in_epoch.assign_add(1)
                    step += 1
                    for k, v in values.items():
                        history.setdefault(k, []).append(v)
                        sums[k] = sums.get(k, 0.0) + v
                    count += 1
                    with self._writer_().as_default(step=step):
                        for k, v in values.items():
                            summary_scalar(f"loss/{k}", v, step)
                        for n, lr in self.lr_values().items():
                            summary_scalar(f"lr/{n}", lr, step)
                        if self.image_every and (
                            step % self.image_every == 0 or step == 1
                        ):
                            local = self._local(x)
                            gen = self._local(generated)
                            grid = visualization_grid(local, gen)
                            summary_image("source_driving_prediction", grid, step)
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})
                    if self.checkpoint_every and step % int(self.checkpoint_every) == 0:
                        last_saved = self.save()
                    for cb in self.callbacks:
                        cb(self, step, values)
                else:
                    # the epoch ran to its end
                    self._log_epoch(epoch, sums, count)
                    self.epoch.assign_add(1)
                    self.step_in_epoch.assign(0)
                    if ckpt_freq and (epoch + 1) % ckpt_freq == 0:
                        last_saved = self.save()
                    continue
                break  # max_steps reached inside the epoch
            last_saved = self.save()
        finally:
            bar.close()
            if self._writer is not None:
                self._writer.flush()
        return history

    def _local(self, tree):
        """First replica's values of a (possibly per-replica) nest."""

        def first(v):
            if isinstance(v, tf.distribute.DistributedValues):
                return self.strategy.experimental_local_results(v)[0]
            return v

        return tf.nest.map_structure(first, tree)


# ============================================================================================
# Sprites demo (chapters 9 and 10)
# ============================================================================================
def sprite_config(
    size: int = 64,
    num_kp: int = 4,
    num_epochs: int = 1,
    batch_size: int = 8,
    num_repeats: int = 1,
) -> dict:
    """A small config for 64x64 sprites: few keypoints, narrow networks, no GAN."""
    return {
        "dataset_params": {
            "root_dir": None,
            "frame_shape": [size, size, 3],
            "id_sampling": False,
            "augmentation_params": {
                "flip_param": {"horizontal_flip": False, "time_flip": True}
            },
        },
        "model_params": {
            "common_params": {
                "num_kp": num_kp,
                "num_channels": 3,
                "estimate_jacobian": True,
            },
            "kp_detector_params": {
                "temperature": 0.1,
                "block_expansion": 16,
                "max_features": 64,
                "scale_factor": 0.5,
                "num_blocks": 3,
            },
            "generator_params": {
                "block_expansion": 16,
                "max_features": 64,
                "num_down_blocks": 2,
                "num_bottleneck_blocks": 2,
                "estimate_occlusion_map": True,
                "dense_motion_params": {
                    "block_expansion": 16,
                    "max_features": 64,
                    "num_blocks": 3,
                    "scale_factor": 0.5,
                },
            },
            "discriminator_params": {
                "scales": [1],
                "block_expansion": 8,
                "max_features": 32,
                "num_blocks": 4,
                "sn": True,
                "use_kp": False,
            },
        },
        "train_params": {
            "num_epochs": num_epochs,
            "num_repeats": num_repeats,
            "epoch_milestones": [],
            "lr_generator": 2e-4,
            "lr_discriminator": 2e-4,
            "lr_kp_detector": 2e-4,
            "batch_size": batch_size,
            "scales": [1, 0.5, 0.25],
            "checkpoint_freq": 0,
            "transform_params": {
                "sigma_affine": 0.05,
                "sigma_tps": 0.005,
                "points_tps": 5,
            },
            "loss_weights": {
                "generator_gan": 0,
                "discriminator_gan": 1,
                "feature_matching": [10, 10, 10, 10],
                "perceptual": [10, 10, 10, 10, 10],
                "equivariance_value": 10,
                "equivariance_jacobian": 10,
            },
        },
    }


def train_sprites_demo(
    out_dir,
    steps: int = 300,
    seed: int = 0,
    size: int = 64,
    num_kp: int = 4,
    batch_size: int = 8,
    num_videos: int = 24,
    num_frames: int = 32,
    simple_losses: bool = True,
    resume: bool = True,
    progress: bool = False,
):
    """Train a small model on a procedural sprite dataset, deterministically.

    Writes the sprites to ``out_dir/sprites`` (once) and trains ``steps`` steps into
    ``out_dir/log`` (resuming when a checkpoint is there, so a second call with the same
    arguments is free). ``simple_losses`` (default): multi-scale L1 + equivariance
    (:class:`ReconstructionFullModel`, CPU-friendly); ``False``: the original losses with VGG19.
    Returns ``(trainer, history, config, data_root)``; the models are
    ``trainer.models``.
    """
    from fomm_tutorial import data as D

    out_dir = Path(out_dir)
    root = out_dir / "sprites"
    if not (root / "sprites.json").is_file():
        D.write_sprite_dataset(
            root, num_videos=num_videos, num_frames=num_frames, size=size, seed=seed
        )
    n_train = len(D.list_videos(root / "train"))
    num_repeats = max(1, int(np.ceil(batch_size * 8 / n_train)))
    cfg = sprite_config(
        size, num_kp, num_epochs=10**6, batch_size=batch_size, num_repeats=num_repeats
    )
    cfg["dataset_params"]["root_dir"] = str(root)
    if not simple_losses and not _have_losses():
        raise ImportError("simple_losses=False needs fomm_tutorial.losses")
    keras.utils.set_random_seed(seed)

    def dataset_fn(epoch):
        return D.make_dataset(
            cfg, batch_size=batch_size, seed=seed, epoch=epoch, num_parallel_calls=1
        )

    trainer = Trainer(
        cfg,
        out_dir / "log",
        dataset_fn,
        seed=seed,
        simple_losses=simple_losses,
        progress=progress,
        image_every=100,
    )
    history = trainer.train(max_steps=steps, resume=resume)
    return trainer, history, cfg, root


def _have_losses() -> bool:
    try:
        import fomm_tutorial.losses  # noqa: F401
    except ImportError:
        return False
    return True


# ============================================================================================
# CLI
# ============================================================================================
def run_cli(args) -> int:
    """``fomm-tutorial train --config C --data DIR --out LOGDIR [--resume] ...``."""
    from fomm_tutorial import data as D
    from fomm_tutorial.checkpoint import _as_config

    cfg = _as_config(args.config)
    tp = cfg["train_params"]
    if getattr(args, "epochs", None) is not None:
        tp["num_epochs"] = int(args.epochs)
    if getattr(args, "batch_size", None) is not None:
        tp["batch_size"] = int(args.batch_size)
    if getattr(args, "num_repeats", None) is not None:
        tp["num_repeats"] = int(args.num_repeats)
    if not Path(args.data).is_dir():
        raise FileNotFoundError(
            f"--data {args.data} is not a folder: give a dataset root in the "
            "original layout (train/ and test/, or one folder of videos)"
        )
    cfg["dataset_params"]["root_dir"] = str(args.data)
    gpu = bool(tf.config.list_physical_devices("GPU"))
    mp = gpu if args.mixed_precision is None else bool(args.mixed_precision)
    xla = gpu if args.xla is None else bool(args.xla)
    seed = int(getattr(args, "seed", 0) or 0)
    keras.utils.set_random_seed(seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.resume and (out / "checkpoints" / "latest").is_file():
        raise ValueError(
            f"{out} already holds checkpoints: pass --resume to continue, or choose "
            "another --out"
        )
    (out / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else None
    batch = int(tp["batch_size"])

    def dataset_fn(epoch):
        return D.make_dataset(cfg, batch_size=batch, seed=seed, epoch=epoch)

    trainer = Trainer(
        cfg,
        out,
        dataset_fn,
        strategy=strategy,
        mixed_precision=mp,
        jit_compile=xla,
        seed=seed,
        checkpoint_every=args.checkpoint_every,
        simple_losses=bool(getattr(args, "simple_losses", False)),
    )
    if args.resume and trainer.latest_checkpoint() is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    t0 = time.time()
    history = trainer.train(max_steps=args.steps, resume=args.resume)
    n = len(next(iter(history.values()), []))
    summary = ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.items())
    print(
        f"trained {n} steps in {time.time() - t0:.1f} s (step {int(trainer.step.numpy())}, "
        f"epoch {int(trainer.epoch.numpy())}); {summary}; checkpoint {trainer.latest_checkpoint()}"
    )
    return 0


# ============================================================================================
# Keypoint quality on sprites: linear regression to the true part positions
# ============================================================================================
def sprite_keypoints(kp_detector, root, split: str, batch_size: int = 32):
    """Detected keypoints ``(N, K, 2)`` and true positions ``(N, P, 2)`` of all frames of a split."""
    from fomm_tutorial import data as D

    root = Path(root)
    size = json.loads((root / "sprites.json").read_text())["size"]
    kps, gts = [], []
    for name in D.list_videos(root / split):
        video = D.read_frames(root / split / name, (size[0], size[1], 3))
        for i in range(0, len(video), batch_size):
            kp = kp_detector(
                tf.constant(video[i : i + batch_size], tf.float32), training=False
            )
            kps.append(np.asarray(tf.cast(kp["value"], tf.float32)))
        gts.append(D.load_sprite_positions(root, split, name))
    return np.concatenate(kps), np.concatenate(gts).astype(np.float32)


def keypoint_regression_error(
    kp_train, gt_train, kp_test, gt_test, ridge: float = 1e-4
):
    """Fit ``gt ~ [kp, 1] W`` (least squares, small ridge) on train; mean L2 error on test.

    Errors are in normalised [-1, 1] units (multiply by ``(size - 1) / 2`` for pixels).
    Returns ``(error, W)``.
    """

    def design(kp):
        kp = kp.reshape(len(kp), -1).astype(np.float64)
        return np.concatenate([kp, np.ones((len(kp), 1))], axis=1)

    a, b = design(kp_train), gt_train.reshape(len(gt_train), -1).astype(np.float64)
    w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ b)
    pred = (design(kp_test) @ w).reshape(gt_test.shape)
    return float(np.mean(np.linalg.norm(pred - gt_test, axis=-1))), w


def mean_position_error(gt_train, gt_test) -> float:
    """Baseline: predict every part at its mean training position."""
    return float(
        np.mean(np.linalg.norm(gt_test - gt_train.mean(0, keepdims=True), axis=-1))
    )
