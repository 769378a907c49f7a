"""Run-time set-up: Abseil's start-up lines are filtered from stderr, real errors are not."""

from __future__ import annotations

import os
import subprocess
import sys

from fomm_tutorial import runtime


def test_filtered_stderr_drops_absl_noise_and_keeps_the_rest(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written "
        "to STDERR\n",
        "I0000 00:00:1795699803.666574   16148 port.cc:153] oneDNN custom operations\n",
        "W0000 00:00:1795699803.667205   16148 service.cc:99] a warning\n",
        "E0000 00:00:1795699803.667205   16148 cuda.cc:12] a real error\n",
        "Traceback or any other text\n",
    ]
    with runtime.filtered_stderr():
        for line in lines:
            os.write(2, line.encode())
        print("from Python", file=sys.stderr)
    err = capfd.readouterr().err
    assert "absl::InitializeLog" not in err and "oneDNN" not in err
    assert "a warning" not in err
    assert "a real error" in err and "any other text" in err and "from Python" in err


def test_filtered_stderr_follows_tf_cpp_min_log_level(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    with runtime.filtered_stderr():
        os.write(2, b"I0000 00:00:1.5   1 a.cc:1] info\n")
        os.write(2, b"W0000 00:00:1.5   1 a.cc:1] warning\n")
    err = capfd.readouterr().err
    assert "info" not in err and "warning" in err


def test_no_absl_lines_from_import_configure_and_first_xla_compile():
    # TF 2.21 prints Abseil lines at import, TF 2.20 at the first XLA compilation, whatever
    # TF_CPP_MIN_LOG_LEVEL says; after configure() neither reaches stderr.
    code = (
        "from fomm_tutorial import runtime\n"
        "runtime.configure(seed=0)\n"
        "import tensorflow as tf\n"
        "f = tf.function(lambda x: 2.0 * x, jit_compile=True)\n"
        "print(float(f(tf.ones(()))))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2.0"
    assert result.stderr == "", result.stderr
