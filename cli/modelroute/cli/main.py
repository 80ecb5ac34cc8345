"""The `modelroute` console script: one entry point, one subcommand per component.

Each subcommand lives in its component's ``cli`` module (``configure(parser)`` and
``run(args) -> int``) and is imported only when chosen, so `modelroute sidecar` never
loads kopf and `modelroute operator` never loads the provider SDKs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence

# name -> (module, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sidecar": ("modelroute.sidecar.cli", "run the per-pod LLM routing proxy"),
    "operator": ("modelroute.operator.cli", "run the Kubernetes operator"),
    "webhook": ("modelroute.operator.webhook.cli", "serve the sidecar-injection admission webhook (its own Deployment)"),
    "crd": ("modelroute.api.crd_cli", "print the ModelRoute CustomResourceDefinition (generated from the API models)"),
    "eval": ("modelroute.cli.evalcmd", "compare two revisions of a route (or one route's targets) on a golden dataset"),
    "demo": ("modelroute.testing.demo", "run the standalone sidecar against local provider emulators and show it working"),
}

# name -> a stdlib-only module whose ``starting()`` is entered before the subcommand's module is imported
PRELUDES: dict[str, str] = {
    "sidecar": "modelroute.sidecar.prelude",  # collector paused, CA anchors by directory (its docstring)
}


def chosen_command(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def prelude(argv: Sequence[str]) -> contextlib.AbstractContextManager[object]:
    """The chosen subcommand's prelude (nothing for the others, nor for a component tree without one:
    bench scripts run an older checkout's ``modelroute/sidecar`` ahead of this one)."""
    name = PRELUDES.get(chosen_command(argv) or "")
    try:
        module = importlib.import_module(name) if name else None
    except ModuleNotFoundError:
        module = None
    return contextlib.nullcontext() if module is None else module.starting()  # type: ignore[no-any-return]


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelroute", description="Kubernetes-native routing for small language models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = chosen_command(argv)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    with prelude(args_list):
        parser = build_parser(args_list)  # imports the chosen subcommand's module
    args = parser.parse_args(args_list)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        rc: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
