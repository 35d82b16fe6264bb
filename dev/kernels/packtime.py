"""packtime.py: how long Python takes to check and pack the whole corpus into one UTF-8 buffer
(goembed._encoder._as_text_list and _pack), the host work before Go sees any text.

    GOEMBED_CORPUS=.carry/corpus/debian-descriptions.jsonl.gz python3 dev/kernels/packtime.py
"""

import gzip
import json
import os
import time

from goembed._encoder import _as_text_list, _pack

with gzip.open(os.environ["GOEMBED_CORPUS"], "rt") as f:
    texts = [json.loads(line)["text"] for line in f]
for _ in range(3):
    t0 = time.perf_counter()
    checked = _as_text_list(texts)
    t1 = time.perf_counter()
    _pack(checked)
    t2 = time.perf_counter()
    print(f"python side: as_list {1e3 * (t1 - t0):.1f} ms, pack {1e3 * (t2 - t1):.1f} ms")
