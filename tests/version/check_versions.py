#!/usr/bin/env python3
"""Checks that every place chanpool states its version states the same one.

    check_versions.py --version X.Y.Z --source DIR --build DIR --c-library LIB --probe EXE [--tool EXE ...]

The version is project(VERSION), as CMake read it from DIR/CMakeLists.txt. It must be, in the
build tree: the
package config version file, every pkg-config file, chanpool/version.h, the C library's file
name and SONAME (libchanpool_c.so.MAJOR -> .so.X.Y.Z), chanpool_version() of that library
(ctypes), chanpool::version() and chanpool_version() of the static library (the probe prints
them), and the last word of every tool's --version; in the source tree, the Spack recipe's
version().
"""
import argparse
import ast
import ctypes
import glob
import os
import re
import subprocess
import sys

failures = []


def expect(what, got, want):
    if got != want:
        failures.append(f"{what}: {got!r}, want {want!r}")
    else:
        print(f"ok  {what}: {got}")


def recipe_versions(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    return [n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == "version" and n.args and isinstance(n.args[0], ast.Constant)]


def soname(library):
    out = subprocess.run(["readelf", "-d", library], capture_output=True, text=True, check=True).stdout
    m = re.search(r"\(SONAME\)\s+Library soname: \[(.+)\]", out)
    return m.group(1) if m else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", required=True, help="project(VERSION), from CMake")
    parser.add_argument("--source", required=True)
    parser.add_argument("--build", required=True)
    parser.add_argument("--c-library", required=True)
    parser.add_argument("--probe", required=True)
    parser.add_argument("--tool", action="append", default=[])
    args = parser.parse_args()
    version = args.version
    major = version.split(".")[0]
    print(f"project(VERSION) {version}")

    with open(os.path.join(args.build, "chanpoolConfigVersion.cmake"), encoding="utf-8") as f:
        m = re.search(r'set\(PACKAGE_VERSION "([^"]+)"\)', f.read())
    expect("chanpoolConfigVersion.cmake", m.group(1) if m else None, version)
    pcs = sorted(glob.glob(os.path.join(args.build, "*.pc")))
    if len(pcs) < 3:
        failures.append(f"expected the 3 pkg-config files in {args.build}, found {pcs}")
    for pc in pcs:
        with open(pc, encoding="utf-8") as f:
            m = re.search(r"^Version:\s*(\S+)", f.read(), re.M)
        expect(os.path.basename(pc), m.group(1) if m else None, version)
    with open(os.path.join(args.build, "generated", "include", "chanpool", "version.h"), encoding="utf-8") as f:
        m = re.search(r'#define CHANPOOL_VERSION_STRING "([^"]+)"', f.read())
    expect("chanpool/version.h", m.group(1) if m else None, version)

    expect("SONAME", soname(args.c_library), f"libchanpool_c.so.{major}")
    expect("library file", os.path.basename(os.path.realpath(args.c_library)), f"libchanpool_c.so.{version}")
    lib = ctypes.CDLL(args.c_library)
    lib.chanpool_version.restype = ctypes.c_char_p
    expect("chanpool_version() of libchanpool_c", lib.chanpool_version().decode(), version)

    probe = subprocess.run([args.probe], capture_output=True, text=True, timeout=30)
    lines = dict(line.split(" ", 1) for line in probe.stdout.splitlines() if " " in line)
    expect("chanpool::version()", lines.get("chanpool::version()"), version)
    expect("chanpool_version() of chanpool::channels", lines.get("chanpool_version()"), version)

    for tool in args.tool:
        done = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
        name = os.path.basename(tool)
        line = done.stdout.strip()
        if done.returncode != 0 or line != f"{name} (chanpool) {line.split()[-1] if line else ''}":
            failures.append(f"{name} --version: exit {done.returncode}, printed {line!r}; want '{name} (chanpool) X'")
            continue
        expect(f"{name} --version", line.split()[-1], version)

    versions = recipe_versions(os.path.join(args.source, "spack", "package.py"))
    expect("the Spack recipe's version()", versions, [version])

    for f in failures:
        print(f"FAIL: {f}")
    if failures:
        return 1
    print(f"PASS: {version} everywhere ({len(args.tool)} tools)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
