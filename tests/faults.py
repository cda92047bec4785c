"""Real faults for tests (issue 10): a private redis-server to stop and start, free ports,
the test database's URL for a worker process, and waiting on a condition. Shared by the job,
broker and database fault tests so that each tells only its own story."""

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from django.db import connection
from redis import Redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something true (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def database_url() -> str:
    """The test database, for a process started by the test (a worker, gunicorn)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


class PrivateRedis:
    """A redis-server of the test's own on a free port, started and stopped at will, never
    the shared one other tests use. `persistent`: its data survives a restart (append-only
    file), as the compose stack's does."""

    def __init__(self, folder: Path, *, persistent: bool = False):
        self.port = free_port()
        self.folder = folder
        self.persistent = persistent
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--save", "",
             "--appendonly", "yes" if self.persistent else "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.answers, timeout=10, what="redis-server to answer")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def queued(self, queue: str) -> int:
        with Redis.from_url(self.url) as client:
            return client.llen(queue)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def at_once(*calls):
    """Run each call in its own thread (its own database connection), released together by a
    barrier: two users pressing Save at the same instant. Returns their results in order."""
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i):
        try:
            start.wait()
            results[i] = calls[i]()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results
