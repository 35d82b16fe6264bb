#!/bin/bash
# mlx_cuda_h100.sh: bench/mlx_compare.py --device cuda on the GPU machine (issue 6): goembed,
# MLX (mlx + mlx-cuda-13, carried as wheels) and PyTorch side by side, fp16, one process.
#
# Here, once (network to PyPI; writes the git-ignored .whl/):
#	dev/mlx_cuda_h100.sh download
#	make carry        # .carry/py312/goembed, the cp312 build of the working tree (needs encode_ids)
#	# .carry/minilm16 (all-MiniLM-L6-v2, float16 weights) and .carry/corpus (first 12,000 corpus
#	# lines) as dev/kernels/gpu_session.sh describes them
#
# There: what travels in one call is at most 64 MiB (working tree + carried paths), and the pieces
# add up to ~150 MiB, so three calls, each `dev/mlx_cuda_h100.sh` with nothing else, back to back
# (the machine stays warm only ~30 s after a call; what was staged in /tmp is lost with it):
#	1  carry .whl/SHA256SUMS .whl/mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl.part-00
#	2  carry .whl/SHA256SUMS .whl/mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl.part-01
#	         .whl/mlx-0.32.4-cp312-cp312-manylinux_2_35_x86_64.whl .carry/py312 .carry/corpus
#	3  carry .carry/minilm16
# Each call copies what it brought into /tmp/mlx-stage; the call that completes the set checks the
# wheels' sha256, installs them into /tmp/site, checks that this machine has the CUDA wheels
# mlx-cuda-13 requires, runs an MLX CUDA smoke test, then the benchmark. Logs and
# bench/results/mlx_compare_cuda.json come back in $OUT.
set -u
cd "$(dirname "$0")/.." || exit 1
CUDA_WHL=mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl
PART=56M

