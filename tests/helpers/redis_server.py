"""A redis-server of a test's own, on a free port, that the test may stop, kill, pause and
start again (on the same port), so that the shared Redis is untouched."""

import shutil
import signal
import socket
import subprocess
import time

import pytest
import redis

from tests.conftest import require


class PrivateRedis:
    def __init__(self, binary):
        self.binary = binary
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def pause(self):
        """Redis hangs: connections are accepted by the kernel and never answered."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def keys(self, pattern):
        return redis.Redis.from_url(self.url).keys(pattern)


@pytest.fixture
def private_redis():
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server (to stop and restart a private one)")
    server = PrivateRedis(binary)
    server.start()
    yield server
    if server.process.poll() is None:
        server.resume()
        server.stop()
