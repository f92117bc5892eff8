# Two commands do all set-up on a fresh Debian machine with Python 3.11 (as root):
#   make run   - virtual environment, packages, ffmpeg, database, demo merchant, service on :8000
#   make test  - the same set-up, then lint (ruff, import-linter) and the whole test suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= var
export MEDIA_SERVICE_DATA_DIR ?= $(DATA_DIR)

.PHONY: run test setup system-packages venv db demo-merchant lint bench clean

run: setup demo-merchant
	$(BIN)/media-service serve --host 127.0.0.1 --port 8000

test: setup test-system-packages lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: system-packages venv db

# Debian packages the service needs, only installed when missing: ffmpeg, and OpenCV's Haar cascades
# (face blurring in videos).
DEBIAN_PACKAGES := $(if $(shell command -v ffmpeg),,ffmpeg) \
                   $(if $(wildcard /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml),,opencv-data)
system-packages:
	@if [ -n "$(strip $(DEBIAN_PACKAGES))" ]; then \
	  echo "installing Debian packages: $(strip $(DEBIAN_PACKAGES))"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	fi


# Extra Debian packages the tests use (a real PostgreSQL server, a real Chromium), only when missing.
TEST_DEBIAN_PACKAGES := $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql) \
                        $(if $(wildcard /usr/bin/chromium),,chromium)
test-system-packages:
	@if [ -n "$(strip $(TEST_DEBIAN_PACKAGES))" ]; then \
	  echo "installing Debian packages for the tests: $(strip $(TEST_DEBIAN_PACKAGES))"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEBIAN_PACKAGES) >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,detection]'
	touch $@

db: venv
	$(BIN)/media-service db upgrade

demo-merchant: db
	@if [ ! -f $(DATA_DIR)/demo-merchant ]; then \
	  $(BIN)/media-service merchants create "Demo shop" && touch $(DATA_DIR)/demo-merchant; \
	else \
	  echo "Demo merchant exists (media-service merchants list); new key: media-service merchants create NAME"; \
	fi

# ruff, and the layering of ARCHITECTURE.md as import-linter contracts (pyproject.toml).
lint: venv
	$(BIN)/ruff check media_service tests bench tools
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python bench/upload_throughput.py --size-mib 1024
	$(BIN)/python bench/video_ladder.py
	$(BIN)/python bench/video_job_overhead.py
	$(BIN)/python bench/video_memory.py
	$(BIN)/python bench/stitching.py --repeat 3
	$(BIN)/python bench/spin_from_video.py
	$(BIN)/python bench/catalog_detector.py --seconds 8 --accuracy 12
	$(BIN)/python bench/tap_latency.py --taps 1000 --on-demand-taps 300
	$(BIN)/python bench/torchvision_detector.py --frames 24
	$(BIN)/python bench/widget_first_frame.py --runs 5
	$(BIN)/python bench/video_real_input.py
	$(BIN)/python bench/catalog_detector.py --validation 24 --validation-seed 9092 --skip-speed
	$(BIN)/python bench/campaign_render.py --fragments 6 --runs 3
	$(BIN)/python bench/campaign_claims.py --viewers 100 --stagger 10
	$(BIN)/python bench/campaign_claim_cost.py --viewers 30
	$(BIN)/python bench/console_pages.py --assets 10000 --rounds 40
	$(BIN)/python bench/load.py --readers 200 --reads 5 --uploads 50

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache
