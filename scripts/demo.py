"""`make demo`: start the embedded server on a free port with a fresh data folder, create a
key, run both example scripts against it, stop the server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tempodb(*args: str) -> list[str]:
    return [sys.executable, "-m", "tempodb.cli", *args]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tempodb-demo-") as data:
        created = subprocess.run(
            tempodb("keys", "create", "--data", data, "--name", "demo", "--json"),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        credentials = json.loads(created)
        server = subprocess.Popen(
            tempodb("serve", "--data", data, "--port", "0"), stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            print(line.strip())
            found = re.search(r"://([^:/]+):(\d+)/", line)
            if not found:
                print("the server did not start", file=sys.stderr)
                return 1
            host, port = found.group(1), found.group(2)
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            env = {
                **os.environ,
                "TEMPODB_HOST": host,
                "TEMPODB_PORT": port,
                "TEMPODB_SECURE": "false",
                "TEMPODB_KEY": credentials["key"],
                "TEMPODB_SECRET": credentials["secret"],
            }
            for script in ("tempodb-write-demo.py", "tempodb-read-demo.py"):
                print(f"\n$ python examples/{script}")
                subprocess.run(
                    [sys.executable, str(ROOT / "examples" / script)], env=env, check=True
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    print("\ndemo finished: server stopped, data folder removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
