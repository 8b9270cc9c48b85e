"""Shared pieces of the test_indexer_* modules (no tests here).

`synthetic_documents(settings, n)` builds, in a scratch database, what the indexer reads
(standin.synthetic: `public.listings`, `public.listing_images` and the documents view,
generated in SQL; ids half above 2^32).

`FaultProxy` is an HTTP proxy to the real node (or, with `tls`, an https one in front of
it) that injects faults from rules, per request: a status (with Retry-After), a delay, a
reset connection, a non-JSON 200, a bulk answer with an item missing or with items failed
(429), or a hook run before forwarding (e.g. to set an index block). `bulk_plan` makes the
rules of a sequence of `_bulk` answers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import pg_env, scratch_database
from opensearchpy import OpenSearch

from listings_common.pg import PgSettings
from standin import synthetic

ROOT = Path(__file__).resolve().parents[1]


def synthetic_documents(settings: PgSettings, n: int) -> None:
    """standin.synthetic's tables and documents view, n listings, in `settings`' database."""
    with settings.connect(autocommit=True) as conn:
        synthetic.synthetic_documents(conn, n)


@pytest.fixture(scope="module")
def docs_db() -> Iterator[PgSettings]:
    """A scratch database with 3,000 synthetic listings (module scope: tests restore what they change)."""
    with scratch_database() as settings:
        synthetic_documents(settings, 3000)
        yield settings


@pytest.fixture
def idx_env(docs_db: PgSettings, opensearch_url: str) -> dict[str, str]:
    """The environment of an indexer subprocess pointed at docs_db and the real node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "LISTINGS_"))}
    return {**env, **pg_env(docs_db), "OPENSEARCH_URL": opensearch_url, "LISTINGS_SCHEMA": "public", "PGTZ": "UTC"}


@pytest.fixture
def served(idx_env: dict[str, str], alias: str, client: OpenSearch) -> str:
    """A first good reindex: the index the alias serves before the faulty run."""
    run = indexer(idx_env, "reindex", "--alias", alias, "--quiet", "--sample", "20")
    assert run.code == 0, run.err
    [index] = alias_targets(client, alias)
    return index


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float = 0.0

    @property
    def last_line(self) -> str:
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""


def assert_one_line_failure(run: Run, code: int, *needles: str) -> None:
    """The run failed with `code`, its last line "listings-indexer <command>: error: ..." holding every needle."""
    assert run.code == code, run.out + run.err
    assert "Traceback" not in run.err, run.err
    last = run.last_line
    assert re.match(r"listings-indexer \w+: error: ", last), run.err
    for needle in needles:
        assert needle in last, last


def indexer(env: dict[str, str], *args: str, timeout: float = 120) -> Run:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "indexer", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


