"""fed_check.py: the fed path (texts handed to Go in pieces) on a GPU: same bits as one piece,
Ctrl-C stops it quickly and leaves the Encoder usable.

    PYTHONPATH=.carry/py312 python3 dev/kernels/fed_check.py
"""

import _thread
import gzip
import json
import os
import signal
import threading
import time

import numpy as np

import goembed
from goembed import _encoder


def main():
    with gzip.open(os.environ.get("GOEMBED_CORPUS", ".carry/corpus/debian-descriptions.jsonl.gz"), "rt") as f:
        texts = [json.loads(line)["text"] for line in f]
    m = goembed.Encoder(os.environ.get("GOEMBED_TEST_MINILM", ".carry/minilm16"), device="cuda")
    fed = m.encode(texts)
    saved = _encoder._FEED_MIN
    _encoder._FEED_MIN = 1 << 30
    whole = m.encode(texts)
    _encoder._FEED_MIN = saved
    print(f"fed vs one piece: {len(texts)} texts, identical bits: {np.array_equal(fed, whole)}, "
          f"max abs diff {np.abs(fed - whole).max():.3g}")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    many = texts * 4
    for delay in (0.05, 0.3):
        timer = threading.Timer(delay, _thread.interrupt_main)
        t0 = time.perf_counter()
        timer.start()
        try:
            m.encode(many)
            print(f"Ctrl-C at {delay} s: not interrupted (the call ended first)")
        except KeyboardInterrupt:
            print(f"Ctrl-C at {delay} s: KeyboardInterrupt {time.perf_counter() - t0 - delay:.3f} s later")
        timer.cancel()
        v = m.encode(texts[:3])
        print(f"  afterwards: {v.shape}, equal to before: {np.array_equal(v, fed[:3])}")


if __name__ == "__main__":
    main()
