"""Build of the `rotorquant` Python package: one extension module,
rotorquant._ext, made of the C library's sources (src/*.c, src/simd/*.c —
whatever the tree holds, so new files are picked up) and the binding
python/rotorquant/_ext.c.

The library objects are compiled with the Makefile's own flags, read from
the Makefile itself (the `override CFLAGS += ...` line with its WARN
variable, the CFLAGS default, and the per-file ISA flags of
src/simd/*_avx2.c / *_avx512.c), so `pip install .` and `make` build the
same code the same way. Set ROTORQUANT_SIMD=scalar (the Makefile's
SIMD=scalar) to build without the SIMD kernels; non-x86 machines get that
automatically. CC is honoured.
"""
import hashlib
import os
import platform
import re
import shlex
import sys
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def _makefile_vars():
    """Variable assignments of the Makefile, continuation lines joined."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        text = f.read().replace("\\\n", " ")
    return text.splitlines()


def makefile_flags():
    """(common flags, {"avx2": [...], "avx512": [...]}) as `make` uses them."""
    lines = _makefile_vars()
    var = {}
    common, isa = None, {}
    for line in lines:
        m = re.match(r"^(\w+)\s*(\?=|:=|=)\s*(.*)$", line)
        if m and m.group(1) not in var:
            var[m.group(1)] = m.group(3).strip()
        m = re.match(r"^override CFLAGS \+= (-std=.*)$", line)
        if m and common is None:
            common = m.group(1)
        m = re.match(r"^\$\(BUILD\)/obj/src/simd/%_(avx2|avx512)\.o:\s*ISAFLAGS := (.*)$", line)
        if m:
            isa[m.group(1)] = shlex.split(m.group(2))
    if common is None or set(isa) != {"avx2", "avx512"} or "WARN" not in var or "CFLAGS" not in var:
        sys.exit("setup.py: cannot read the compiler flags from the Makefile (override CFLAGS, WARN, ISAFLAGS)")
    common = common.replace("$(WARN)", var["WARN"])
    return shlex.split(var["CFLAGS"]) + shlex.split(common), isa


def simd_enabled():
    if os.environ.get("ROTORQUANT_SIMD", "auto") == "scalar":
        return False
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def library_sources():
    """The C library as the Makefile builds it: src/*.c and src/simd/*.c
    (src/cuda/*.cu is never globbed; src/cuda_stub.c stands in for it)."""
    src = sorted(glob("src/*.c", root_dir=ROOT))
    simd = sorted(glob("src/simd/*.c", root_dir=ROOT))
    if not simd_enabled():  # as the Makefile's SIMD=scalar: the dispatcher only
        simd = [s for s in simd if s.endswith("dispatch.c")]
    return src + simd


class BuildExt(build_ext):
    """Compiles the library sources with the Makefile's flags (per-file ISA
    flags included) and links them with the binding into one module."""

    def build_extension(self, ext):
        flags, isa = makefile_flags()
        flags = [f for f in flags if f != "-g"]  # no debug info in wheels
        if not simd_enabled():
            flags.append("-DRQ_NO_SIMD")
        cc = self.compiler.compiler_so[0]
        objects = []
        # objects kept per compiler and flag set, so a changed CC or
        # ROTORQUANT_SIMD never links objects built another way
        key = hashlib.sha256(repr((cc, flags, isa)).encode()).hexdigest()[:12]
        tmp = os.path.join(self.build_temp, "rqlib-" + key)
        for src in library_sources():
            obj = os.path.join(tmp, src[:-2] + ".o")
            extra = isa["avx512"] if src.endswith("_avx512.c") else isa["avx2"] if src.endswith("_avx2.c") else []
            os.makedirs(os.path.dirname(obj), exist_ok=True)
            dep = os.path.join(ROOT, src)
            if self.force or not os.path.exists(obj) or os.path.getmtime(obj) < max(
                os.path.getmtime(p) for p in [dep] + glob(os.path.join(ROOT, "src", "**", "*.h"), recursive=True)
                + glob(os.path.join(ROOT, "include", "*.h"))
            ):
                self.spawn([cc] + flags + extra + ["-c", dep, "-o", obj])
            objects.append(obj)
        ext.extra_objects = objects + list(ext.extra_objects or [])
        # setuptools relinks only when the binding's own source changed: also
        # relink when a library object is newer than the module or the flag
        # set differs from the last link's
        out = self.get_ext_fullpath(ext.name)
        stamp = os.path.join(self.build_temp, "rqlib-linked")
        last = open(stamp).read() if os.path.exists(stamp) else ""
        if os.path.exists(out) and (last != key or any(os.path.getmtime(o) > os.path.getmtime(out) for o in objects)):
            os.remove(out)
        super().build_extension(ext)
        with open(stamp, "w") as f:
            f.write(key)


ext = Extension(
    "rotorquant._ext",
    sources=["python/rotorquant/_ext.c"],
    include_dirs=["include"],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-Wno-missing-field-initializers", "-fvisibility=hidden"],
    libraries=["m", "pthread"],
)

def header_version():
    """MAJOR.MINOR.PATCH from include/rotorquant.h, the library's version."""
    with open(os.path.join(ROOT, "include", "rotorquant.h")) as f:
        text = f.read()
    part = [re.search(r"#define RQ_VERSION_%s (\d+)" % k, text).group(1) for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(part)


os.makedirs(os.path.join(ROOT, "build", "python"), exist_ok=True)
# setuptools' build tree under the Makefile's build/ (already ignored), apart
# from make's own objects
setup(version=header_version(), ext_modules=[ext], cmdclass={"build_ext": BuildExt},
      options={"build": {"build_base": "build/python"}, "egg_info": {"egg_base": "build/python"}})
