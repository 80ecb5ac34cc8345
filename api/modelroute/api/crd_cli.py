"""`modelroute crd`: print (or write) the generated CustomResourceDefinition."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelroute.api.crd import crd_yaml


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    text = crd_yaml()
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
