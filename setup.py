"""Build hook for `pip install .` (metadata is in pyproject.toml).

build_py first runs `make native` (scripts/build_tokenizers.sh, the tools module, then
scripts/build_native.sh) for the interpreter that runs this build, then copies the generated
package pybind/goembed/_native/ (one .so plus gopy's .py wrappers) into the wheel next to the
pure-Python files of pybind/goembed/. The wheel is tagged for this CPython and platform.
"""

import os
import shutil
import subprocess
import sys

from setuptools import Distribution, find_packages, setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join("pybind", "goembed", "_native")
os.makedirs(os.path.join(ROOT, "build", "setuptools"), exist_ok=True)


class BinaryDistribution(Distribution):
    """The wheel carries a compiled extension: platform- and ABI-specific tags."""

    def has_ext_modules(self):
        return True


class BuildNative(build_py):
    def run(self):
        env = dict(os.environ, PYTHON=sys.executable)
        cmd = ["make", "--no-print-directory", "-C", ROOT, "native", "PYTHON=" + sys.executable]
        self.announce("running " + " ".join(cmd), level=2)
        subprocess.run(cmd, check=True, env=env)
        super().run()
        src = os.path.join(ROOT, NATIVE)
        dst = os.path.join(self.build_lib, "goembed", "_native")
        if os.path.exists(dst):
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".stamp-*", "__pycache__", "*.pyc"))


setup(
    distclass=BinaryDistribution,
    cmdclass={"build_py": BuildNative},
    package_dir={"": "pybind"},
    # the generated goembed._native is added by BuildNative (it need not exist yet)
    packages=find_packages(where="pybind", include=["goembed", "goembed.*"], exclude=["goembed._native", "goembed._native.*"]),
    include_package_data=False,
    zip_safe=False,
    options={
        # keep setuptools' own build tree apart from build/ of the Makefile
        "build": {"build_base": os.path.join("build", "setuptools")},
        "egg_info": {"egg_base": os.path.join("build", "setuptools")},
    },
)
