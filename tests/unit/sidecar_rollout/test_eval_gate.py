"""``POST /eval``: the operator's signed golden-dataset run against the served canary revision."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api import signing
from modelroute.api.config import PodRef, SidecarConfig
from modelroute.api.evalgate import EvalResult
from modelroute.api.signing import verify_key
from modelroute.api.v1alpha1 import ModelRouteSpec
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.operator.rollout import GateResults
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.rollout import gate
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState

from .conftest import ENV, FakeAdapter, FakeAdapters, config, spec

KEY = Ed25519PrivateKey.generate()
POD = PodRef(namespace="ns", name="web-1")
CASES = [{"id": f"c{i}", "input": f"ticket {i}", "expected": "billing"} for i in range(6)]


class Admin:
    def __init__(self, sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
        self.sidecar, self.http = sidecar, http

    def body(self, **over: Any) -> bytes:
        cfg = self.sidecar.state.current()
        assert cfg is not None
        doc = {"audience": {"namespace": POD.namespace, "name": POD.name}, "issuedAt": datetime.now(UTC).isoformat(),
               "route": "classify", "revision": cfg.config.canaries[0].revision, "cases": CASES, **over}
        return json.dumps(doc).encode()

    async def post(self, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        headers = {signing.SIGNATURE_HEADER: signature} if signature else {}
        async with self.http.post(self.sidecar.admin_url + "/eval", data=body, headers=headers) as r:
            return r.status, await r.json()

    async def signed(self, body: bytes) -> tuple[int, dict[str, Any]]:
        return await self.post(body, signing.sign(KEY, body))


def live_counters(admin: Admin) -> dict[str, Any]:
    doc = admin.sidecar.state.stats.as_json()
    doc.pop("uptimeSeconds")
    return doc


@contextlib.asynccontextmanager
async def serving(adapters: FakeAdapters, cfg: SidecarConfig) -> AsyncIterator[Admin]:
    state = SidecarState(keys=KeyResolver(environ=ENV), adapters=adapters)
    await state.apply(cfg, source="file")
    auth = AuthSettings(operator_key=verify_key(KEY), pod=POD)
    async with Sidecar(state, auth, grace_seconds=2) as sc, aiohttp.ClientSession() as http:
        yield Admin(sc, http)


@pytest.fixture
async def admin(adapters: FakeAdapters) -> AsyncIterator[Admin]:
    async with serving(adapters, config(weight=0)) as a:
        yield a


async def test_runs_the_cases_on_the_canary_only_and_leaves_live_counters_alone(
        admin: Admin, adapters: FakeAdapters) -> None:
    adapters["new"].text = "billing"
    before = live_counters(admin)
    evidence_before = admin.sidecar.state.evidence.as_json()
    status, doc = await admin.signed(admin.body())
    assert status == 200, doc
    entry = doc["targets"][0]
    assert entry["cases"] == 6 and entry["errors"] == 0 and entry["exactMatch"] == 1.0 and entry["validOutputRate"] == 1.0
    results = GateResults.from_eval_json(entry)   # the operator reads exactly this shape
    assert results.cases == 6 and results.exact_match == 1.0 and results.latency_p95_seconds is not None
    assert len(adapters["new"].calls) == 6 and not adapters["old"].calls, "the stable revision is not called"
    assert live_counters(admin) == before, "live stats untouched"
    assert admin.sidecar.state.evidence.as_json() == evidence_before, "rollout evidence untouched"


async def test_wrong_labels_score_zero(admin: Admin, adapters: FakeAdapters) -> None:
    adapters["new"].text = "shipping"
    status, doc = await admin.signed(admin.body())
    assert status == 200 and doc["targets"][0]["exactMatch"] == 0.0


async def test_only_the_served_canary_revision(admin: Admin) -> None:
    status, doc = await admin.signed(admin.body(revision="sha256:other"))
    assert status == 409 and doc["error"]["code"] == "revision_not_served"
    status, doc = await admin.signed(admin.body(route="nope"))
    assert status == 409


async def test_unsigned_forged_and_misaddressed_requests_are_refused(admin: Admin, adapters: FakeAdapters) -> None:
    body = admin.body()
    assert (await admin.post(body, None))[0] == 401
    assert (await admin.post(body, signing.sign(Ed25519PrivateKey.generate(), body)))[0] == 403
    other = admin.body(audience={"namespace": "ns", "name": "web-2"})
    assert (await admin.signed(other))[1]["error"]["code"] == "wrong_audience"
    old = admin.body(issuedAt=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert (await admin.signed(old))[0] == 403
    assert "new" not in adapters or not adapters["new"].calls, "nothing ran"


async def test_bad_datasets_are_reported(admin: Admin) -> None:
    status, doc = await admin.signed(admin.body(cases=[{"expected": "x"}]))
    assert status == 422 and doc["error"]["code"] == "invalid_dataset" and doc["error"]["problems"]
    status, doc = await admin.signed(admin.body(cases=[]))
    assert status == 422


async def test_a_signed_body_that_is_not_an_eval_request_is_a_422_naming_the_field(admin: Admin) -> None:
    """Regression: a correctly signed body without audience or issuedAt used to escape as a 500."""
    body = json.dumps({"route": "classify"}).encode()
    status, doc = await admin.signed(body)
    assert status == 422 and doc["error"]["code"] == "invalid_request"
    assert "request: audience: Field required" in doc["error"]["problems"]
    status, doc = await admin.signed(admin.body(cases=[{"input": "x"}] * 2001))
    assert status == 422 and any(p.startswith("request: cases: List should have at most 2000") for p in doc["error"]["problems"])


async def test_the_time_bound_turns_slow_cases_into_deadline_errors(admin: Admin, adapters: FakeAdapters,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    adapters["new"].text = "billing"
    adapters["new"].delay = 2.0
    monkeypatch.setattr(gate, "TIME_BOUND_SECONDS", 0.2)
    started = asyncio.get_running_loop().time()
    status, doc = await admin.signed(admin.body())
    assert status == 200 and asyncio.get_running_loop().time() - started < 1.5
    entry = doc["targets"][0]
    assert entry["errors"] == 6 and entry["errorsByClass"] == {"deadline": 6}


LABEL_SCHEMA = {"mode": "schema", "repairAttempts": 1, "schema": {
    "type": "object", "properties": {"label": {"enum": ["billing", "shipping"]}}, "required": ["label"]}}


async def test_the_gate_runs_the_canary_with_its_output_contract(adapters: FakeAdapters) -> None:
    """Issue 11 item 2: the gate runs the route's pipeline, so answers that break the canary's schema fail the gate."""
    async with serving(adapters, config(weight=0, canary_spec={"output": LABEL_SCHEMA})) as admin:
        adapters["new"].text = "billing"   # plain text: not the JSON the canary's contract asks for
        status, doc = await admin.signed(admin.body())
        assert status == 200, doc
        entry = doc["targets"][0]
        assert entry["errors"] == 6 and entry["errorsByClass"] == {"invalid_output": 6}, entry
        assert len(adapters["new"].calls) == 12, "each case was tried once and repaired once"
        live = admin.sidecar.state.planner.ledger.routes.values()
        assert not any(r.output for r in live), "the gate's output checks stay out of the live ledger"

        adapters["new"].calls.clear()
        adapters["new"].text = '{"label": "billing"}'
        status, doc = await admin.signed(admin.body())
        entry = doc["targets"][0]
        assert status == 200 and entry["errors"] == 0, entry
        assert len(adapters["new"].calls) == 6
        assert entry["costUsd"] > 0, "the run is priced like live traffic (gpt-4.1-mini has a list price)"


async def test_the_gate_bypasses_the_cache(adapters: FakeAdapters) -> None:
    """A cached answer is never counted as the canary's: every case reaches the candidate, twice in a row."""
    cache = {"cache": {"enabled": True, "includeSampled": True}}
    async with serving(adapters, config(weight=0, canary_spec=cache)) as admin:
        adapters["new"].text = "billing"
        for _ in range(2):
            status, doc = await admin.signed(admin.body())
            assert status == 200 and doc["targets"][0]["errors"] == 0, doc
        assert len(adapters["new"].calls) == 12


