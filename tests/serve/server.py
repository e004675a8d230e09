"""Run ``lmrec serve`` in a subprocess on a free port, and speak raw HTTP/1.1 to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """``lmrec serve MODEL --no-auth --port P [flags]``; a context manager that waits for ready."""

    def __init__(self, model_dir: Path, tmp: Path, *flags: str, store: str | None = None):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.store = store or f"sqlite:///{tmp / 'events.db'}"
        self.log = tmp / f"server-{self.port}.log"
        self.cmd = [
            sys.executable,
            "-m",
            "lmrec",
            "serve",
            str(model_dir),
            "--no-auth",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--store",
            self.store,
            *flags,
        ]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Server:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its workers share its process group
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if self.get("/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s: {self.log.read_text()[-3000:]}")

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the server gracefully, then kill whatever of its process group is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def request(self, method: str, path: str, body: object = None, timeout: float = 10):
        """(status, headers, parsed JSON body) over a fresh connection."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, _lower(r.headers), json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, _lower(e.headers), json.loads(e.read() or b"null")

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, body: object):
        return self.request("POST", path, body)


def partial_post(port: int, path: str, body: bytes, sent: int) -> socket.socket:
    """Open a connection and send a POST whose body stops after ``sent`` bytes."""
    s = socket.create_connection((HOST, port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    s.sendall(head + body[:sent])
    return s


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length (status, headers, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:n]


def _lower(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
