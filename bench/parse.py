#!/usr/bin/env python3
"""Benchmark page parsing (crawler/parsing) on the offline replica of zzb.ghu.edu.cn.

The default replica is built into a temporary directory (tests/fixtures/replica/build_replica.py), then

  (a) article  ``parse_article(decode_html(raw), url)`` on each of its local article pages, and the two
               halves alone (``decode_html``; ``parse_article`` of the decoded text)
  (b) list     ``parse_list_page(decode_html(raw), url)`` on each of the column's list pages, and
               ``parse_list_page`` alone
  (c) floor    ``lxml.html.fromstring(text)`` of the same decoded pages: libxml2 building the tree and
               nothing else, which no parser built on lxml can beat

Each page is timed ``--repeat`` times (calls interleaved across pages so that a noisy neighbour hits
every page alike); the figure per page is the median of its calls, and the figure per function is the
median over pages. Ratios to the floor make runs on different machines (or a busy one) comparable.
Targets: article ≤ 0.3 ms and list page ≤ 1.5 ms per page (median, decode included).

``--package-path DIR`` imports ``crawler.parsing`` from ``DIR/crawler/parsing`` instead of this checkout,
to time an older copy with the same script; ``--against DIR`` times both, the other in a child process
run just before, and prints the speed-up per function.

    .venv/bin/python bench/parse.py [--repeat 200] [--package-path DIR | --against DIR] [--strict]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPLICA_DIR = ROOT / "tests" / "fixtures" / "replica"
TARGETS_MS = {"article": 0.3, "list": 1.5}  # for the "decode_html + ..." rows


@dataclass
class Page:
    url: str  # the real URL the page claims (what the spider passes as page_url)
    raw: bytes
    text: str  # decoded once, for the rows without decode_html and for the floor


@dataclass
class Figure:
    label: str
    per_page_ms: list[float]  # median per page

    @property
    def median(self) -> float:
        return statistics.median(self.per_page_ms)


def build_replica(out: Path) -> dict[str, Any]:
    """The default replica in ``out``; returns the builder's manifest."""
    expected = out.with_suffix(".json")
    subprocess.run([sys.executable, "build_replica.py", "--out", str(out), "--expected", str(expected)],
                   cwd=REPLICA_DIR, check=True, capture_output=True)
    return json.loads(expected.read_text(encoding="utf-8"))


def load_parsing(package_path: str | None) -> Any:
    """``crawler.parsing`` from this checkout or from ``package_path`` (an older copy to compare)."""
    sys.path.insert(0, str(Path(package_path).resolve()) if package_path else str(ROOT))
    return importlib.import_module("crawler.parsing")


def time_pages(pages: list[Page], call: Callable[[Page], object], repeat: int) -> list[float]:
    """Median milliseconds per page over ``repeat`` rounds; each round calls every page once."""
    samples: list[list[float]] = [[] for _ in pages]
    for page in pages:  # warm caches (compiled selectors, regexes) outside the measurement
        call(page)
    clock = time.perf_counter
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection would land on one random call; collect between rounds instead
    try:
        for _ in range(repeat):
            for index, page in enumerate(pages):
                start = clock()
                call(page)
                samples[index].append((clock() - start) * 1000)
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return [statistics.median(s) for s in samples]


def measure(parsing: Any, repeat: int) -> tuple[dict[str, Figure], dict[str, Any]]:
    """Every figure of this run, keyed by row, and facts about the pages."""
    import lxml.html  # after load_parsing: the same lxml either way

    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        out = Path(tmp) / "replica"
        manifest = build_replica(out)
        host = manifest["site"]["real_host"]

        def page(path: str) -> Page:
            raw = (out / path.lstrip("/")).read_bytes()
            return Page(url=host + path, raw=raw, text=parsing.decode_html(raw))

        articles = [page(a["url"]) for a in manifest["articles"] if not a["external"]]
        lists = [page(path) for path in manifest["column"]["pages"]]

    decode, parse_article, parse_list_page = parsing.decode_html, parsing.parse_article, parsing.parse_list_page
    rows: list[tuple[str, str, list[Page], Callable[[Page], object]]] = [
        ("article", "decode_html + parse_article", articles, lambda p: parse_article(decode(p.raw), p.url)),
        ("article", "  decode_html", articles, lambda p: decode(p.raw)),
        ("article", "  parse_article", articles, lambda p: parse_article(p.text, p.url)),
        ("article", "floor: lxml.html.fromstring", articles, lambda p: lxml.html.fromstring(p.text)),
        ("list", "decode_html + parse_list_page", lists, lambda p: parse_list_page(decode(p.raw), p.url)),
        ("list", "  parse_list_page", lists, lambda p: parse_list_page(p.text, p.url)),
        ("list", "floor: lxml.html.fromstring", lists, lambda p: lxml.html.fromstring(p.text)),
    ]
    figures = {f"{kind:8} {label}": Figure(f"{kind:8} {label}", time_pages(pages, call, repeat))
               for kind, label, pages, call in rows}
    facts = {"package": str(Path(parsing.__file__).parent), "articles": len(articles), "lists": len(lists),
             "article_kib": sum(len(p.raw) for p in articles) / len(articles) / 1024,
             "list_kib": sum(len(p.raw) for p in lists) / len(lists) / 1024}
    return figures, facts


def floor_of(key: str, figures: dict[str, Figure]) -> Figure:
    return figures[key.split()[0].ljust(8) + " floor: lxml.html.fromstring"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200, help="calls per page (default 200)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--package-path", help="import crawler.parsing from DIR/crawler/parsing instead")
    which.add_argument("--against", metavar="DIR", help="also time DIR/crawler/parsing and print speed-ups")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the --against child
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    other: dict[str, float] = {}
    if args.against:
        child = subprocess.run([sys.executable, __file__, "--repeat", str(args.repeat), "--package-path", args.against,
                                "--json"], check=True, capture_output=True, text=True)
        other = json.loads(child.stdout)
    parsing = load_parsing(args.package_path)
    figures, facts = measure(parsing, args.repeat)
    if args.json:
        print(json.dumps({key: fig.median for key, fig in figures.items()}))
        return 0

    print(f"crawler.parsing from {facts['package']}" + (f"; compared with {args.against}" if other else ""))
    print(f"{facts['articles']} article pages ({facts['article_kib']:.1f} KiB avg), {facts['lists']} list pages "
          f"({facts['list_kib']:.1f} KiB avg), {args.repeat} calls per page; median per page, then over pages\n")
    head = f"{'':40} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'x floor':>8}"
    print(head + (f" {'other ms':>9} {'speed-up':>9}" if other else ""))
    for key, fig in figures.items():
        line = (f"{key:40} {fig.median:10.3f} {min(fig.per_page_ms):8.3f} {max(fig.per_page_ms):8.3f} "
                f"{fig.median / floor_of(key, figures).median:8.2f}")
        if other and "floor" not in key:
            line += f" {other[key]:9.3f} {other[key] / fig.median:8.2f}x"
        elif other:
            line += f" {other[key]:9.3f}"
        print(line)
    missed = [kind for kind, target in TARGETS_MS.items()
              if next(fig for key, fig in figures.items() if key.startswith(kind) and "decode_html +" in key).median
              > target]
    print("\ntargets (median, decode included): " + ", ".join(
        f"{kind} ≤ {target} ms {'MISSED' if kind in missed else 'met'}" for kind, target in TARGETS_MS.items()))
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
