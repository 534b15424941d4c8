#!/bin/sh
# Installs stratlab for a deployment, from this checkout, into the active Python
# environment. The Dockerfile runs exactly this script, and the README's "Deploying
# without Docker" gives it, so an image and a VM get the same install.
#   1. the project and its dependencies (schema.sql and the prompt templates are package data)
#   2. numba's on-disk JIT cache, compiled now so a new worker's first backtest does not
#      pay the compile (NUMBA_CACHE_DIR, else $STRATLAB_HOME/numba-cache)
set -eu
cd "$(dirname "$0")/.."
python -m pip install --no-cache-dir --disable-pip-version-check -e .
stratlab warm-cache
