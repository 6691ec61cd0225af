"""Rendezvous (highest-random-weight) hashing: which node crawls a host, and which next if it is down.

Every host ranks all nodes by a hash of (node, host); the first is its home node. Adding or removing a node
moves only the hosts whose first choice changes (about 1/n of them), and the order of the others is the
fallback order, so a host lands on the same node every run while the cluster is unchanged. blake2b is
stable across processes and Python versions (unlike ``hash()``, which is salted per process).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def weight(node: str, key: str) -> int:
    digest = hashlib.blake2b(f"{node}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank(nodes: Sequence[str], key: str) -> list[str]:
    """``nodes`` ordered by preference for ``key`` (ties, practically impossible, broken by name)."""
    return sorted(nodes, key=lambda node: (-weight(node, key), node))


def home(nodes: Sequence[str], key: str) -> str:
    if not nodes:
        raise ValueError("no nodes to choose from")
    return rank(nodes, key)[0]
