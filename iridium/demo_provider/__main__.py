"""`python -m iridium.demo_provider [--host H] [--port P] [--token-delay S]`: serve it alone."""

import argparse

import uvicorn

from .app import DemoProvider

parser = argparse.ArgumentParser(prog="python -m iridium.demo_provider", description=__doc__)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8765)
parser.add_argument("--token-delay", type=float, default=0.02)
arguments = parser.parse_args()
uvicorn.run(
    DemoProvider(token_delay=arguments.token_delay),
    host=arguments.host,
    port=arguments.port,
    log_level="warning",
    timeout_graceful_shutdown=1,  # a request held by [[demo:fault=timeout]] must not hold it up
)
