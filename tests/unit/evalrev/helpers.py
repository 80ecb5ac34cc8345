"""Shared pieces of the revision-comparison tests: two ModelRoute revisions on one emulator, and datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from modelroute.testing.emulators import EmulatorServer

ENV = {"KEY_LOCAL": "sk-local-test"}
LABELS = ("billing", "shipping", "refund", "account")


def route_doc(emu: EmulatorServer, model: str, *, prompt: str = "v1", price: float | None = 1.0,
              output: dict[str, Any] | None = None) -> dict[str, Any]:
    """A classify route on an OpenAI-compatible endpoint (the emulator), one target."""
    target: dict[str, Any] = {"name": "local", "provider": "openai-compatible", "model": model,
                              "baseUrl": emu.openai_url, "apiKey": {"env": "KEY_LOCAL"}}
    if price is not None:
        target["pricing"] = {"inputPerMillion": price, "outputPerMillion": 4 * price}
    doc: dict[str, Any] = {
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "tickets"},
        "spec": {"route": "classify", "timeoutSeconds": 10, "retry": {"attempts": 1},
                 "prompt": {"version": prompt, "system": "Answer with one label."}, "targets": [target]}}
    if output is not None:
        doc["spec"]["output"] = output
    return doc


def cases(n: int) -> list[dict[str, Any]]:
    """``n`` labelled cases; case i's text contains the marker ``#i.`` the emulator scripts match on."""
    return [{"id": f"c{i}", "input": f"ticket #{i}. please help", "expected": LABELS[i % len(LABELS)]} for i in range(n)]


def script(emu: EmulatorServer, model: str, rows: list[dict[str, Any]], wrong: set[int]) -> None:
    """``model`` answers each case's label, except the cases in ``wrong`` (a different label)."""
    for i, c in enumerate(rows):
        label = c["expected"] if i not in wrong else LABELS[(LABELS.index(c["expected"]) + 1) % len(LABELS)]
        emu.reply(label, contains=f"#{i}.", model=model)


def write(tmp: Path, emu: EmulatorServer, base_model: str, cand_model: str, rows: list[dict[str, Any]],
          candidate_output: dict[str, Any] | None = None, **kw: Any) -> tuple[Path, Path, Path]:
    a, b, d = tmp / "current.yaml", tmp / "proposed.yaml", tmp / "golden.jsonl"
    a.write_text(yaml.safe_dump(route_doc(emu, base_model, prompt="v3", **kw)))
    b.write_text(yaml.safe_dump(route_doc(emu, cand_model, prompt="v4", output=candidate_output, **kw)))
    d.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return a, b, d
