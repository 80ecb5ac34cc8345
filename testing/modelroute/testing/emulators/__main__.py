"""CLI: run the emulators until SIGINT/SIGTERM.

    python -m modelroute.testing.emulators --host 127.0.0.1 --port 9000 [--provider all]
        [--seed N] [--fault JSON ...] [--strict-models] [--lenient] [--log-size N] [--rpm N] [--tpm N] [--stream-words N]

Prints `modelroute emulator listening on <url> (providers: ...)` once bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from .faults import Fault
from .model import PROVIDERS, Provider
from .ratelimit import RateLimit
from .server import EmulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m modelroute.testing.emulators",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    p.add_argument(
        "--provider",
        action="append",
        choices=["all", *PROVIDERS],
        help="providers to serve (repeatable; default all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for probabilistic faults")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help='a fault to preload, e.g. \'{"kind":"latency","latency_ms":20}\'',
    )
    p.add_argument("--strict-models", action="store_true", help="404 for models not in the default lists")
    p.add_argument("--lenient", action="store_true",
                   help="accept any parseable body (default: validate against each provider's request schema)")
    p.add_argument("--log-size", type=int, default=10_000, help="requests kept in the request log")
    p.add_argument("--rpm", type=int, default=None, help="the provider's requests per minute per API key (429 beyond)")
    p.add_argument("--tpm", type=int, default=None, help="the provider's tokens per minute per API key (429 beyond)")
    p.add_argument("--stream-words", type=int, default=None, metavar="N",
                   help="streamed text replies are N words, one content chunk each (benchmarks); the "
                        "interval between chunks is a latency fault's chunk_latency_ms")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    chosen = args.provider or ["all"]
    providers: tuple[Provider, ...] = PROVIDERS if "all" in chosen else tuple(chosen)
    server = EmulatorServer(
        args.host,
        args.port,
        providers=providers,
        seed=args.seed,
        strict_models=args.strict_models,
        strict=not args.lenient,
        log_size=args.log_size,
        rate_limit=RateLimit(args.rpm, args.tpm) if args.rpm or args.tpm else None,
        stream_words=args.stream_words,
    )
    for raw in args.fault:
        server.faults.add(Fault.from_json(json.loads(raw)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print(
            f"modelroute emulator listening on {server.url} (providers: {', '.join(providers)})", flush=True
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
