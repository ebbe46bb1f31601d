#!/usr/bin/env python3
"""Compare the machine code of two builds of the CUDA plug-in, kernel by kernel.

usage: sass_compare.py A.so B.so [REGEX]

Runs `cuobjdump -sass` on both (the CUDA toolkit's; set CUOBJDUMP to its path if it is not on PATH),
splits the output per (architecture, function), strips addresses and encodings, and reports which
functions have the same instructions in both, which differ (with their instruction counts) and which
exist in one build only. REGEX keeps the functions whose mangled name it matches. Exit status 0 when
no compared function differs. NOTES.md v11 and v12 use it to show that a source change left a
kernel's code as measured."""
import os
import re
import subprocess
import sys


def functions(lib):
    """{(arch, mangled name): [instruction text, ...]} of a shared object or cubin."""
    tool = os.environ.get("CUOBJDUMP", "cuobjdump")
    text = subprocess.run([tool, "-sass", lib], capture_output=True, text=True, check=True).stdout
    found, arch, name = {}, None, None
    for line in text.split("\n"):
        m = re.search(r"arch = (sm_\d+)", line)
        if m:
            arch = m.group(1)
        m = re.match(r"\s+Function : (\S+)", line)
        if m:
            name = (arch, m.group(1))
            found[name] = []
            continue
        m = re.match(r"\s+/\*[0-9a-f]{4,}\*/\s+([^;]*);", line)
        if m and name:
            found[name].append(m.group(1).strip())
    return found


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) > 1 and argv[1] in ("-h", "--help") else 2
    a, b = functions(argv[1]), functions(argv[2])
    keep = re.compile(argv[3]) if len(argv) > 3 else None
    same = differ = 0
    for key in sorted(set(a) & set(b)):
        if keep and not keep.search(key[1]):
            continue
        if a[key] == b[key]:
            same += 1
        else:
            differ += 1
            print(f"differs: {key[0]} {key[1]} ({len(a[key])} vs {len(b[key])} instructions)")
    only_a = sorted(k for k in set(a) - set(b) if not keep or keep.search(k[1]))
    only_b = sorted(k for k in set(b) - set(a) if not keep or keep.search(k[1]))
    for k in only_a:
        print(f"only in {argv[1]}: {k[0]} {k[1]}")
    for k in only_b:
        print(f"only in {argv[2]}: {k[0]} {k[1]}")
    print(f"{same} identical, {differ} different, {len(only_a)} only in the first, {len(only_b)} only in the second")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
