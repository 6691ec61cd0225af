"""Which sources are crawled together: by host, so that one host is only ever crawled by one process."""

from __future__ import annotations

from urllib.parse import urlsplit

from crawler.sources import Source


def host_of(source: Source) -> str:
    """The host whose politeness budget the source spends (that of its list page, else its seed page)."""
    for url in (source.list_url, source.seed_url):
        host = urlsplit(url).hostname if url else None
        if host:
            return host.rstrip(".").lower()
    return ""


def by_host(sources: list[Source]) -> dict[str, list[Source]]:
    groups: dict[str, list[Source]] = {}
    for src in sources:
        groups.setdefault(host_of(src), []).append(src)
    return groups


def split_by_host(sources: list[Source], n: int) -> list[list[Source]]:
    """At most ``n`` shards of about equal size; all sources of a host land in the same shard.

    Largest host groups first, each into the lightest shard so far (greedy balancing); shards keep the
    sources' given order inside.
    """
    if not sources:
        return []
    groups = sorted(by_host(sources).values(), key=len, reverse=True)
    shards: list[list[Source]] = [[] for _ in range(max(1, min(n, len(groups))))]
    for group in groups:
        min(shards, key=len).extend(group)
    order = {src.name: i for i, src in enumerate(sources)}
    return [sorted(shard, key=lambda s: order[s.name]) for shard in shards]
