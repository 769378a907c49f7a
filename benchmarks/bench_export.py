"""Frames per second of the exported graphs in each runtime, as ratios to Keras in the same run.

    .venv/bin/python benchmarks/bench_export.py [--models vox-256,sprites-64] [--repeats 5]
                                                [--formats saved_model,onnx,tflite]
                                                [--threads N]

One frame is what animation costs per driving frame at batch 1: the keypoint detector on
the frame, then the generator on (source, source keypoints, driving keypoints). Each model
is exported with :func:`fomm_tutorial.export.export_models` into a temporary folder and
run with :func:`fomm_tutorial.export.load_exported` (SavedModel in TensorFlow, ONNX in
onnxruntime, TFLite in LiteRT); the baseline is the same computation in Keras
(:func:`fomm_tutorial.export.graph_functions`, a ``tf.function`` of the models). ``vox-256``
has random weights (speed does not depend on them) at 256 x 256; ``sprites-64`` is the
shipped model at 64 x 64. The machine is shared: each figure is the best of ``--repeats``
timed frames after one warm-up, and only the ratios within one run are comparable.

Figures on the 2-core development machine (2026-12-03, --repeats 3, a training running at
nice 19 beside it), frames/s and ratio to Keras:

    vox-256 (256 px)  Keras 1.87 | SavedModel 1.90 (1.02x) | onnxruntime 1.52 (0.82x)
                      | LiteRT 2.18 (1.17x); 241 / 244 / 243 MB on disk
    sprites-64 (64 px) Keras 70.0 | SavedModel 71.4 (1.02x) | onnxruntime 53.5 (0.76x)
                      | LiteRT 86.1 (1.23x); 3.2 / 2.9 / 2.6 MB on disk

Exports took 2 s (SavedModel), 25 s (ONNX) and 10 s (TFLite) at vox-256.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _models(name):
    """``(models, config)``: the shipped model, or random weights for a config name."""
    from fomm_tutorial.pretrained import list_pretrained, load_pretrained

    if name in list_pretrained():
        models = load_pretrained(name)
        return models, models["config"]
    from fomm_tutorial.checkpoint import build_models
    from fomm_tutorial.config import load_config

    config = load_config(name)
    return build_models(config), config


def _keras_runner(function):
    def run(**x):
        return {k: v.numpy() for k, v in function(*x.values()).items()}

    return run


def frame_function(detect, generate, source, kp_source):
    """One animated frame: ``frame (1, H, W, 3) -> prediction``, with named arrays."""

    def frame(image):
        kp = detect(image=image)
        x = {"source": source}
        x.update({f"kp_source_{k}": v for k, v in kp_source.items()})
        x.update({f"kp_driving_{k}": v for k, v in kp.items()})
        return generate(**{n: x[n] for n in generate.inputs})["prediction"]

    return frame


def best_seconds(frame, image, repeats):
    frame(image)  # warm-up: graph building, allocation
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        frame(image)
        best = min(best, time.perf_counter() - t0)
    return best


def bench_model(name, formats, repeats, threads):
    from fomm_tutorial.export import (
        disk_size,
        export_models,
        export_size,
        graph_functions,
        graph_names,
        load_exported,
    )

    models, config = _models(name)
    h, w = export_size(config)
    rng = np.random.default_rng(0)
    source = rng.random((1, h, w, 3), dtype=np.float32)
    image = rng.random((1, h, w, 3), dtype=np.float32)
    names = graph_names(config)
    keras = graph_functions(models, config)
    runners = {"keras": {}}
    for network, function in keras.items():
        run = _keras_runner(function)
        run.inputs = names[network]["inputs"]
        runners["keras"][network] = run
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for format in formats:
            t0 = time.perf_counter()
            written = export_models(models, config, os.path.join(tmp, format), format)
            print(f"  {name}: exported {format} in {time.perf_counter() - t0:.0f} s")
            sizes[format] = sum(disk_size(p) for p in written.values())
            runners[format] = {
                network: load_exported(path, threads=threads)
                for network, path in written.items()
            }
        results = {}
        for runtime, graphs in runners.items():
            kp_source = graphs["kp_detector"](image=source)
            frame = frame_function(
                graphs["kp_detector"], graphs["generator"], source, kp_source
            )
            results[runtime] = 1.0 / best_seconds(frame, image, repeats)
    return h, w, results, sizes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vox-256,sprites-64")
    parser.add_argument("--formats", default="saved_model,onnx,tflite")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    labels = {
        "keras": "Keras",
        "saved_model": "SavedModel",
        "onnx": "onnxruntime",
        "tflite": "LiteRT",
    }
    for name in [m for m in args.models.split(",") if m]:
        h, w, fps, sizes = bench_model(name, formats, args.repeats, args.threads)
        print(f"{name} at {h} x {w}, batch 1 (best of {args.repeats}):")
        for runtime, value in fps.items():
            size = f", {sizes[runtime] / 1e6:.1f} MB" if runtime in sizes else ""
            print(
                f"  {labels[runtime]:12s} {value:7.2f} frames/s  "
                f"{value / fps['keras']:.2f} x Keras{size}"
            )


if __name__ == "__main__":
    main()
