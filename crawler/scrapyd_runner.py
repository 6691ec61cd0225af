"""Scrapyd's job runner with one addition: a crawl dies with its node.

The node's scrapyd.conf names this module as ``runner``; Scrapyd starts every job as
``python -m crawler.scrapyd_runner crawl column -a …`` and this hands over to Scrapyd's own runner. When the
node process is killed (SIGKILL, OOM) its crawls would otherwise keep running unsupervised, and the
scheduler, which then sees the job vanish and records the runs as failed, could not trust that no orphan is
still writing. Linux's PR_SET_PDEATHSIG sends the crawl SIGTERM (Scrapy's clean shutdown) instead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the node died between our fork and the prctl call
        os.kill(os.getpid(), sig)


def main() -> None:
    die_with_parent()
    from scrapyd.runner import main as scrapyd_main

    scrapyd_main()


if __name__ == "__main__":
    main()
