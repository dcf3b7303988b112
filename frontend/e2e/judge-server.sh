#!/usr/bin/env bash
# The LLM judge's server for evidence.spec.ts: llama-cpp-python's OpenAI-compatible server serving
# the SmolLM2-135M GGUF the project ships (bench/lib/llama_server.py, as the Python tests start it),
# in the foreground on 127.0.0.1:$1, without a key (the e2e stack sets no judge key). The spec
# waits for GET /v1/models and stops it. Run from frontend/.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PREFAUDIT_PYTHON:-.venv/bin/python}"
exec "$PYTHON" -m bench.lib.llama_server "${1:?usage: judge-server.sh PORT}"
