"""Build script for the C extension fastrr._core.

Package metadata lives in pyproject.toml; this file only declares the
extension (setuptools reads both).

Environment switches:
  FASTRR_DEBUG=1         -O0 -g3, assertions on (NDEBUG undefined)
  FASTRR_SANITIZE=asan   AddressSanitizer + UndefinedBehaviorSanitizer
                         (run with LD_PRELOAD=$(gcc -print-file-name=libasan.so))
"""

import os
import shutil
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

_debug = os.environ.get("FASTRR_DEBUG") == "1"
_sanitize = os.environ.get("FASTRR_SANITIZE", "")

_cflags = ["-O2", "-Wall", "-Wextra", "-std=c11"]
_ldflags: list[str] = []
_undef: list[str] = []
if _debug or _sanitize:
    _cflags = ["-O0" if _debug else "-O1", "-g3", "-Wall", "-Wextra", "-std=c11", "-fno-omit-frame-pointer"]
    _undef = ["NDEBUG"]
if _sanitize:
    _san = "-fsanitize=address,undefined"
    _cflags += [_san, "-fno-sanitize-recover=undefined"]
    _ldflags += [_san]

core = Extension(
    "fastrr._core",
    sources=sorted(glob("csrc/*.c")),
    depends=sorted(glob("csrc/*.h")),
    include_dirs=["csrc"],
    undef_macros=_undef,
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
)


# --- shm ring: fastrr/libfastrr_ring.so -------------------------------------
# csrc/ring.c alone as a plain shared library (no Python), loaded by the PHP
# workers through FFI (FASTRR_RING_LIB). Never sanitized: PHP runs without
# the sanitizer runtime.
class BuildExtWithRing(build_ext):
    def run(self) -> None:
        super().run()
        out_dir = "fastrr" if self.inplace else os.path.join(self.build_lib, "fastrr")
        target = os.path.join(out_dir, "libfastrr_ring.so")
        sources = ["csrc/ring.c", "csrc/ring.h"]
        if not self.force and os.path.exists(target) and all(
                os.path.getmtime(src) <= os.path.getmtime(target) for src in sources):
            return
        objs = self.compiler.compile(["csrc/ring.c"], output_dir=os.path.join(self.build_temp, "ringlib"),
                                     extra_postargs=["-O2", "-Wall", "-Wextra", "-std=c11", "-fvisibility=default"])
        self.compiler.link_shared_object(objs, target)


# --- the PHP library and the benchmark apps in the wheel ---------------------
# fastrr/_tree/ gets a copy of php/ (without its tests), bench/apps, bench/hot (the hot ceilings), bench/floor.c
# and wrk-scripts/, so an installed fastrr has them (fastrr/paths.py finds them):
# `fastrr php-path` for PHP's require, `fastrr bench` for its apps.
TREE = [("php", ("tests",)), ("bench/apps", ()), ("bench/hot", ()), ("bench/floor.c", ()), ("wrk-scripts", ())]


class BuildPyWithTree(build_py):
    def run(self) -> None:
        super().run()
        target = os.path.join(self.build_lib, "fastrr", "_tree")
        for rel, skip in TREE:
            src, dest = rel, os.path.join(target, rel)
            if os.path.isdir(src):
                shutil.copytree(src, dest, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", *skip))
            elif os.path.isfile(src):
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copy2(src, dest)


setup(ext_modules=[core], cmdclass={"build_ext": BuildExtWithRing, "build_py": BuildPyWithTree})
