"""Reference timings on the GPU machine for the CUDA backend's benchmarks (same shapes):
a randomly initialised all-MiniLM-L6-v2-shaped BertModel in float16 (eager, SDPA attention),
and torch's scaled_dot_product_attention alone. Medians of CUDA-event timings after warm-up.
Run: python3 dev/kernels/torch_minilm.py"""
import statistics

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel


def median_us(fn, reps=50):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1000)
    return statistics.median(times)


cfg = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                 vocab_size=30522, attn_implementation="sdpa")
model = BertModel(cfg).half().cuda().eval()
for B, L in [(1, 16), (32, 128)]:
    ids = torch.randint(0, 30000, (B, L), device="cuda")
    mask = torch.ones_like(ids)

    def fwd():
        with torch.inference_mode():
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            e = F.normalize(h.mean(1), dim=-1)
            e.float().cpu()

    print(f"torch BertModel fp16 eager B{B} L{L}: {median_us(fwd):.0f} us/forward (incl. copy to host)")

for B, L in [(32, 128), (16, 256)]:
    q, k, v = (torch.randn(B, 12, L, 32, device="cuda", dtype=torch.half) for _ in range(3))
    print(f"torch SDPA fp16 B{B} L{L} NH12 HD32: {median_us(lambda: F.scaled_dot_product_attention(q, k, v)):.1f} us")
