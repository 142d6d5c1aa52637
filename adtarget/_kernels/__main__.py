"""``python -m adtarget._kernels``: compile (and cache) the kernels the main job uses, once per install.

numba compiles a kernel at its first call, which costs about a minute for all of them on a 2-core machine; the
machine code is then cached beside the modules. ``make`` runs this right after installing, so the first
``make demo`` or ``make test`` does not pay it inside the job. It runs the demo pipeline on a few thousand
synthetic events in a temporary directory (what it computes is thrown away).
"""

from __future__ import annotations

import sys
import tempfile
import time


def main() -> int:
    from adtarget.cli import main as cli

    start = time.perf_counter()
    print("adtarget: compiling the numba kernels once (cached afterwards)...", flush=True)
    with tempfile.TemporaryDirectory(prefix="adtarget-kernels-") as out:
        code = cli(["demo", "--events", "5000", "--out", out, "--quiet"])
    print(f"adtarget: kernels ready in {time.perf_counter() - start:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
