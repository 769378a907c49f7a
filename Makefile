# Two commands set everything up on a fresh machine:
#   make book   -> .venv, install, build the HTML book from the committed notebook outputs
#   make test   -> .venv, install, unit tests + nbval on every chapter
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install lint test unit nbval book serve live-assets bench clean notebooks sprites-model sprites-ablation talking-head-model talking-head-losses

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt torch==2.13.0
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

LINTED := fomm_tutorial tests book/src tools benchmarks

# One formatter (ruff format, line length 88) and one linter (ruff check), both from pyproject.toml.
lint: install
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)

# Lint, then one pytest run: unit tests, then every chapter re-executed and compared by nbval.
test: install lint
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/pytest tests book --nbval --nbval-current-env \
	  --nbval-cell-timeout=900 --nbval-sanitize-with tools/nbval_sanitize.cfg

unit: install
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/pytest tests

nbval: install
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/pytest book --nbval --nbval-current-env \
	  --nbval-cell-timeout=900 --nbval-sanitize-with tools/nbval_sanitize.cfg

# The live page (_extra/live/, copied to _build/html/live/) and offline math need files that
# are built, never committed: onnxruntime-web and MathJax from npm (pinned in package-lock.json),
# copied into _extra/ by tools/vendor.mjs; sprites-64 exported to ONNX; held-out sprite PNGs.
LIVE       := _extra/live
NODE_STAMP := node_modules/.installed
SPRITES_WEIGHTS := $(wildcard fomm_tutorial/weights/sprites-64/*.weights.h5)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 18+ (apt-get install nodejs npm)"; exit 2; }
	npm ci --no-audit --no-fund --ignore-scripts
	touch $(NODE_STAMP)

_extra/mathjax/tex-chtml.js: $(NODE_STAMP) tools/vendor.mjs
	node tools/vendor.mjs _extra

$(LIVE)/models/generator.onnx: $(SPRITES_WEIGHTS) $(wildcard fomm_tutorial/export.py) | $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/fomm-tutorial export --config sprites-64 \
	  --checkpoint sprites-64 --format onnx --out $(LIVE)/models --overwrite

$(LIVE)/manifest.json: tools/live_samples.py fomm_tutorial/sprites.py $(SPRITES_WEIGHTS) | $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) tools/live_samples.py $(LIVE)

live-assets: _extra/mathjax/tex-chtml.js $(LIVE)/models/generator.onnx $(LIVE)/manifest.json

book: install live-assets
	$(VENV)/bin/jupyter-book build . --builder html
	@echo "The book is at _build/html/index.html; the live page needs a server: make serve"

# The built book on http://127.0.0.1:$(PORT)/ (the live page, live/, cannot run from file://).
PORT ?= 8000
serve:
	@test -f _build/html/index.html || { echo "no _build/html: run make book first"; exit 2; }
	@echo "Serving the book on http://127.0.0.1:$(PORT)/ (live page: http://127.0.0.1:$(PORT)/live/)"
	$(PYTHON) -m http.server -d _build/html -b 127.0.0.1 $(PORT)

# Re-execute the chapter sources (book/src/*.py) into committed notebooks with outputs.
notebooks: install
	$(PY) tools/nbbuild.py book/src/*.py

bench: install
	$(PY) benchmarks/bench_resampler.py
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_train.py

# A training target starts from an empty run folder and never deletes one: an earlier run
# there is the user's. $(call fresh_run,FOLDER,VARIABLE) stops with one line instead.
fresh_run = test ! -e $(1) || { echo "make: $(1) exists (an earlier run): move it away, \
  or set $(2)=<a new folder>" >&2; exit 2; }

# Retrain the shipped sprites-64 model from scratch into $(SPRITES_RUN) (data/, init/, run/),
# then export it into fomm_tutorial/weights/sprites-64/ (weights, config, loss curve,
# metrics, MODEL_CARD.md). Two stages (see its card): the zeroth-order model (the ablation's
# occlusion row) for SPRITES_INIT_STEPS steps, then the first-order sprites-64 warm-started
# from it (--init-from: its Jacobian head starts at the identity) with its keypoints frozen
# (--freeze-keypoints: the Jacobians and the generator learn) for SPRITES_STEPS steps.
SPRITES_RUN        ?= runs/sprites-64
SPRITES_INIT_STEPS ?= 15750
SPRITES_STEPS      ?= 20000
SPRITES_TRAIN       = TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/fomm-tutorial train \
  --data $(SPRITES_RUN)/data --simple-losses --checkpoint-every 250 --seed 0
sprites-model: install
	@$(call fresh_run,$(SPRITES_RUN),SPRITES_RUN)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -c "from fomm_tutorial.sprites import write_sprite_dataset; \
	  write_sprite_dataset('$(SPRITES_RUN)/data', num_videos=2000, num_frames=32, size=64, \
	  seed=0, num_identities=2000)"
	$(SPRITES_TRAIN) --config sprites-64-occlusion --out $(SPRITES_RUN)/init \
	  --steps $(SPRITES_INIT_STEPS)
	$(SPRITES_TRAIN) --config fomm_tutorial/configs/sprites-64.yaml --out $(SPRITES_RUN)/run \
	  --init-from $(SPRITES_RUN)/init --freeze-keypoints --steps $(SPRITES_STEPS)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m fomm_tutorial.pretrained $(SPRITES_RUN)/run --name sprites-64

# The sprite ablation (the paper's Table 1 on sprites): every row of
# fomm_tutorial.pretrained.ABLATION_ROWS trained from scratch on the sprites-64 data, same
# seed and ABLATION_STEPS steps, into $(ABLATION_RUN)/<row>; then scored at that step into
# fomm_tutorial/weights/sprites-64/ablation.json (the card's table: re-export sprites-64).
ABLATION_RUN   ?= runs/sprites-ablation
ABLATION_STEPS ?= 4000
ABLATION_ROWS  := baseline pyramid occlusion jacobian-no-eq12 full
sprites-ablation: install
	@$(call fresh_run,$(ABLATION_RUN),ABLATION_RUN)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -c "from fomm_tutorial.sprites import write_sprite_dataset; \
	  write_sprite_dataset('$(ABLATION_RUN)/data', num_videos=2000, num_frames=32, size=64, \
	  seed=0, num_identities=2000)"
	for row in $(ABLATION_ROWS); do \
	  TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/fomm-tutorial train --config sprites-64-$$row \
	    --data $(ABLATION_RUN)/data --out $(ABLATION_RUN)/$$row --simple-losses \
	    --steps $(ABLATION_STEPS) --checkpoint-every 250 --seed 0 || exit 1; \
	done
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m fomm_tutorial.pretrained --step $(ABLATION_STEPS) \
	  --ablation $(foreach r,$(ABLATION_ROWS),$(r)=$(ABLATION_RUN)/$(r))

# Train the shipped talking-head-128 model from scratch into $(TALKING_RUN) (data/, run/):
# the sample clip (fomm_tutorial.reference.sample_media) split in time, frames 0-198 for
# training and 199-264 held out; the full first-order model with the CPU losses.
TALKING_RUN   ?= runs/talking-head-128
TALKING_STEPS ?= 12000
talking-head-model: install
	@$(call fresh_run,$(TALKING_RUN),TALKING_RUN)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -c "from fomm_tutorial.reference import sample_media; \
	  from fomm_tutorial.data import write_clip_dataset; \
	  write_clip_dataset(sample_media('driving.mp4'), '$(TALKING_RUN)/data', 199, size=128)"
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/fomm-tutorial train \
	  --config fomm_tutorial/configs/talking-head-128.yaml --data $(TALKING_RUN)/data \
	  --out $(TALKING_RUN)/run --simple-losses --steps $(TALKING_STEPS) \
	  --checkpoint-every 250 --seed 0

# The offline reconstruction losses compared on the real clip: talking-head-128 trained
# with each `--simple-losses` kind for LOSS_STEPS steps (same data, seed and schedule) into
# $(LOSSES_RUN)/<loss>, then scored on the held-out frames into
# fomm_tutorial/weights/talking-head-128/losses.json (the card's table: re-export it).
LOSSES_RUN  ?= runs/talking-head-losses
LOSS_STEPS  ?= 2000
LOSS_KINDS  := l1 ms-ssim hed-vgg16
talking-head-losses: install
	@$(call fresh_run,$(LOSSES_RUN),LOSSES_RUN)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -c "from fomm_tutorial.reference import sample_media; \
	  from fomm_tutorial.data import write_clip_dataset; \
	  write_clip_dataset(sample_media('driving.mp4'), '$(LOSSES_RUN)/data', 199, size=128)"
	for loss in $(LOSS_KINDS); do \
	  TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/fomm-tutorial train \
	    --config fomm_tutorial/configs/talking-head-128.yaml --data $(LOSSES_RUN)/data \
	    --out $(LOSSES_RUN)/$$loss --simple-losses $$loss --steps $(LOSS_STEPS) \
	    --checkpoint-every 250 --seed 0 || exit 1; \
	done
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m fomm_tutorial.pretrained --step $(LOSS_STEPS) \
	  --data $(LOSSES_RUN)/data --losses $(foreach l,$(LOSS_KINDS),$(l)=$(LOSSES_RUN)/$(l))

clean:
	rm -rf _build
