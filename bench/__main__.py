"""`python -m bench`: every benchmark, one after another, each in a process of its own."""

import subprocess
import sys

BENCHMARKS = ["overhead", "streams", "dashboards", "pages"]

if __name__ == "__main__":
    failed = 0
    for name in BENCHMARKS:
        print(f"== bench.{name}", flush=True)
        failed |= subprocess.call([sys.executable, "-m", f"bench.{name}"])
    sys.exit(failed)
