"""`modelroute crd`: print (or write) the generated CustomResourceDefinitions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelroute.api.crd import CRDS, crd_yaml


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, help="write the ModelRoute CRD to this file instead of stdout")
    parser.add_argument("-d", "--directory", type=Path, help="write every CRD (ModelRoute, ProviderQuota, ModelRouteEval) into this directory")
    parser.add_argument("--kind", choices=("modelroute", "providerquota", "modelrouteeval"), default="modelroute",
                        help="which CRD to print or write with -o (default: modelroute)")


def run(args: argparse.Namespace) -> int:
    if args.directory:
        for name in CRDS:
            (args.directory / name).write_text(crd_yaml(name))
        return 0
    text = crd_yaml(f"modelroute.dev_{args.kind}s.yaml")
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