if [ "${1:-}" = download ]; then
	PY=.venv/bin/python; [ -x $PY ] || PY=python3
	ex=$(git rev-parse --git-path info/exclude) && mkdir -p "$(dirname "$ex")" || exit 1
	grep -qx '/.whl/' "$ex" 2>/dev/null || echo /.whl/ >>"$ex"
	mkdir -p .whl && rm -f .whl/*
	$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_35_x86_64 -d .whl mlx==0.32.4 mlx-cuda-13==0.32.4 || exit 1
	(cd .whl && sha256sum *.whl >SHA256SUMS && split -b $PART -d -a 2 $CUDA_WHL $CUDA_WHL.part- &&
		sha256sum $CUDA_WHL.part-* >>SHA256SUMS && rm $CUDA_WHL) || exit 1
	git check-ignore -q .whl/SHA256SUMS || { echo ".whl/ is not ignored by git" >&2; exit 1; }
	ls -l .whl; cat .whl/SHA256SUMS
	exit 0
fi

OUT=${OUT:-/tmp}
S=/tmp/mlx-stage
mkdir -p $S/whl
for f in .whl/*; do [ -f "$f" ] && cp "$f" $S/whl/; done
for d in py312 minilm16 corpus; do [ -d .carry/$d ] && rm -rf $S/$d && cp -a .carry/$d $S/$d; done
echo "staged in $S:"; (cd $S && find . -type f -not -path './py312/goembed/__pycache__/*' | sort | xargs ls -l | awk '{print "  " $5, $9}')

missing=""
[ -f $S/whl/SHA256SUMS ] || missing="$missing .whl/SHA256SUMS"
[ -f $S/whl/SHA256SUMS ] && for f in $(awk '{print $2}' $S/whl/SHA256SUMS); do
	case $f in *.part-*) [ -f $S/whl/$f ] || [ -f $S/whl/${f%.part-*} ] || missing="$missing .whl/$f" ;; esac
done
[ -d $S/py312/goembed ] || missing="$missing .carry/py312"
[ -f $S/minilm16/model.safetensors ] || missing="$missing .carry/minilm16"
ls $S/corpus/*.jsonl.gz >/dev/null 2>&1 || missing="$missing .carry/corpus"
if [ -n "$missing" ]; then
	echo "STAGED; not run yet. Still to carry (next call, within ~30 s):$missing"
	exit 0
fi

set -o pipefail
cd $S/whl || exit 1
[ -f $CUDA_WHL ] || cat $CUDA_WHL.part-* >$CUDA_WHL
grep -v '\.part-' SHA256SUMS | sha256sum -c || { echo "wheel checksums differ: carry again" >&2; exit 1; }
cd - >/dev/null || exit 1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import sys, torch, transformers, sentence_transformers as s, tokenizers, numpy; print(sys.executable, sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "sentence-transformers", s.__version__, "tokenizers", tokenizers.__version__, "numpy", numpy.__version__)'
# mlx-cuda-13's own requirements (torch cu130's CUDA wheels should cover them): present?
python3 - "$S/whl/$CUDA_WHL" <<'EOF' || exit 1
import re, sys, zipfile, importlib.metadata as md
try:
    from packaging.specifiers import SpecifierSet
except ImportError:  # then presence only
    SpecifierSet = None
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
bad = []
for line in z.read(meta).decode().splitlines():
    if line.startswith("Requires-Dist:") and "extra ==" not in line:
        name, spec = re.match(r"Requires-Dist:\s*([A-Za-z0-9_.-]+)\s*([^;]*)", line).groups()
        try:
            v = md.version(name)
        except md.PackageNotFoundError:
            v = None
        ok = v is not None and (SpecifierSet is None or SpecifierSet(spec.strip()).contains(v, prereleases=True))
        print(f"  {name}{spec.strip()}: {v or 'MISSING'}{'' if ok else '  <- not satisfied'}")
        bad += [] if ok else [name + spec.strip()]
if bad:
    sys.exit(f"mlx-cuda-13 needs {bad}: carry those wheels too")
EOF

rm -rf /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
	$S/whl/mlx-0.32.4-cp312-*.whl $S/whl/$CUDA_WHL || exit 1
# libmlx.so finds the CUDA libraries through RPATH $ORIGIN/../../nvidia/...: point that at the
# nvidia wheels torch uses. Its kernels are compiled at run time (NVRTC) against the CUDA runtime
# headers, found under $CUDA_HOME/include (its CCCL headers come in the wheel).
SITE=$(python3 -c 'import os, sys; print(next(p for p in sys.path if os.path.isfile(os.path.join(p, "nvidia/cu13/lib/libcublasLt.so.13"))))') || exit 1
ln -sfn "$SITE/nvidia" /tmp/site/nvidia
for h in "$SITE/nvidia/cu13" /usr/local/cuda; do
	[ -f "$h/include/cuda_runtime.h" ] && export CUDA_HOME=$h && break
done
echo "nvidia wheels: $SITE/nvidia; CUDA_HOME=${CUDA_HOME:-unset}"
export PYTHONPATH=$S/py312:/tmp/site PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GOEMBED_CACHE_DIR=/tmp/goembed-cache
export GOEMBED_CORPUS=$(ls $S/corpus/*.jsonl.gz | head -1)
python3 - <<'EOF' 2>&1 | tee $OUT/mlx_smoke.log || exit 1
import mlx.core as mx
print("mlx", mx.__version__, mx.default_device(), "cuda available:", mx.cuda.is_available(), mx.device_info())
q = mx.random.normal((2, 12, 50, 32)).astype(mx.float16)
mask = mx.where(mx.arange(50) < 40, 0.0, -mx.inf).astype(mx.float16)[None, None, None, :]
o = mx.fast.scaled_dot_product_attention(q, q, q, scale=32 ** -0.5, mask=mask)
ref = mx.softmax(((q @ q.swapaxes(-1, -2)).astype(mx.float32) * 32 ** -0.5) + mask, axis=-1) @ q.astype(mx.float32)
print("sdpa fp16 on gpu, max abs err vs composed fp32:", mx.abs(o.astype(mx.float32) - ref).max().item())
EOF
timeout 540 python3 bench/mlx_compare.py --device cuda --minilm $S/minilm16 ${BENCH_ARGS:-} 2>&1 | tee $OUT/mlx_compare_cuda.log
rc=$?
cp bench/results/mlx_compare_cuda.json $OUT/ 2>/dev/null
echo "bench rc=$rc"
exit $rc
