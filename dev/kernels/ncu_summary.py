"""Summarise an Nsight Compute CSV (ncu --csv --metrics gpu__time_duration.sum ...): one line per
kernel name in launch order of first appearance, with launches, mean and total microseconds.
Usage: python3 dev/kernels/ncu_summary.py ncu.csv [title]"""
import csv
import sys

rows = []
with open(sys.argv[1], newline="") as f:
    lines = [l for l in f if l.startswith('"')]  # drop the profiler's own log lines
for r in csv.DictReader(lines):
    if r.get("Metric Name") == "gpu__time_duration.sum":
        v = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "ns")
        rows.append((r["Kernel Name"], v / 1000 if unit in ("ns", "nsecond") else v))
order, stats = [], {}
for name, us in rows:
    short = name.split("(")[0][:60]
    if short not in stats:
        order.append(short)
        stats[short] = []
    stats[short].append(us)
total = sum(us for _, us in rows)
print(f"== {sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]}: {len(rows)} kernels, {total:.1f} us of GPU time")
for k in order:
    v = stats[k]
    print(f"{k:62} {len(v):4}x {sum(v) / len(v):8.2f} us  total {sum(v):9.1f} us ({100 * sum(v) / total:4.1f}%)")
