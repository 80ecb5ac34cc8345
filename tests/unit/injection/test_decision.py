"""decide(): opt-in by annotation or namespace label, opt-out, exclusions, idempotence."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.operator.injection import InjectionSettings, decide

SETTINGS = InjectionSettings(image="modelroute:test", operator_public_key_pem="PEM", operator_namespace="modelroute-system")
ENABLED = {"modelroute.dev/inject": "enabled"}


def pod(annotations: dict[str, str] | None = None, namespace: str = "apps", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": namespace}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": [{"name": "app", "image": "app"}], **spec}}


def test_annotation_opts_in() -> None:
    d = decide(pod({"modelroute.dev/inject": "true"}), {}, SETTINGS)
    assert d.inject and "annotation" in d.reason


def test_unannotated_pod_in_plain_namespace_is_left_alone() -> None:
    assert not decide(pod(), {}, SETTINGS).inject
    assert not decide(pod({"other": "x"}), {"team": "a"}, SETTINGS).inject


def test_namespace_label_opts_in_and_annotation_opts_out() -> None:
    assert decide(pod(), ENABLED, SETTINGS).inject
    d = decide(pod({"modelroute.dev/inject": "false"}), ENABLED, SETTINGS)
    assert not d.inject and "false" in d.reason


def test_namespace_label_other_value_does_not_opt_in() -> None:
    assert not decide(pod(), {"modelroute.dev/inject": "disabled"}, SETTINGS).inject


@pytest.mark.parametrize("ns", ["kube-system", "kube-public", "kube-node-lease", "modelroute-system"])
def test_system_and_operator_namespaces_are_never_injected(ns: str) -> None:
    d = decide(pod({"modelroute.dev/inject": "true"}, namespace=ns), ENABLED, SETTINGS)
    assert not d.inject and ns in d.reason


def test_extra_excluded_namespace() -> None:
    settings = InjectionSettings(image="i", operator_public_key_pem="k", operator_namespace="op", excluded_namespaces=frozenset({"legacy"}))
    assert not decide(pod({"modelroute.dev/inject": "true"}, namespace="legacy"), {}, settings).inject


def test_namespace_argument_wins_over_missing_pod_namespace() -> None:
    p = pod({"modelroute.dev/inject": "true"})
    del p["metadata"]["namespace"]  # pods from a ReplicaSet arrive without it in the AdmissionReview object
    assert not decide(p, {}, SETTINGS, namespace="kube-system").inject
    assert decide(p, {}, SETTINGS, namespace="apps").inject


def test_host_network_pods_are_skipped() -> None:
    d = decide(pod({"modelroute.dev/inject": "true"}, hostNetwork=True), {}, SETTINGS)
    assert not d.inject and "host network" in d.reason


@pytest.mark.parametrize("where", ["initContainers", "containers"])
def test_pod_with_the_sidecar_is_not_injected_again(where: str) -> None:
    p = pod({"modelroute.dev/inject": "true"})
    p["spec"].setdefault(where, []).append({"name": "modelroute-sidecar", "image": "x"})
    d = decide(p, ENABLED, SETTINGS)
    assert not d.inject and d.already_injected


def test_annotation_values_are_case_insensitive() -> None:
    assert decide(pod({"modelroute.dev/inject": "True"}), {}, SETTINGS).inject
    assert not decide(pod({"modelroute.dev/inject": "FALSE"}), ENABLED, SETTINGS).inject