async def test_baseline_runs_the_same_cases_on_stable_too(admin: Admin, adapters: FakeAdapters) -> None:
    """A relative gate threshold: the cases run on both revisions; stable's summary comes back beside the canary's."""
    adapters["new"].respond = lambda req: "shipping" if "ticket 0" in str(req["messages"][-1]["content"]) else "billing"
    adapters["old"].text = "billing"
    status, doc = await admin.signed(admin.body(baseline=True))
    assert status == 200, doc
    rt = admin.sidecar.state.current()
    assert rt is not None
    assert doc["baselineRevision"] == rt.routes["classify"].revision
    assert doc["targets"][0]["exactMatch"] == pytest.approx(5 / 6) and doc["baseline"]["exactMatch"] == 1.0
    assert doc["baseline"]["target"] == f"revision {doc['baselineRevision']}" and doc["baseline"]["cases"] == 6
    assert len(adapters["old"].calls) == 6 and len(adapters["new"].calls) == 6
    # Without baseline the stable revision is not called and no baseline is reported.
    status, doc = await admin.signed(admin.body())
    assert status == 200 and doc["baseline"] is None and len(adapters["old"].calls) == 6


# ---- with a candidate (kubectl modelroute eval, through the operator's ModelRouteEval) -----------------


def _candidate(model: str = "gpt-4.1", target: str = "cand", key: str = "KEY_B") -> dict[str, Any]:
    return spec("classify", target, model, key=key).wire()


