import gzip, json, os, time
from goembed._encoder import _pack, _as_text_list
texts=[json.loads(l)["text"] for l in gzip.open(os.environ["GOEMBED_CORPUS"],"rt")]
for _ in range(3):
    t0=time.perf_counter(); t=_as_text_list(texts); t1=time.perf_counter(); b,o=_pack(t); t2=time.perf_counter()
    print(f"python side: as_list {1e3*(t1-t0):.1f} ms, pack {1e3*(t2-t1):.1f} ms")
