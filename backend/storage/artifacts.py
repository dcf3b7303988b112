"""The artifact store of sharded jobs: adapter weights, the shard plan, projected gradients, the
solve. A local folder in the embedded mode, a shared volume in docker-compose, any fsspec URL
(`s3://bucket/prefix`, `gs://...`) when workers run on several machines.

Keys live under `dataset-<id>/<config hash>/`: a job rerun with the same configuration reuses what
exists, a different configuration never mixes with it. Every write goes to a temporary name and is
renamed into place, so a reader sees a whole artifact or none, and a task killed mid-write leaves
only a `.partial` file that the next write replaces.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from typing import Any

import fsspec
import numpy as np


def dataset_prefix(dataset_id: int) -> str:
    """Every artifact of a dataset's jobs lives under this key (deleted with the dataset)."""
    return f"dataset-{dataset_id}"


def config_hash(payload: dict[str, Any]) -> str:
    """Stable short hash of a JSON-serialisable configuration."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ArtifactStore:
    """Arrays and JSON documents under one root URL."""

    def __init__(self, root: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        partial = f"{path}.{uuid.uuid4().hex[:8]}.partial"
        with self.fs.open(partial, "wb") as handle:
            handle.write(data)
        self.fs.mv(partial, path)

    def _read(self, key: str) -> bytes:
        try:
            with self.fs.open(self._path(key), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise KeyError(f"artifact {key!r} is missing under {self.root}") from None

    def put_arrays(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Save named numpy arrays (an .npz, uncompressed: gradients do not compress)."""
        buffer = io.BytesIO()
        np.savez(buffer, **{n: np.asarray(v) for n, v in arrays.items()})  # type: ignore[arg-type]
        self._write(key, buffer.getvalue())

    def get_arrays(self, key: str) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(self._read(key)), allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def put_json(self, key: str, document: Any) -> None:
        self._write(key, json.dumps(document, sort_keys=True).encode())

    def get_json(self, key: str) -> Any:
        return json.loads(self._read(key))

    def size(self, prefix: str) -> int:
        """Bytes stored under a prefix."""
        path = self._path(prefix)
        if not self.fs.exists(path):
            return 0
        return int(self.fs.du(path, total=True))

    def delete(self, prefix: str) -> None:
        path = self._path(prefix)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)
