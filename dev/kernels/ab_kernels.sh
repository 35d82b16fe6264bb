#!/bin/bash
# ab_kernels.sh: one call on the GPU machine comparing kernel builds (session 6: asynchronous
# attention staging, register bounds, warp-per-token embed). Build here first:
#   CGO_ENABLED=0 go test -c -ldflags=-s -o .carry/cuda/cuda.test ./gocore/backend/cuda   (this tree)
#   the same from the commit to compare against, as .carry/cuda/old.test
#   tar -czf .carry/cudaz/bins.tar.gz -C .carry cuda; make carry; tar -czf .carry/pyb/py312.tar.gz -C .carry py312
# then carry .carry/cudaz, .carry/pyb, .carry/minilm16, .carry/corpus. Compile-time variants of
# the new build run through GOEMBED_NVRTC_FLAGS (VARIANTS, ';'-separated, e.g.
# "-DATTM_MIN_BLOCKS=1;-DATTM_K32=32 -DATTM_MIN_BLOCKS=4").
# Usage: dev/kernels/ab_kernels.sh [stages...]  stages: correct attention encoder host profile bench parity
OUT=${OUT:-/tmp}
STAGES=${*:-correct attention encoder profile bench parity}
VARIANTS=${VARIANTS:--DATTM_MIN_BLOCKS=1}
IFS=';' read -ra VARS <<<"$VARIANTS"
cd "$(dirname "$0")/../.." || exit 1
tar -xzf .carry/pyb/py312.tar.gz -C .carry && tar -xzf .carry/cudaz/bins.tar.gz -C .carry || exit 1
export GOEMBED_CACHE_DIR=/tmp/gc PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 GOEMBED_REQUIRE_CUDA=1
export GOEMBED_TEST_MINILM=$PWD/.carry/minilm16 GOEMBED_CORPUS=$PWD/.carry/corpus/debian-descriptions.jsonl.gz
export PYTHONPATH=$PWD/.carry/py312
N=./.carry/cuda/cuda.test O=./.carry/cuda/old.test
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
bench() { # log binary pattern benchtime [env...]
	local log=$1 bin=$2 pat=$3 n=$4; shift 4
	env "$@" "$bin" -test.run '^$' -test.bench "$pat" -test.benchtime "$n" -test.timeout 300s >"$OUT/$log.log" 2>&1
	grep -E '^Benchmark' "$OUT/$log.log" | sed "s/^/$log: /" | awk '{$3=""; print}' | cut -c1-160
}
for s in $STAGES; do
	start=$(date +%s)
	case $s in
	correct)
		timeout 240 $N -test.v -test.short -test.run 'Conformance/(float16|bfloat16)/(Embed|Attention|Graphs|Layer)|AttentionMMA|CompileShaders' \
			-test.timeout 230s >"$OUT/correct.log" 2>&1
		echo "correct: rc=$? pass $(grep -c -- '--- PASS' "$OUT/correct.log") fail $(grep -c -- '--- FAIL' "$OUT/correct.log")"
		grep -E -- '--- FAIL|warps [0-9]+: \|\|' "$OUT/correct.log" | cut -c1-150 | head -24 ;;
	attention)
		for r in 1 2; do
			bench att_old_$r $O 'AttentionKernels/.*/mma' 40x
			bench att_new_$r $N 'AttentionKernels/.*/mma' 40x
			for v in "${VARS[@]}"; do bench "att_${v//[^A-Za-z0-9]/_}_$r" $N 'AttentionKernels/.*/mma' 40x GOEMBED_NVRTC_FLAGS="$v"; done
		done ;;
	encoder)
		for r in 1 2; do
			bench enc_old_$r $O 'Encoder$/MiniLM_B1000' 60x
			bench enc_new_$r $N 'Encoder$/MiniLM_B1000' 60x
			for v in "${VARS[@]}"; do bench "enc_${v//[^A-Za-z0-9]/_}_$r" $N 'Encoder$/MiniLM_B1000' 60x GOEMBED_NVRTC_FLAGS="$v"; done
		done
		bench ops_old $O 'EncoderOps/MiniLM_B1000_L128' 30x
		bench ops_new $N 'EncoderOps/MiniLM_B1000_L128' 30x ;;
	host) # the host's share of a 1000x128 call, per token budget (batches of 64 K, 128 K, 32 K tokens)
		for b in 65536 131072 32768; do GOEMBED_GPU_TOKEN_BUDGET=$b timeout 60 python3 dev/kernels/host_probe.py 2>&1 | grep median; done
		for c in 8 32; do GOEMBED_CUDA_GEMM_CANDIDATES=$c timeout 60 python3 dev/kernels/host_probe.py 2>&1 | grep median | sed "s/^/candidates $c: /"; done
		GOEMBED_CUDA_GEMM_CANDIDATES=32 GOEMBED_CUDA_GEMM_TUNE=verbose timeout 60 python3 dev/kernels/host_probe.py --reps 5 2>&1 | grep 'gemm' | sort -t: -k3 -n | head -60 >"$OUT/tune32.log"
		GOEMBED_TRACE=1 timeout 60 python3 dev/kernels/host_probe.py --reps 20 2>&1 | tail -12
		GODEBUG=gctrace=1 timeout 60 python3 dev/kernels/host_probe.py --reps 50 2>&1 | grep -c '^gc ' | sed 's/^/GC cycles in 60 calls + load: /' ;;
	profile) timeout 200 python3 dev/kernels/kineto_profile.py >"$OUT/profile.log" 2>&1; echo "profile rc=$?"; cat "$OUT/profile.log" ;;
	bench) timeout 300 python3 bench/gpu_compare.py --minilm .carry/minilm16 --models minilm --corpus-n 0 >"$OUT/bench.log" 2>&1
		echo "bench rc=$?"; cp bench/results/gpu_compare.json "$OUT/" 2>/dev/null; sed -n '/== summary/,$p' "$OUT/bench.log" ;;
	parity) timeout 240 python3 -m pytest -p no:cacheprovider -q -rs tests/test_cuda_parity.py >"$OUT/parity.log" 2>&1
		echo "parity rc=$?"; tail -3 "$OUT/parity.log" ;;
	esac
	echo "stage $s: $(( $(date +%s) - start ))s"
done
