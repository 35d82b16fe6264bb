#!/bin/bash
# prepare_mpnet_carry.sh: all-mpnet-base-v2 for tests/test_cuda_mpnet.py on the GPU machine, which
# reaches no registry and takes at most 64 MiB a call. The float16 weights (both engines read
# these same values: sentence-transformers upcasts them, goembed too) are 219 MB, so they travel
# in pieces of 48 MiB, one carried folder a call, appended on the warm machine:
#   .carry/mpnet16_1 .. .carry/mpnet16_N   piece k of model.safetensors; the first also holds the
#                                          folder's small files (config, tokenizer, modules)
# Then one call per piece, in order, back to back (the machine stays warm only briefly):
#   carry [.carry/mpnet16_k]; command: bash dev/kernels/prepare_mpnet_carry.sh --append .carry/mpnet16_k
# which appends into /tmp/mpnet16 and, after the last piece, checks it against the sha256 written
# here; the test run then sets GOEMBED_TEST_MPNET=/tmp/mpnet16.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-} == --append ]]; then
	src=$2 dst=/tmp/mpnet16
	mkdir -p "$dst"
	[[ -f "$src/piece.1" ]] && rm -f "$dst/model.safetensors"
	find "$src" -maxdepth 1 -type f ! -name 'piece.*' ! -name 'sha256' -exec cp {} "$dst/" \;
	[[ -d "$src/1_Pooling" ]] && cp -r "$src/1_Pooling" "$dst/" && mkdir -p "$dst/2_Normalize"
	cat "$src"/piece.* >>"$dst/model.safetensors"
	[[ -f "$src/sha256" ]] && cp "$src/sha256" "$dst/.sha256"
	if [[ -f "$dst/.sha256" ]] && [[ $(stat -c %s "$dst/model.safetensors") == $(cut -d' ' -f2 "$dst/.sha256") ]]; then
		[[ $(sha256sum "$dst/model.safetensors" | cut -d' ' -f1) == $(cut -d' ' -f1 "$dst/.sha256") ]] &&
			echo "mpnet16: $dst complete" || { echo "mpnet16: checksum mismatch" >&2; exit 1; }
	else
		echo "mpnet16: $(stat -c %s "$dst/model.safetensors") bytes so far"
	fi
	exit 0
fi
scripts/fetch_mpnet.sh
src=build/models/all-mpnet-base-v2 tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python - "$src/model.safetensors" "$tmp/model.safetensors" <<'PY'
import sys, torch
from safetensors.torch import load_file, save_file
sd = load_file(sys.argv[1])
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, sys.argv[2],
          metadata={"format": "pt"})
PY
rm -rf .carry/mpnet16_*
split -b 48M -d -a 2 "$tmp/model.safetensors" "$tmp/piece."
n=0
for p in "$tmp"/piece.*; do
	n=$((n + 1))
	mkdir -p ".carry/mpnet16_$n"
	mv "$p" ".carry/mpnet16_$n/piece.$n"
done
first=.carry/mpnet16_1
find "$src" -maxdepth 1 -type f ! -name model.safetensors ! -name .complete -exec cp {} "$first/" \;
cp -r "$src/1_Pooling" "$src/2_Normalize" "$first/"
echo "$(sha256sum "$tmp/model.safetensors" | cut -d' ' -f1) $(stat -c %s "$tmp/model.safetensors")" >".carry/mpnet16_$n/sha256"
du -sh .carry/mpnet16_*