async def test_a_candidate_is_compared_with_the_live_stable_revision(admin: Admin, adapters: FakeAdapters) -> None:
    adapters["old"].text = "refund"    # stable wrong on every case
    cand = _candidate()
    adapters["cand"] = FakeAdapter(ModelRouteSpec.model_validate(cand).targets[0])
    adapters["cand"].text = "Billing."
    before = live_counters(admin)
    status, doc = await admin.signed(admin.body(candidate=cand, revision=revision_of(cand), baseline=True,
                                                compare={"dataset": "golden.jsonl", "candidateSource": "c.yaml",
                                                         "baselineSource": "cluster:ns/classifier", "minCases": 5}))
    assert status == 200, doc
    result = EvalResult.model_validate(doc)
    cmp = result.comparison
    assert cmp is not None and (cmp.dataset, cmp.candidate.source, cmp.baseline.source) == ("golden.jsonl", "c.yaml", "cluster:ns/classifier")
    assert (cmp.baseline.exact_match, cmp.candidate.exact_match, cmp.comparison.candidate_only) == (0.0, 1.0, 6)
    assert cmp.comparison.verdict.value == "better" and cmp.candidate.targets == ["openai/gpt-4.1"]
    assert result.baseline_revision == admin.sidecar.state.current().routes["classify"].revision  # type: ignore[union-attr]
    assert live_counters(admin) == before, "an eval is not live traffic"


async def test_a_candidate_the_sidecar_cannot_run_is_a_clear_4xx(admin: Admin) -> None:
    cand = _candidate()
    status, doc = await admin.signed(admin.body(candidate=cand, revision="sha256:other"))
    assert status == 422 and "is not the candidate's" in doc["error"]["message"], doc
    missing = _candidate(key="KEY_MISSING")
    status, doc = await admin.signed(admin.body(candidate=missing, revision=revision_of(missing)))
    assert status == 422 and doc["error"]["code"] == "invalid_candidate" and "KEY_MISSING" in json.dumps(doc["error"]["problems"]), doc
    other = {**cand, "route": "nope"}
    status, doc = await admin.signed(admin.body(route="nope", candidate=other, revision=revision_of(other)))
    assert status == 404 and doc["error"]["code"] == "route_not_served", doc
    status, doc = await admin.signed(admin.body(candidate=cand, revision=revision_of(cand), cases=[{"expected": "x"}]))
    assert status == 422 and "cases:1: input must be" in json.dumps(doc), doc
