#!/bin/bash
# cuda_check.sh runs the prebuilt CUDA backend test binary on the GPU machine and prints a short
# summary last. Build it first, here (the GPU machine has no Go):
#
#	CGO_ENABLED=0 go test -c -o .carry/cuda/cuda.test ./gocore/backend/cuda
#
# then run this with .carry/cuda carried. Full logs go to $OUT (or /tmp) as test.log, bench.log.
# Usage: dev/kernels/cuda_check.sh [test-run-regexp] [bench-regexp]
OUT=${OUT:-/tmp}
RUN=${1:-'Conformance|Registry|Errors|GELU|ErrorTable|Compile|Args|F16|BF16'}
BENCH=${2:-.}
export GOEMBED_CACHE_DIR=/tmp/goembed-cache
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
T=./.carry/cuda/cuda.test
$T -test.v -test.short -test.run "$RUN" -test.timeout 420s >"$OUT/test.log" 2>&1
echo "test rc=$?"
if [ "$BENCH" != none ]; then
	$T -test.run '^$' -test.bench "$BENCH" -test.benchtime 50x -test.timeout 200s >"$OUT/bench.log" 2>&1
	echo "bench rc=$?"
fi
echo "==== describe / GELU / errors"
grep -E 'backend under test|GELU_BIAS|cuda_test.go:[0-9]+: (cuda|auto)' "$OUT/test.log" | cut -c1-330 | sort -u | head -12
sed -n '/normalised error ||gpu/,/Pool max/p' "$OUT/test.log"
echo "==== failures (first 60 lines)"
grep -E -A3 -- '--- FAIL' "$OUT/test.log" | grep -vE '^\s+--- FAIL: Test[A-Za-z]+/[a-z0-9]+ \(' | cut -c1-300 | head -60
echo "==== counts"
for d in float16 bfloat16 float32 tfloat32; do
	echo "$d: pass $(grep -cE -- "--- PASS: TestConformance/$d/" "$OUT/test.log") fail $(grep -cE -- "--- FAIL: TestConformance/$d/" "$OUT/test.log")"
done
grep -E -- '^(--- |ok|FAIL|PASS)' "$OUT/test.log" | tail -15
[ -f "$OUT/bench.log" ] && grep -E '^Benchmark|^ok|FAIL' "$OUT/bench.log" | sed 's/  */ /g' | tail -12
