"""The baseline for the throughput benchmark: the barest useful aiohttp proxy.

It forwards a POST's body and auth header to the same path on the upstream over one pooled
``aiohttp.ClientSession`` and returns the upstream's status and body: no parsing, routing,
SDK, retries or stats. A streamed answer (``text/event-stream``) is relayed as its bytes
arrive (the baseline of ``streaming.py``). Any aiohttp sidecar sits on this floor.

    .venv/bin/python bench/passthrough.py --port 9100 --upstream http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

FORWARD = ("Content-Type", "Authorization", "x-api-key", "anthropic-version", "x-goog-api-key")


def build_app(upstream: str) -> web.Application:
    app = web.Application()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def start(app: web.Application) -> None:
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def stop(app: web.Application) -> None:
        await app[session_key].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {h: v for h in FORWARD if (v := request.headers.get(h)) is not None}
        async with app[session_key].post(upstream + request.path_qs, data=body, headers=headers) as r:
            if r.content_type == "text/event-stream":
                resp = web.StreamResponse(status=r.status, headers={"Content-Type": "text/event-stream"})
                await resp.prepare(request)
                async for data in r.content.iter_any():
                    await resp.write(data)
                await resp.write_eof()
                return resp
            payload = await r.read()
            return web.Response(status=r.status, body=payload, content_type=r.content_type)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/{tail:.*}", forward)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    a = p.parse_args()
    web.run_app(build_app(a.upstream.rstrip("/")), host="127.0.0.1", port=a.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
