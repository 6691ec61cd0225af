"""A small client for Scrapyd's JSON API (schedule, status, cancel, listjobs, daemonstatus), on the stdlib.

Errors come back as :class:`ScrapydError` whose message names the node and the reason but never the
credentials (they travel only in the Authorization header).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

USER_AGENT = "ghu-feeds-scheduler"


class ScrapydError(Exception):
    """The node is unreachable, answered with an HTTP error, or refused the request (``status: error``).

    ``maybe_done``: the request may have reached the node (it timed out waiting for the answer).
    """

    def __init__(self, message: str, maybe_done: bool = False) -> None:
        super().__init__(message)
        self.maybe_done = maybe_done


class ScrapydClient:
    def __init__(self, url: str, project: str, username: str = "", password: str = "",  # nosec B107
                 timeout: float = 10.0) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.project = project
        self.timeout = timeout
        self._auth = ("Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()) if username else None

    def __repr__(self) -> str:
        return f"ScrapydClient({self.url!r}, project={self.project!r})"

    def _call(self, endpoint: str, params: list[tuple[str, str]], post: bool = False,
              timeout: float | None = None) -> dict[str, Any]:
        timeout = timeout or self.timeout
        query = urllib.parse.urlencode(params)
        url = self.url + endpoint
        data = None
        if post:
            data = query.encode()
        elif query:
            url += "?" + query
        req = urllib.request.Request(url, data=data, headers={"User-Agent": USER_AGENT})  # noqa: S310 - http(s) only (settings)
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - node URLs from settings  # nosec B310
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise ScrapydError(f"{self.url} answered HTTP {exc.code} to {endpoint}") from None
        except TimeoutError:
            raise ScrapydError(f"{self.url} did not answer {endpoint} within {timeout:g} s", maybe_done=True) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise ScrapydError(f"{self.url} did not answer {endpoint} within {timeout:g} s",
                                   maybe_done=True) from None
            raise ScrapydError(f"{self.url} unreachable: {reason}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise ScrapydError(f"{self.url} answered {endpoint} with something that is not JSON") from None
        if not isinstance(answer, dict) or answer.get("status") != "ok":
            message = answer.get("message") if isinstance(answer, dict) else None
            raise ScrapydError(f"{self.url} refused {endpoint}: {str(message or answer).strip()[:300]}")
        return answer

    def daemonstatus(self) -> dict[str, Any]:
        return self._call("daemonstatus.json", [])

    def schedule(self, spider: str, jobid: str, args: dict[str, str], settings: dict[str, str] | None = None) -> str:
        params = [("project", self.project), ("spider", spider), ("jobid", jobid)]
        params += [("setting", f"{k}={v}") for k, v in (settings or {}).items()]
        params += list(args.items())
        # the node's first schedule.json of a project runs `scrapy list` in a subprocess: allow for that
        return str(self._call("schedule.json", params, post=True, timeout=max(self.timeout, 60))["jobid"])

    def status(self, jobid: str) -> str | None:
        """pending, running, finished, or None when the node does not know the job (restarted since)."""
        return self._call("status.json", [("job", jobid), ("project", self.project)]).get("currstate")

    def cancel(self, jobid: str, signal: str = "INT") -> str | None:
        """INT: Scrapy's clean shutdown; a second cancel (or KILL) forces it."""
        return self._call("cancel.json", [("project", self.project), ("job", jobid), ("signal", signal)],
                          post=True).get("prevstate")

    def listjobs(self) -> dict[str, Any]:
        return self._call("listjobs.json", [("project", self.project)])


def node_report(cfg: Any) -> list[str]:
    """Lines for `status`: each node's reachability and running jobs (daemonstatus.json, listjobs.json)."""
    lines = [f"backend: {cfg.CRAWL_BACKEND}"]
    if cfg.CRAWL_BACKEND != "scrapyd":
        return lines
    lines[0] += f" (project {cfg.SCRAPYD_PROJECT}, {len(cfg.SCRAPYD_URLS)} nodes)"
    for url in cfg.SCRAPYD_URLS:
        client = ScrapydClient(url, cfg.SCRAPYD_PROJECT, cfg.SCRAPYD_USERNAME, cfg.SCRAPYD_PASSWORD, timeout=5)
        try:
            daemon = client.daemonstatus()
        except ScrapydError as exc:
            lines.append(f"node {url}: DOWN ({exc})")
            continue
        try:
            running = [j["id"] for j in client.listjobs().get("running", [])]
        except ScrapydError as exc:
            lines.append(f"node {url}: up but refusing this project ({exc})")
            continue
        jobs = f": {', '.join(running)}" if running else ""
        lines.append(f"node {url}: up ({daemon.get('node_name', '?')}), running {daemon.get('running', 0)}{jobs}, "
                     f"pending {daemon.get('pending', 0)}, finished {daemon.get('finished', 0)}")
    return lines
