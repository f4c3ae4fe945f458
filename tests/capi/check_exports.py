#!/usr/bin/env python3
"""Checks the symbols libchanpool_c.so exports against chanpool/channels.h.

    check_exports.py LIBRARY HEADER

Passes when every function the header declares is exported, and nothing else of chanpool's
is: the library is built with hidden visibility so that its copy of the C++ code stays private
(no chanpool:: symbol may leak, or it could bind to another copy in the same process).
Symbols the C++ standard library's headers instantiate with default visibility are allowed.
"""
import re
import shutil
import subprocess
import sys


def main():
    library, header = sys.argv[1:3]
    nm = shutil.which("nm")
    if nm is None:
        print("SKIP: nm (binutils) not found")
        return 77
    with open(header, encoding="utf-8") as f:
        declared = set(re.findall(r"CHANPOOL_C_API\s[^;(]*?\b(chanpool_\w+)\s*\(", f.read()))
    if len(declared) < 20:
        print(f"FAIL: found only {len(declared)} declarations in {header}: is the pattern stale?")
        return 1

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
    print(f"{'PASS' if ok else 'FAIL'}: {len(declared)} C API functions; {len(exported)} exported symbols")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
