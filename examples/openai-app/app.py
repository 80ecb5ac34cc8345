"""An app that knows nothing about modelroute: it calls OpenAI with the official SDK.

At start it makes one call with no retry and logs whether anything answered on the base
URL (with a native sidecar, something must: the app starts only after the sidecar is
ready). Then it serves ``GET /ask?model=M&prompt=P`` on :8080, answering with what the
SDK returned, and ``GET /healthz``. Every answer is also logged as one JSON line. On
SIGTERM it stops accepting and finishes the requests in flight before it exits.
"""

import json
import os
import signal
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai

client = openai.OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "held-by-the-sidecar"), max_retries=0, timeout=30)


def log(**fields: object) -> None:
    print(json.dumps({"time": time.time(), **fields}), flush=True)


def ask(model: str, prompt: str) -> dict:
    try:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
    except openai.APIStatusError as exc:
        return {"ok": False, "status": exc.status_code, "error": str(exc)[:300]}
    except openai.APIConnectionError as exc:
        return {"ok": False, "status": None, "error": f"connection: {exc}"[:300]}
    return {"ok": True, "model": reply.model, "content": reply.choices[0].message.content}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, {"ok": True})
            return
        if url.path != "/ask":
            self._send(404, {"error": f"no route {url.path}"})
            return
        query = urllib.parse.parse_qs(url.query)
        answer = ask(query.get("model", ["chat"])[0], query.get("prompt", ["hello"])[0])
        log(event="answer", **answer)
        self._send(200, answer)

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    base_url = os.environ.get("OPENAI_BASE_URL")
    first = ask("startup-probe", "ping")
    # Any HTTP status means the sidecar was listening; a connection error means it was not.
    log(event="start", base_url=base_url, sidecar_answered=first.get("status") is not None or first["ok"], first=first)
    server = ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
    server.daemon_threads = False  # server_close() joins the requests in flight
    # SIGTERM: stop accepting, finish what is in flight (its SDK calls still need the sidecar).
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log(event="serving", port=8080)
    server.serve_forever()
    server.server_close()
    log(event="stopped")


if __name__ == "__main__":
    main()
