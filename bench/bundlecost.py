"""What a sidecar's start costs for its config, step by step: the signed bundle (as injected) vs a file.

``podstart.py --instructions`` counts a whole start; two starts of different code also differ by
where the garbage collector happens to run (a full collection of the start-up heap is tens of
millions of instructions), which hides a step of a few. Here each step runs in a fresh interpreter
under ``valgrind --tool=cachegrind --cache-sim=no`` with the collector disabled and
``PYTHONHASHSEED=0``, after importing what every start imports (``modelroute.sidecar.cli``), and
its cost is its count minus that base's:

* ``key``: the operator's public key read from its PEM file (imports PyNaCl; ``cryptography`` before 2026-12-06 verify);
* ``key+bundle``: that, and ``bundle.json`` read, its signature verified, validated as a RouteBundle;
* ``key+bundle+select``: that, and the pod's labels read and its config rendered (``render_for_pod``);
* ``yaml file`` / ``json file``: ``loader.load`` of the same routes as a YAML / JSON ``--config`` file.

Adapters, listeners and warm-up are the same for both sources and are not counted here.

    .venv/bin/python bench/bundlecost.py [--providers 1] [--baseline-python /work/main/.venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import harness
import injected
import podstart
from modelroute.api import signing

BASE = ("import gc, os; gc.disable()\nfrom pathlib import Path\nimport modelroute.sidecar.cli\n"
        "work = Path(os.environ['BENCH_WORK'])\n")
KEY = ("from modelroute.api.signing import load_public_key\n"
       "key = load_public_key((work / 'pod/operator-public-key').read_bytes())\n")
BUNDLE = "from modelroute.sidecar.server.bundle import read_bundle, parse_labels\nb = read_bundle(work / 'bundle', key)\n"
SELECT = ("from modelroute.api.selection import render_for_pod\n"
          "r = render_for_pod(b.routes, parse_labels((work / 'pod/labels').read_text()), b.model_registry)\n"
          "assert r.config.routes\n")
FILE = ("from modelroute.sidecar.config import loader\nfrom modelroute.sidecar.config.secrets import KeyResolver\n"
        "c = loader.load([work / {name!r}], KeyResolver(secrets_dir=work / 'secrets'))\nassert c.routes\n")
STEPS = {"base": BASE, "key": BASE + KEY, "key+bundle": BASE + KEY + BUNDLE, "key+bundle+select": BASE + KEY + BUNDLE + SELECT,
         "yaml file": BASE + FILE.format(name="routes.yaml"), "json file": BASE + FILE.format(name="routes.json")}
_IREFS = re.compile(r"^==\d+== I\s+refs:\s+([\d,]+)", re.MULTILINE)


def count(python: str, code: str, work: Path) -> int:
    env = injected.child_env({"PYTHONOPTIMIZE": "2", "PYTHONHASHSEED": "0", "BENCH_WORK": str(work), **harness.KEYS})
    out = subprocess.run([*podstart.CACHEGRIND, python, "-c", code], capture_output=True, text=True, env=env,
                         cwd=harness.REPO, timeout=900)
    m = _IREFS.search(out.stderr)
    if out.returncode != 0 or m is None:
        raise RuntimeError(f"step failed ({out.returncode}): {out.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--providers", type=int, choices=(1, 3), default=1, help="routes the pod's labels select")
    p.add_argument("--baseline-python", help="also count this interpreter's checkout")
    args = p.parse_args()
    pythons = {"this": harness.PY, **({"baseline": args.baseline_python} if args.baseline_python else {})}
    for py in pythons.values():
        podstart.precompile(py)
    routes = podstart.ONE if args.providers == 1 else podstart.THREE
    info = harness.machine()
    counts: dict[str, dict[str, int]] = {}
    with harness.stack() as st:
        work = st.tmp / "pod"
        injected.bundle_launch(work, "http://127.0.0.1:9", routes, 1, 2, signing.generate_private_key_pem())
        docs = harness.route_docs("http://127.0.0.1:9", routes, secret=injected.SECRET)
        (work / "routes.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n")
        (work / "routes.json").write_text(json.dumps(docs, indent=2))
        for name, py in pythons.items():
            counts[name] = {step: count(py, code, work) for step, code in STEPS.items()}
    out: dict[str, Any] = {"bench": "bundlecost", "providers": args.providers, "machine": info, "counts": counts}
    path = harness.write_result("bundlecost", out)
    rows = [[step, *(f"{(counts[n][step] - (0 if step == 'base' else counts[n]['base'])) / 1e6:.1f}" for n in pythons)]
            for step in STEPS]
    print(f"instructions (M) of each step over the base (base: the count of importing modelroute.sidecar.cli), "
          f"{args.providers} provider(s), collector off; {info['date']}")
    print(harness.table(["step", *pythons], rows))
    print(f"JSON: {path}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
