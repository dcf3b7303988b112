"""The judge's servers, started once per session (a pytest plugin, loaded by tests/conftest.py,
so tests/judge and tests/jobs share one server): a real llama.cpp server and the counting proxy
in front of it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.factories import DATA_DIR
from tests.judge.pairs import API_KEY
from tests.judge.servers import CountingProxy, LlamaServer, start_llama_server

# The worker and the API read the judge's key from their settings; the session's server requires
# it, so a request without it would fail (401). Set before the worker starts (collection time).
os.environ["PREFAUDIT_JUDGE_API_KEY"] = API_KEY


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    server = start_llama_server(DATA_DIR, api_key=API_KEY)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy_server(llama_server: LlamaServer) -> Iterator[CountingProxy]:
    proxy = CountingProxy(llama_server.base_url)
    yield proxy
    proxy.close()


@pytest.fixture
def proxy(proxy_server: CountingProxy) -> CountingProxy:
    """The session's proxy with its counts and faults cleared."""
    proxy_server.reset()
    return proxy_server
