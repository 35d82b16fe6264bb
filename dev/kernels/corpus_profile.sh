#!/bin/bash
# corpus_profile.sh: where goembed's time goes on the whole corpus (GPU machine, after
# prepare_carry.sh): stage trace (GOEMBED_TRACE=1) of encode and encode_ids, then an nsys kernel
# summary of encode_ids when nsys is installed.
OUT=${OUT:-/tmp}
cd "$(dirname "$0")/../.." || exit 1
tar -xzf .carry/bundle/bins.tar.gz -C .carry || exit 1
export GOEMBED_CACHE_DIR=/tmp/goembed-cache GOEMBED_TEST_MINILM=$PWD/.carry/minilm16 PYTHONPATH=.carry/py312
export GOEMBED_CORPUS=$PWD/.carry/corpus/debian-descriptions.jsonl.gz
GOEMBED_TRACE=1 python3 bench/corpus_compare.py --engines goembed --reps 2 --out corpus_trace 2>&1 | grep -vE '^\s*$' | tail -30
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
if [ -n "$NSYS" ]; then
	"$NSYS" profile -t cuda -o "$OUT/corpus" -f true python3 bench/corpus_compare.py --engines goembed --reps 1 --warmup 1 --out corpus_nsys >/dev/null 2>&1
	"$NSYS" stats -r cuda_gpu_kern_sum,cuda_api_sum --format csv -o "$OUT/corpus" "$OUT/corpus.nsys-rep" >/dev/null 2>&1
	for f in "$OUT"/corpus_cuda_gpu_kern_sum.csv "$OUT"/corpus_cuda_api_sum.csv; do
		echo "== $f"; head -25 "$f" | cut -c1-220
	done
else
	echo "no nsys on this machine"
fi
