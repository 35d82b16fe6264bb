"""ptxas_regs.py: registers, spills and shared memory of each kernel of a shaders/*.cu, as ptxas
reports them through NVRTC (no GPU needed: the nvidia-cuda-nvrtc wheel is enough).

    python3 dev/kernels/ptxas_regs.py [--lib DIR] [--arch sm_90] [--define STORAGE_F16] [--flags "-DX=1"] attention.cu [FILTER]
"""

import argparse
import ctypes
import glob
import os
import re
import sys

SHADERS = os.path.join(os.path.dirname(__file__), "..", "..", "shaders")


def find_nvrtc(lib_dir):
    dirs = [lib_dir] if lib_dir else []
    dirs += glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "nvidia", "cu1*", "lib"))
    dirs += ["/usr/local/cuda/lib64"] + sorted(glob.glob("/usr/local/cuda-*/lib64"))
    for d in dirs:
        for name in ("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"):
            if d and os.path.exists(os.path.join(d, name)):
                for b in glob.glob(os.path.join(d, "libnvrtc-builtins.so.*")):  # found by soname only
                    ctypes.CDLL(b)
                return ctypes.CDLL(os.path.join(d, name))
    sys.exit(f"no libnvrtc in {dirs}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("filter", nargs="?", default="")
    ap.add_argument("--lib")
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--define", default="STORAGE_F16")
    ap.add_argument("--flags", default="", help="more NVRTC flags, as GOEMBED_NVRTC_FLAGS")
    args = ap.parse_args()
    nv = find_nvrtc(args.lib)
    headers = sorted(glob.glob(os.path.join(SHADERS, "*.h")))
    texts = [open(h, "rb").read() for h in headers]
    names = [os.path.basename(h).encode() for h in headers]
    src = open(os.path.join(SHADERS, args.file), "rb").read()
    prog = ctypes.c_void_p()
    arr = lambda xs: (ctypes.c_char_p * len(xs))(*xs)  # noqa: E731
    nv.nvrtcCreateProgram(ctypes.byref(prog), src, args.file.encode(), len(texts), arr(texts), arr(names))
    opts = [f"--gpu-architecture={args.arch}", "--std=c++17", "--extra-device-vectorization", "--ptxas-options=-v", f"-D{args.define}"] + args.flags.split()
    rc = nv.nvrtcCompileProgram(prog, len(opts), arr([o.encode() for o in opts]))
    size = ctypes.c_size_t()
    nv.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nv.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace")
    if rc != 0:
        sys.exit(text)
    kernel = None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            kernel = m.group(1)
        elif kernel and args.filter in kernel and ("registers" in line or "spill" in line):
            print(f"{kernel[:60]:60s} {line.split('info    :')[-1].strip()}")


if __name__ == "__main__":
    main()
