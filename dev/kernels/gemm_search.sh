#!/bin/bash
# gemm_search.sh: on the GPU machine, the GEMM search (gemmsearch.go) against the heuristic's
# candidates alone. Build here first:
#   CGO_ENABLED=0 go test -c -ldflags=-s -o .carry/cuda/cuda.test ./gocore/backend/cuda
#   tar -czf .carry/cudaz/bins.tar.gz -C .carry cuda/cuda.test
#   make carry; tar -czf .carry/pyb/py312.tar.gz -C .carry py312
# then carry .carry/cudaz, .carry/pyb, .carry/minilm16, .carry/corpus.
# Usage: dev/kernels/gemm_search.sh [stages...]  stages: gemms probe correct parity profile mpnet corpus compare
OUT=${OUT:-/tmp}
STAGES=${*:-gemms probe correct parity}
cd "$(dirname "$0")/../.." || exit 1
tar -xzf .carry/cudaz/bins.tar.gz -C .carry || exit 1
[ -f .carry/pyb/py312.tar.gz ] && tar -xzf .carry/pyb/py312.tar.gz -C .carry
export GOEMBED_CACHE_DIR=/tmp/gc PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 GOEMBED_REQUIRE_CUDA=1
export GOEMBED_TEST_MINILM=$PWD/.carry/minilm16 GOEMBED_CORPUS=$PWD/.carry/corpus/debian-descriptions.jsonl.gz
export PYTHONPATH=$PWD/.carry/py312
N=./.carry/cuda/cuda.test
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
for s in $STAGES; do
	start=$(date +%s)
	case $s in
	gemms) # per product: heuristic's best vs search, and the first call's cost
		timeout 200 $N -test.run '^$' -test.bench 'GemmSearch' -test.benchtime 20x -test.timeout 190s >"$OUT/gemms.log" 2>&1
		grep -E '^Benchmark' "$OUT/gemms.log" | awk '{$3=""; print}' ;;
	probe) # MiniLM 1000x128 encode_ids, median of 300 calls: search off/on x graphs above 4,096 tokens off/on
		for r in 1 2; do
			for v in "0 0" "1 0" "0 1" "1 1"; do
				set -- $v
				echo "search=$1 large_graphs=$2: $(GOEMBED_CUDA_GEMM_SEARCH=$1 GOEMBED_LARGE_GRAPHS=$2 timeout 100 \
					python3 dev/kernels/host_probe.py --reps 300 2>&1 | grep -m1 median)"
			done
		done ;;
	correct)
		timeout 200 $N -test.v -test.short -test.run 'Conformance|AttentionMMA|CompileShaders|GemmSearch' -test.timeout 190s >"$OUT/correct.log" 2>&1
		echo "correct: rc=$? pass $(grep -c -- '--- PASS' "$OUT/correct.log") fail $(grep -c -- '--- FAIL' "$OUT/correct.log")"
		grep -E -- '--- FAIL|max relative difference' "$OUT/correct.log" | head ;;
	profile) # CUPTI trace of 1000x128 and the corpus (dev/kernels/kineto_profile.py)
		timeout 250 python3 dev/kernels/kineto_profile.py 2>&1 | grep -v Warn | head -60 ;;
	parity) # the CUDA cases of the Python suite (MiniLM; MPNet too when GOEMBED_TEST_MPNET is set)
		timeout 300 python3 -m pytest -q tests/test_cuda_parity.py tests/test_cuda_oom.py tests/test_dtypes.py \
			tests/test_modules.py ${GOEMBED_TEST_MPNET:+tests/test_cuda_mpnet.py} 2>&1 | tail -4
		timeout 200 python3 -m pytest -q tests/test_reliability.py -k cuda 2>&1 | tail -3 ;;
	mpnet) # tests/test_cuda_mpnet.py alone (MPNet assembled in /tmp/mpnet16 by prepare_mpnet_carry.sh)
		GOEMBED_TEST_MPNET=/tmp/mpnet16 timeout 300 python3 -m pytest -q -rs tests/test_cuda_mpnet.py 2>&1 | tail -6 ;;
	corpus) # bench/corpus_compare.py (results in $OUT)
		timeout 300 python3 bench/corpus_compare.py 2>&1 | tail -15; cp bench/results/corpus_compare*.json "$OUT/" 2>/dev/null ;;
	compare) # bench/gpu_compare.py (results in $OUT)
		timeout 560 python3 bench/gpu_compare.py --minilm .carry/minilm16 2>&1 | tail -40; cp bench/results/gpu_compare*.json "$OUT/" 2>/dev/null ;;
	esac
	echo "[$s: $(($(date +%s) - start)) s]"
done
