"""Starts Kyutai's `moshi.server` unchanged, with one fix for CPU devices.

Kyutai's warm-up ends with `torch.cuda.synchronize()`, which raises on a
machine without CUDA, so `--device cpu` dies before it listens. On a CPU we
replace that one function with a no-op, then run the module as `__main__`
(it calls `main()` at import). On a GPU nothing is changed.

    python moshi_server.py [moshi.server arguments...]
"""

import runpy
import sys


def wants_cpu(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == "--device" and i + 1 < len(argv):
            return argv[i + 1].startswith("cpu")
        if arg.startswith("--device="):
            return arg.split("=", 1)[1].startswith("cpu")
    return False


if __name__ == "__main__":
    if wants_cpu(sys.argv[1:]):
        import torch

        torch.cuda.synchronize = lambda *args, **kwargs: None
    sys.argv[0] = "moshi.server"
    runpy.run_module("moshi.server", run_name="__main__", alter_sys=True)