class Background:
    """An indexer subprocess whose stderr is read line by line (to act at a given moment)."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "indexer", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._out: list[str] = []
        self._err_thread = threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True)
        self._out_thread = threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True)
        self._err_thread.start()
        self._out_thread.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None:
                time.sleep(0.2)
                for line in list(self.lines):
                    if found := re.search(pattern, line):
                        return found
                raise AssertionError(f"process ended ({self.proc.returncode}) before {pattern!r}: {self.err}")
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s: {self.err}")

    def finish(self, timeout: float = 120) -> Run:
        started = time.monotonic()
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._err_thread.join(5)
        self._out_thread.join(5)
        return Run(code, "".join(self._out), "".join(self.lines), time.monotonic() - started)

    @property
    def err(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


def alias_targets(client: OpenSearch, alias: str) -> list[str]:
    found = client.indices.get_alias(name=alias, ignore=[404])
    return sorted(name for name, body in found.items() if isinstance(body, dict) and "aliases" in body)


def managed_indices(client: OpenSearch, alias: str) -> list[str]:
    return sorted(n for n in client.indices.get(index=f"{alias}_*", expand_wildcards="all", ignore=[404]) if "_" in n)


def index_meta(client: OpenSearch, index: str) -> dict:
    return client.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {}).get("indexer", {})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_alias() -> str:
    return f"test_{uuid.uuid4().hex[:10]}_listings"


# --- the fault proxy --------------------------------------------------------------------------


@dataclass
class Rule:
    """Applies to requests whose method and path match, `times` times (None: always).

    action: an int status, "delay:SECONDS", "reset", "html", "drop_item", "items:N" (forward,
    then report the bulk answer's first N items as 429), "pass", or a callable run before
    forwarding. `retry_after` adds that header to a status answer.
    """

    method: str
    path: str
    action: object
    times: int | None = 1
    retry_after: str | None = None
    hits: int = 0
    after: int = 0  # let this many matching requests through first
    then: int | None = None  # forward, then answer with this status instead of the real answer

    def matches(self, method: str, path: str) -> bool:
        return bool(re.fullmatch(self.method, method) and re.search(self.path, path))


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, float]] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    _current: int = 0
    tls: ssl.SSLContext | None = None  # serve https with this context

    def __post_init__(self) -> None:
        self.upstream = self.upstream.rstrip("/")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.log.append((self.command, self.path, time.monotonic()))
                action: object = "pass"
                rule = proxy._rule(self.command, self.path)
                if rule is not None:
                    action = rule.action
                if isinstance(action, int):
                    error = {"error": {"type": "injected", "reason": "fault proxy"}, "status": action}
                    headers = {"retry-after": rule.retry_after} if rule and rule.retry_after else {}
                    return self._reply(action, json.dumps(error).encode(), headers=headers)
                if action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    self.close_connection = True
                    return None
                if action == "html":
                    return self._reply(200, b"<html><body>Gateway says hello</body></html>", "text/html")
                if isinstance(action, str) and action.startswith("delay:"):
                    time.sleep(float(action.split(":")[1]))
                if callable(action):
                    action(self.command, self.path)
                status, payload, ctype = proxy._forward(self.command, self.path, body, self.headers)
                if rule is not None and rule.then is not None:
                    error = {"error": {"type": "injected", "reason": "answer lost"}, "status": rule.then}
                    status, payload, ctype = rule.then, json.dumps(error).encode(), "application/json"
                if action == "drop_item":
                    data = json.loads(payload)
                    data["items"] = data["items"][:-1]
                    payload = json.dumps(data).encode()
                if isinstance(action, str) and action.startswith("items:"):
                    data = json.loads(payload)
                    for item in data["items"][: int(action.split(":")[1])]:
                        result = next(iter(item.values()))
                        result["status"] = 429
                        result["error"] = {"type": "es_rejected_execution_exception", "reason": "injected"}
                    data["errors"] = True
                    payload = json.dumps(data).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._reply(status, payload, ctype)
                return None

            def _reply(self, status: int, payload: bytes, ctype: str = "application/json", headers=None) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if self.tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    _mutex = threading.Lock()

    def _rule(self, method: str, path: str) -> Rule | None:
        with self._mutex:
            for rule in self.rules:
                if not rule.matches(method, path):
                    continue
                if rule.after > 0:
                    rule.after -= 1
                    return None
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                rule.hits += 1
                return rule
        return None

    def _forward(self, method: str, path: str, body: bytes | None, headers) -> tuple[int, bytes, str]:
        """To the upstream; with `fallbacks`, like a load balancer: the next node when one is down."""
        upstreams = [self.upstream, *self.fallbacks]
        failure = "no upstream"
        for attempt in range(len(upstreams)):
            upstream = upstreams[(self._current + attempt) % len(upstreams)]
            request = urllib.request.Request(upstream + path, data=body, method=method)
            if headers.get("content-type"):
                request.add_header("content-type", headers["content-type"])
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    self._current = (self._current + attempt) % len(upstreams)
                    return response.status, response.read(), response.headers.get("content-type", "application/json")
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read(), exc.headers.get("content-type", "application/json")
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException, TimeoutError) as exc:
                failure = f"{upstream}: {exc}"
        error = {"error": {"type": "proxy_error", "reason": failure}, "status": 502}
        return 502, json.dumps(error).encode(), "application/json"

    def requests(self, method: str, path: str) -> list[tuple[str, str, float]]:
        return [r for r in self.log if re.fullmatch(method, r[0]) and re.search(path, r[1])]

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def bulk_plan(*steps: int | str, repeat_last: bool = False) -> list[Rule]:
    """One rule per `_bulk` request, in order: an int status (answered without forwarding),
    "items:N" or "pass"; later requests pass, or with `repeat_last` all get the last step."""
    rules = [Rule("POST|PUT", r"/_bulk", step) for step in steps]
    if repeat_last and rules:
        rules[-1].times = None
    return rules


def slow_bulks(seconds: float) -> Rule:
    """Every bulk request waits `seconds` first: a load that lasts long enough to act during it."""
    return Rule("POST", r"/_bulk", f"delay:{seconds}", times=None)


Hook = Callable[[str, str], None]
