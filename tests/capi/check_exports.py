#!/usr/bin/env python3
"""Checks the symbols a chanpool C library exports against its headers and the committed list.

    check_exports.py LIBRARY SYMBOLS_FILE HEADER [HEADER...]

Passes when the functions the headers declare, the committed list (SYMBOLS_FILE, one name a
line, # comments) and the library's exported chanpool_* functions are the same set, and nothing
else of chanpool's is exported: the library is built with hidden visibility so that its copy of
the C++ code stays private (no chanpool:: symbol may leak, or it could bind to another copy in
the same process). Symbols the C++ standard library's headers instantiate with default
visibility are allowed. The committed list makes every change of the ABI a deliberate one.
"""
import re
import shutil
import subprocess
import sys


def main():
    library, symbols_file, headers = sys.argv[1], sys.argv[2], sys.argv[3:]
    nm = shutil.which("nm")
    if nm is None:
        print("SKIP: nm (binutils) not found")
        return 77
    declared = set()
    for header in headers:
        with open(header, encoding="utf-8") as f:
            found = set(re.findall(r"CHANPOOL_C_API\s[^;(]*?\b(chanpool_\w+)\s*\(", f.read()))
        if len(found) < 3:
            print(f"FAIL: found only {len(found)} declarations in {header}: is the pattern stale?")
            return 1
        declared |= found
    with open(symbols_file, encoding="utf-8") as f:
        committed = {line.strip() for line in f if line.strip() and not line.startswith("#")}

    out = subprocess.run([nm, "-D", "--defined-only", library], capture_output=True, text=True, check=True).stdout
    exported = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            exported[parts[2].split("@")[0]] = parts[1]
    demangled = {}
    cxx = [s for s in exported if s.startswith("_Z")]
    if cxx:
        filt = subprocess.run(["c++filt"], input="\n".join(cxx), capture_output=True, text=True, check=True).stdout
        demangled = dict(zip(cxx, filt.splitlines()))

    ok = True
    for name in sorted(committed - declared):
        print(f"FAIL: {name} is in {symbols_file} but no header declares it (an ABI change: update the list)")
        ok = False
    for name in sorted(declared - committed):
        print(f"FAIL: {name} is declared but not in {symbols_file} (an ABI change: add it to the list)")
        ok = False
    for name in sorted(declared - exported.keys()):
        print(f"FAIL: {name} is declared in the header but not exported")
        ok = False
    for name, kind in sorted(exported.items()):
        if name in declared:
            if kind not in "TW":
                print(f"FAIL: {name} is exported as '{kind}', not as a function")
                ok = False
            continue
        if name.startswith("chanpool") or "chanpool" in demangled.get(name, ""):
            print(f"FAIL: {name} ({demangled.get(name, 'C symbol')}) is exported but is not part of the C API")
            ok = False
    print(f"{'PASS' if ok else 'FAIL'}: {len(declared)} C API functions declared, {len(committed)} committed; "
          f"{len(exported)} exported symbols")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
