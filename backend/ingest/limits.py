"""Bounds on what reading one upload may cost (`ReadLimits`); the server's settings fill them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what reading one upload may cost, so a small hostile file cannot exhaust memory
    or disk: a 1 MB gzip holding one 1 GiB line, or 2 MB expanding to 1 GiB of blank lines."""

    max_line_bytes: int = 64 * 1024**2
    """Longest line of a JSONL or CSV file (one pair; HH-RLHF's longest is under 40 KB)."""
    max_rows: int = 20_000_000
    """Most lines (blank ones included) or records in one file."""
    max_decompressed_bytes: int = 16 * 1024**3
    """Most bytes a compressed upload may expand to."""
    max_expansion: float = 200.0
    """Most decompressed bytes per compressed byte, checked once past `expansion_grace` bytes
    (text compresses 3–15×; a bomb 1,000× or more)."""
    expansion_grace: int = 64 * 1024**2
    max_json_bytes: int = 2 * 1024**3
    """Largest .json document (read whole, unlike the line formats)."""


DEFAULT_LIMITS = ReadLimits()
