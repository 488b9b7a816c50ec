#!/usr/bin/env python3
"""Builds tiny stand-ins for the CUDA libraries a PyPI torch wheel links against.

PyPI's Linux x86_64 torch wheel is a CUDA build: its shared libraries (even libtorch_cpu.so)
list libcudart, libcublas, libcudnn, libnccl, ... as NEEDED, and the wheel depends on several
GB of nvidia-* packages that provide them. The CPU benchmark never calls into CUDA, so instead
of installing those packages this script reads which libraries and symbols torch's binaries
import from them (with nm/readelf) and compiles one small shared library per missing SONAME
that defines every imported symbol as a function returning an error code (100, which is "no
device" for the CUDA runtime and driver APIs). Torch then imports, `torch.cuda.is_available()`
is False, and every CPU operator runs the real code.

Usage: cuda_stubs.py TORCH_PACKAGE_DIR   (writes the stubs into TORCH_PACKAGE_DIR/lib)
Needs binutils (nm, readelf) and a C compiler (cc).
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

MARKER = "TRIBUTARY_CUDA_STUBS"
ERROR_CODE = 100
STRING_RETURNING = re.compile(r"(Error|Status|Result)(String|Name)$|^ncclGetLastError$")
# Library chosen for an unversioned symbol nobody defines, by symbol prefix.
PREFIXES = [
    ("cusparseLt", "libcusparseLt"),
    ("cusparse", "libcusparse"),
    ("cublasLt", "libcublasLt"),
    ("cublas", "libcublas"),
    ("cudnn", "libcudnn"),
    ("cufft", "libcufft"),
    ("cusolver", "libcusolver"),
    ("cuFile", "libcufile"),
    ("cupti", "libcupti"),
    ("nccl", "libnccl"),
    ("nvshmem", "libnvshmem"),
    ("nvrtc", "libnvrtc"),
    ("cuda", "libcudart"),
    ("cu", "libcuda."),
]


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run("readelf", "-d", "-W", path))


def version_files(path):
    """Version name -> library file, from the binary's version-needs section."""
    out = {}
    current = None
    for line in run("readelf", "-V", "-W", path).splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"Name: (\S+)", line)
        if m and current:
            out[m.group(1)] = current
    return out


def undefined(path):
    """(name, version or None) of the strong undefined dynamic symbols."""
    syms = []
    for line in run("nm", "-D", "--undefined-only", path).splitlines():
        parts = line.split()
        if len(parts) != 2 or parts[0] != "U":
            continue  # weak references may stay unresolved
        name, _, version = parts[1].partition("@")
        syms.append((name, version.lstrip("@") or None))
    return syms


def defined(path):
    names = set()
    for line in run("nm", "-D", "--defined-only", path).splitlines():
        parts = line.split()
        if len(parts) == 3:
            names.add(parts[2].split("@")[0])
    return names


def system_libraries(paths):
    """Resolved paths of the non-torch libraries the binaries load (via ldd)."""
    found = set()
    for p in paths:
        try:
            out = run("ldd", str(p))
        except subprocess.CalledProcessError:
            continue
        for m in re.finditer(r"=>\s+(/\S+)", out):
            found.add(m.group(1))
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch_dir = Path(sys.argv[1]).resolve()
    lib_dir = torch_dir / "lib"
    site = torch_dir.parent
    binaries = sorted(p for p in torch_dir.rglob("*.so*") if p.is_file() and is_elf(p))
    # Directories torch's RPATH searches, besides torch/lib itself.
    rpath_dirs = [lib_dir] + [p for p in (site / "nvidia").glob("*/lib")]
    system = run("ldconfig", "-p")

    def resolvable(soname):
        if any((d / soname).exists() for d in rpath_dirs):
            return True
        return re.search(r"^\s+" + re.escape(soname) + r" ", system, re.M) is not None

    missing = set()
    for b in binaries:
        missing.update(n for n in needed(b) if not resolvable(n))
    # Stubs written by an earlier run are in lib_dir, so they count as resolvable: rebuild them.
    stub_list = lib_dir / MARKER
    if stub_list.exists():
        missing.update(stub_list.read_text().split())
    if not missing:
        print("cuda_stubs: no missing libraries, nothing to do")
        return

    universe = set()
    for p in set(binaries) | system_libraries(binaries):
        if Path(p).name in missing and Path(p).parent == lib_dir:
            continue  # an old stub
        universe |= defined(p)

    # symbols[lib] = {name: version or None}
    symbols = {lib: {} for lib in missing}
    versions = {lib: set() for lib in missing}
    for b in binaries:
        vfiles = version_files(b)
        b_missing = [n for n in needed(b) if n in missing]
        for name, version in undefined(b):
            if version is not None:
                lib = vfiles.get(version)
                if lib in missing:
                    symbols[lib][name] = version
                    versions[lib].add(version)
                continue
            if name in universe:
                continue
            lib = next(
                (m for prefix, stem in PREFIXES if name.startswith(prefix)
                 for m in sorted(missing) if m.startswith(stem)),
                None,
            )
            if lib is None:
                lib = b_missing[0] if b_missing else sorted(missing)[0]
            symbols[lib].setdefault(name, None)

    with tempfile.TemporaryDirectory() as tmp:
        for lib in sorted(missing):
            names = symbols[lib]
            c = [
                "/* Stand-in for %s: every function fails with %d (generated by cuda_stubs.py). */"
                % (lib, ERROR_CODE),
                'static const char message[] = "CUDA is not installed (CPU-only torch; %s is a stub)";'
                % lib,
            ]
            for i, name in enumerate(sorted(names)):
                if STRING_RETURNING.search(name):
                    c.append('const char *s%d(void) __asm__("%s");' % (i, name))
                    c.append("const char *s%d(void) { return message; }" % i)
                else:
                    c.append('long s%d(void) __asm__("%s");' % (i, name))
                    c.append("long s%d(void) { return %d; }" % (i, ERROR_CODE))
            src = Path(tmp) / (lib + ".c")
            src.write_text("\n".join(c) + "\n")
            # One version node per version name the binaries require; unversioned symbols go to
            # the first (default) node.
            nodes = sorted(versions[lib]) or [lib]
            script = []
            for j, node in enumerate(nodes):
                members = [n for n, v in names.items() if v == node or (v is None and j == 0)]
                body = " ".join(n + ";" for n in sorted(members))
                script.append("%s { global: %s %s };" % (node, body, "local: *;" if j == 0 else ""))
            vs = Path(tmp) / (lib + ".map")
            vs.write_text("\n".join(script) + "\n")
            out = lib_dir / lib
            subprocess.run(
                ["cc", "-shared", "-fPIC", "-O1", "-o", str(out), str(src),
                 "-Wl,-soname," + lib, "-Wl,--version-script=" + str(vs)],
                check=True,
            )
            print("cuda_stubs: %s (%d symbols)" % (lib, len(names)))
    stub_list.write_text("\n".join(sorted(missing)) + "\n")


if __name__ == "__main__":
    main()
