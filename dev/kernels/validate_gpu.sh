#!/bin/bash
# validate_gpu.sh: every GPU test of the repository in one call on the GPU machine (after
# prepare_carry.sh and, for MPNet, prepare_mpnet_carry.sh's pieces staged into /tmp/mpnet16).
# Carry .carry/bundle, .carry/minilm16, .carry/corpus. Logs go to $OUT; a summary is printed.
OUT=${OUT:-/tmp}
cd "$(dirname "$0")/../.." || exit 1
tar -xzf .carry/bundle/bins.tar.gz -C .carry || exit 1
export GOEMBED_CACHE_DIR=/tmp/goembed-cache PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 GOEMBED_REQUIRE_CUDA=1
export GOEMBED_TEST_MINILM=$PWD/.carry/minilm16 GOEMBED_CORPUS=$PWD/.carry/corpus/debian-descriptions.jsonl.gz
export GOEMBED_TEST_MPNET=/tmp/mpnet16 PYTHONPATH=$PWD/.carry/py312 GOEMBED_PARITY_LOG=$OUT/parity.jsonl
T=$PWD/.carry/cuda/cuda.test
stage() { # name timeout command...
	local name=$1 limit=$2; shift 2
	local start=$(date +%s)
	timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
	echo "stage $name: rc=$? in $(( $(date +%s) - start ))s"
}
stage cuda_go 200 $T -test.v -test.short -test.run 'Conformance|Args|Errors|Registry|AttentionMMA|OutOfMemory' -test.timeout 190s
stage cuda_go_simt 60 env GOEMBED_CUDA_ATTENTION=simt $T -test.run 'Conformance/(float16|bfloat16)/Attention' -test.timeout 50s
stage gocore_go 120 bash -c "cd gocore && ../.carry/cuda/gocore.test -test.v -test.run 'CUDA|OutOfMemory|Concurrent|DebugPanic|Hostile' -test.timeout 110s"
stage pytest_cuda 420 python3 -m pytest -p no:cacheprovider -q -rs \
	tests/test_cuda_parity.py tests/test_cuda_mpnet.py tests/test_cuda_oom.py tests/test_dtypes.py \
	tests/test_modules.py tests/test_reliability_cases.py -k 'cuda or gpu or CUDA or r23 or r25 or r26 or r40'
echo "==== go (cuda)"
for d in float16 bfloat16 float32 tfloat32; do
	echo "$d: pass $(grep -cE -- "--- PASS: TestConformance/$d/" "$OUT/cuda_go.log") fail $(grep -cE -- "--- FAIL: TestConformance/$d/" "$OUT/cuda_go.log")"
done
grep -E -- '^(--- FAIL|FAIL|ok|PASS|panic)' "$OUT/cuda_go.log" | head -20
grep -E -- '^(--- FAIL|FAIL|ok|PASS|panic)|--- FAIL' "$OUT/cuda_go_simt.log" | head -10
echo "==== gocore (cuda)"
grep -E -- '^(--- |FAIL|ok|PASS|panic)' "$OUT/gocore_go.log" | head -30
echo "==== pytest (cuda)"
grep -E 'passed|failed|skipped|Error|FAILED|^PARITY' "$OUT/pytest_cuda.log" | cut -c1-300 | tail -40
cat "$OUT/parity.jsonl" 2>/dev/null | cut -c1-300
