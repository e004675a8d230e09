#!/usr/bin/env bash
# Virtualenvs of the peer libraries of benchmarks/sequential.py (never lmrec dependencies).
# RecBole 1.2.1 pins an old ray and breaks with NumPy 2: installed without its dependencies
# plus its small runtime deps (shared/DESIGN.md); RecTools 0.19 with its torch extra.
# Usage: benchmarks/peers/setup.sh [DIR]   (default /tmp/seqpeers; the benchmark reads
# RECBOLE_PYTHON / RECTOOLS_PYTHON, defaulting to DIR/recbole-venv and DIR/rectools-venv)
set -euo pipefail
DIR=${1:-/tmp/seqpeers}
mkdir -p "$DIR"
python3 -m venv "$DIR/recbole-venv"
"$DIR/recbole-venv/bin/pip" install -q torch==2.13.0
"$DIR/recbole-venv/bin/pip" install -q --no-deps recbole==1.2.1
"$DIR/recbole-venv/bin/pip" install -q colorlog colorama tabulate texttable psutil thop \
    tensorboard plotly pyyaml tqdm scikit-learn pandas scipy numpy
python3 -m venv "$DIR/rectools-venv"
"$DIR/rectools-venv/bin/pip" install -q torch==2.13.0
"$DIR/rectools-venv/bin/pip" install -q "rectools[torch]==0.19.0"
echo "peers ready in $DIR"
