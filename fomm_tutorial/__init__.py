"""fomm_tutorial: the First Order Motion Model for Image Animation, stage by stage.

A TensorFlow 2 / Keras 3 (NHWC) port of Siarohin et al., NeurIPS 2019, that matches the
original PyTorch implementation numerically. One module per stage of the book:

=====================  =====================================================
stage                  module
=====================  =====================================================
optical flow           :mod:`fomm_tutorial.optical_flow`
Taylor series          :mod:`fomm_tutorial.taylor`
coordinate grids       :mod:`fomm_tutorial.grids`
resampler              :mod:`fomm_tutorial.resampler`
keypoints              :mod:`fomm_tutorial.keypoints` (blocks in :mod:`fomm_tutorial.blocks`)
dense motion           :mod:`fomm_tutorial.dense_motion`
generator              :mod:`fomm_tutorial.generator` (+ :mod:`fomm_tutorial.discriminator`)
losses                 :mod:`fomm_tutorial.losses`
training loop          :mod:`fomm_tutorial.training` (+ :mod:`fomm_tutorial.data`)
animation              :mod:`fomm_tutorial.animation` (+ :mod:`fomm_tutorial.media`)
=====================  =====================================================

Submodules are imported lazily so that ``import fomm_tutorial`` stays cheap.
"""

__version__ = "0.1.0"

#: The book's repository; the chapters' Colab set-up cells and ``_config.yml`` use the same URL.
REPOSITORY_URL = "https://github.com/fomm-tutorial/fomm-tutorial"
