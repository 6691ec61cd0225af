"""`python scheduler.py node`: a Scrapyd node that runs this project's spider, in one command.

It starts the real Scrapyd (twistd with scrapyd's own application) in this process. No egg is deployed:
Scrapyd's ``[settings]`` section maps the project name (SCRAPYD_PROJECT) to this installation's settings
module, so every node runs the code installed on it (operators install the same version everywhere).
Scrapyd and Scrapy both read the ``scrapy.cfg`` closest to their working directory (Scrapyd its
``[scrapyd]`` section, Scrapy's ``list``/``crawl`` in the job runners the ``[settings]`` one), so the node
writes one into ``--dir`` and runs there: eggs, logs and the job queue databases all stay under ``--dir``.
Jobs take DATABASE_URL and the crawl settings (CRAWL_DELAY, DOWNLOAD_TIMEOUT, RECHECK_*, LOG_LEVEL) from the
node's environment, the way local crawl processes take them from the service's. Basic auth:
SCRAPYD_USERNAME / SCRAPYD_PASSWORD in the node's environment (Scrapyd reads them itself).
"""

from __future__ import annotations

import argparse
import configparser
import os
import sys
from pathlib import Path

from settings import AppConfig

RUNNER = "crawler.scrapyd_runner"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    node = sub.add_parser("node", help="run a Scrapyd node that crawls for the scheduler (CRAWL_BACKEND=scrapyd)")
    node.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    node.add_argument("--port", type=int, default=6800, help="HTTP port of the Scrapyd API (default 6800)")
    node.add_argument("--dir", default="data/scrapyd", help="eggs, logs and job queues (default data/scrapyd)")
    node.add_argument("--max-proc", type=int, default=0,
                      help="crawl processes at once (default 0: Scrapyd's max_proc_per_cpu, 4 per CPU)")


def write_config(cfg: AppConfig, directory: Path, bind: str, port: int, max_proc: int) -> Path:
    """The scrapy.cfg this node relies on (deploy/scrapyd.conf documents the same keys)."""
    cp = configparser.ConfigParser(interpolation=None)
    cp["scrapyd"] = {
        "bind_address": bind,
        "http_port": str(port),
        "eggs_dir": str(directory / "eggs"),
        "logs_dir": str(directory / "logs"),
        "dbs_dir": str(directory / "dbs"),
        "items_dir": "",  # items go to the database, not to feed exports
        "jobs_dir": "",  # no JOBDIR: a crawl is re-planned from the database, never resumed from disk
        "runner": RUNNER,
        "max_proc": str(max_proc),
        "poll_interval": "1.0",  # a scheduled job starts within a second (default 5)
    }
    cp["settings"] = {cfg.SCRAPYD_PROJECT: "settings"}
    path = directory / "scrapy.cfg"
    with path.open("w", encoding="utf-8") as f:
        f.write("# written by `python scheduler.py node` at every start; edits are overwritten\n")
        cp.write(f)
    return path


def run_node(cfg: AppConfig, args: argparse.Namespace) -> int:
    if cfg.DATABASE_URL.strip().lower().startswith("sqlite"):
        print("error: a Scrapyd node needs DATABASE_URL=postgresql://… (the database the scheduler and every node "
              "share); an SQLite file can't be shared", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536 or args.max_proc < 0:
        print("error: --port must be 1-65535 and --max-proc >= 0", file=sys.stderr)
        return 2
    directory = Path(args.dir).resolve()
    for sub in ("eggs", "logs", "dbs"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    write_config(cfg, directory, args.bind, args.port, args.max_proc)
    # Scrapyd lets these variables override its config files: make them say what the command line says.
    os.environ["SCRAPYD_BIND_ADDRESS"] = args.bind
    os.environ["SCRAPYD_HTTP_PORT"] = str(args.port)
    os.environ.pop("SCRAPYD_UNIX_SOCKET_PATH", None)
    os.environ.pop("SCRAPY_SETTINGS_MODULE", None)  # jobs get it from [settings]
    os.chdir(directory)
    from scrapyd.__main__ import main as scrapyd_main

    # --pidfile=: no pid file, so a node killed with SIGKILL restarts without a stale-pid refusal
    sys.argv = ["scrapyd", "--pidfile="]
    scrapyd_main()  # twistd: runs until SIGTERM/SIGINT, then stops the reactor cleanly
    return 0
