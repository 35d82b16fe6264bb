#!/bin/bash
# gpu_session.sh: one call on the GPU machine for issue 4 (CUDA parity and speed). Build here
# first with dev/kernels/prepare_carry.sh (the GPU machine has no Go), then carry .carry/bundle,
# .carry/minilm16 and .carry/corpus.
#
# Usage: dev/kernels/gpu_session.sh [stages...]   stages: go parity bench corpus gobench ncu (default all)
# Logs and bench/results/gpu_compare.json go to $OUT; a summary is printed last.
OUT=${OUT:-/tmp}
STAGES=${*:-go parity bench corpus gobench ncu}
cd "$(dirname "$0")/../.." || exit 1
tar -xzf .carry/bundle/bins.tar.gz -C .carry || exit 1
export GOEMBED_CACHE_DIR=/tmp/goembed-cache PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export GOEMBED_TEST_MINILM=$PWD/.carry/minilm16 GOEMBED_CORPUS=$PWD/.carry/corpus/debian-descriptions.jsonl.gz
export GOEMBED_REQUIRE_CUDA=1 GOEMBED_PARITY_LOG=$OUT/parity.jsonl
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
python3 -c 'import sys, torch, transformers, sentence_transformers as s; print(sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "sentence-transformers", s.__version__)'
T=./.carry/cuda/cuda.test
for s in $STAGES; do
	start=$(date +%s)
	case $s in
	go) $T -test.v -test.short -test.run 'Conformance|Registry|Errors|Args|ErrorTable' -test.timeout 400s >"$OUT/gotest.log" 2>&1 ;;
	parity) PYTHONPATH=.carry/py312 python3 -m pytest -p no:cacheprovider -q -s -rs tests/test_cuda_parity.py >"$OUT/parity.log" 2>&1 ;;
	bench) PYTHONPATH=.carry/py312 python3 bench/gpu_compare.py $BENCH_ARGS >"$OUT/bench.log" 2>&1
		cp bench/results/gpu_compare.json "$OUT/" 2>/dev/null ;;
	corpus) PYTHONPATH=.carry/py312 python3 bench/corpus_compare.py $CORPUS_ARGS >"$OUT/corpus.log" 2>&1
		cp bench/results/corpus_compare.json "$OUT/" 2>/dev/null ;;
	gobench) $T -test.run '^$' -test.bench 'Encoder' -test.benchtime 100x -test.timeout 300s >"$OUT/gobench.log" 2>&1 ;;
	ncu) NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
		for sh in B1_L16 B128_L128; do
			"$NCU" --clock-control none --metrics gpu__time_duration.sum --csv $T -test.run '^$' \
				-test.bench "^BenchmarkEncoder\$/MiniLM_${sh}/eager\$" -test.benchtime 1x >"$OUT/ncu_$sh.csv" 2>"$OUT/ncu_$sh.err"
			python3 dev/kernels/ncu_summary.py "$OUT/ncu_$sh.csv" "MiniLM $sh eager forward (ncu, clocks not locked)" >"$OUT/ncu_$sh.txt" 2>&1
		done ;;
	esac
	echo "stage $s: rc=$? in $(( $(date +%s) - start ))s"
done
echo "==== go tests"
[ -f "$OUT/gotest.log" ] && {
	grep -E -A4 -- '--- FAIL' "$OUT/gotest.log" | grep -vE '^\s+--- FAIL: Test[A-Za-z]+/[a-z0-9]+ \(' | cut -c1-300 | head -40
	for d in float16 bfloat16 float32 tfloat32; do
		echo "$d: pass $(grep -cE -- "--- PASS: TestConformance/$d/" "$OUT/gotest.log") fail $(grep -cE -- "--- FAIL: TestConformance/$d/" "$OUT/gotest.log") (graphs: pass $(grep -cE -- "--- PASS: TestConformance/$d/Graphs/" "$OUT/gotest.log"))"
	done
	grep -E -- '^(--- |ok|FAIL|PASS|panic)' "$OUT/gotest.log" | tail -8
}
echo "==== parity"
[ -f "$OUT/parity.log" ] && { grep -E '^PARITY|passed|failed|skipped|Error|error' "$OUT/parity.log" | cut -c1-400 | tail -30; }
echo "==== go benchmarks"
[ -f "$OUT/gobench.log" ] && grep -E '^Benchmark|^ok|FAIL|panic' "$OUT/gobench.log" | sed -E 's/  +/ /g' | cut -c1-160
echo "==== ncu"
cat "$OUT"/ncu_*.txt 2>/dev/null | cut -c1-150; tail -3 "$OUT"/ncu_*.err 2>/dev/null
echo "==== corpus"
[ -f "$OUT/corpus.log" ] && { grep -E 'Error|error|assert' "$OUT/corpus.log" | head -10; grep -E '^==|^  ' "$OUT/corpus.log"; }
echo "==== bench"
[ -f "$OUT/bench.log" ] && { grep -E 'FAILED|Error|error' "$OUT/bench.log" | head -10; sed -n '/== summary/,$p' "$OUT/bench.log"; }
