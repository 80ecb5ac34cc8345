"""A small client for the `/_emulator/` control API of an emulator in another process."""

from __future__ import annotations

from typing import Any

import aiohttp

from .faults import Fault
from .script import Rule


class EmulatorClient:
    """Drive a running emulator over HTTP (e.g. one started with the CLI).

    async with EmulatorClient("http://127.0.0.1:9000") as c:
        await c.add_fault(Fault(kind="status", status=503, provider="openai", times=2))
        n = len(await c.requests(provider="openai"))
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/_emulator"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EmulatorClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.request(method, self.url + path, json=body, params=params) as resp:
            data = await resp.json()
            if resp.status >= 400:
                raise RuntimeError(f"emulator control API {method} {path}: {resp.status} {data}")
            return data

    async def add_fault(self, fault: Fault | dict[str, Any]) -> dict[str, Any]:
        body = (
            fault
            if isinstance(fault, dict)
            else {k: v for k, v in fault.to_json().items() if k not in ("id", "applied")}
        )
        added: list[dict[str, Any]] = (await self._call("POST", "/faults", body))["faults"]
        return added[0]

    async def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._call("GET", "/faults"))["faults"]
        return result

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def seed(self, seed: int) -> None:
        await self._call("POST", "/faults", {"seed": seed})

    async def add_rule(self, rule: Rule | dict[str, Any]) -> None:
        await self._call("POST", "/script", rule if isinstance(rule, dict) else rule.to_json())

    async def clear_script(self) -> None:
        await self._call("DELETE", "/script")

    async def requests(
        self, provider: str | None = None, model: str | None = None, since: int = 0
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("provider", provider), ("model", model)) if v}
        if since:
            params["since"] = str(since)
        result: list[dict[str, Any]] = (await self._call("GET", "/requests", params=params))["requests"]
        return result

    async def clear_requests(self) -> None:
        await self._call("DELETE", "/requests")

    async def reset(self) -> None:
        await self._call("POST", "/reset")
