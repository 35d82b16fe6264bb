#!/bin/bash
# cuda_sanitize.sh runs the CUDA backend's tests under compute-sanitizer on the GPU machine:
# memcheck (out-of-bounds and misaligned accesses) over the float16 suite, racecheck (shared
# memory hazards) over the ops with shared memory, initcheck (reads of memory nothing wrote)
# over a layer. Build .carry/cuda/cuda.test first (see cuda_check.sh). Logs go to $OUT.
OUT=${OUT:-/tmp}
export GOEMBED_CACHE_DIR=/tmp/goembed-cache
CS=$(command -v compute-sanitizer || echo /usr/local/cuda-13/bin/compute-sanitizer)
T=./.carry/cuda/cuda.test
$T -test.run 'Conformance/float16/Upload/n1$' >/dev/null 2>&1 # fill the NVRTC cache outside the tools
# run TOOL PATTERN [LOG]: the tests matching PATTERN under TOOL; prints the summary and, per
# kernel, how many errors it reported.
run() {
	local tool=$1 pat=$2 log=$OUT/${3:-$1}.log
	timeout 240 "$CS" --tool "$tool" --print-limit 3000 $T -test.v -test.short -test.run "$pat" >"$log" 2>&1
	echo "== $tool rc=$? ($pat): $(grep -c -- '--- PASS' "$log") passed, $(grep -c -- '--- FAIL' "$log") failed"
	grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | sort | uniq -c
	grep -E '^=========     at |Race reported between' "$log" | sed -E 's/\+0x[0-9a-f]+//g' | sort | uniq -c | sort -rn | head -6
}
run memcheck 'Conformance/(float16|float32|bfloat16)/|ErrorTable'
run racecheck 'Conformance/float16/(Attention|AddLayerNorm|Embed|Pool|Layer)/'
run synccheck 'Conformance/float16/(Attention|AddLayerNorm|Pool)/'
# initcheck: the attention cases read only uploaded memory; the layer cases also read what
# cuBLASLt wrote.
run initcheck 'Conformance/bfloat16/(Attention|Pool|Embed|AddLayerNorm)/' initcheck_ops
run initcheck 'Conformance/bfloat16/Layer/' initcheck_layer
