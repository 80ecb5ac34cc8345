"""The chart: lint, CRD copy, values schema, least-privilege RBAC, webhook settings, operator and webhook args."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE
from modelroute.api.v1alpha1.providers import Provider
from modelroute.cli.main import build_parser
from modelroute.operator.injection import InjectionSettings, StartGate, patch
from modelroute.operator.registryfile import parse_registry
from modelroute.operator.webhook.options import settings_from_args
from modelroute.operator.webhook.server import build_app


def test_helm_lint_strict_is_clean(chart: Any) -> None:
    result = chart.run_helm("lint", "--strict", str(chart.path), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("name", ["modelroute.dev_modelroutes.yaml", "modelroute.dev_providerquotas.yaml",
                                  "modelroute.dev_modelrouteevals.yaml"])
def test_crd_in_chart_is_identical_to_the_generated_one(chart: Any, name: str) -> None:
    generated = chart.root / "crds" / name
    copied = chart.path / "crds" / name
    assert copied.read_bytes() == generated.read_bytes(), f"cp {generated} {copied}"
    assert sorted(p.name for p in (chart.path / "crds").iterdir()) == [
        "modelroute.dev_modelrouteevals.yaml", "modelroute.dev_modelroutes.yaml", "modelroute.dev_providerquotas.yaml"]


def test_values_match_their_schema_and_every_key_is_documented(chart: Any) -> None:
    schema = json.loads((chart.path / "values.schema.json").read_text())
    values = yaml.safe_load((chart.path / "values.yaml").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)
    lines = (chart.path / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        text = line.strip()
        if text and not text.startswith(("#", "-")) and ":" in text:
            assert lines[i - 1].strip().startswith("#"), f"values.yaml line {i + 1} has no comment: {line}"


@pytest.mark.parametrize(("setting", "message"), [
    ("webhook.failurPolicy=Fail", "failurPolicy"),
    ("sidecar.resources.requests.cpu=lots", "cpu"),
    ("webhook.annotatedPodsFailurePolicy=Sometimes", "annotatedPodsFailurePolicy"),
    ("webhook.tls.mode=secret", "existingSecret"),
    ("adminNetworkPolicy.namespaces={Team_A}", "namespaces"),
    ("adminNetworkPolicy.allowFromCIDRs={everyone}", "allowFromCIDRs"),
    ("adminNetworkPolicy.openOtherPort=true", "openOtherPort"),
    ("modelRegistry.windowz=1", "windowz"),
    ("sidecar.startGate.pythn=/usr/bin/python3", "pythn"),
    ("sidecar.startGate.python=", "python"),
    ("sidecar.startGate.timeoutSeconds=0", "timeoutSeconds"),
    ("sidecar.startGate.pollIntervalMs=1s", "pollIntervalMs"),
    ("operator.lifecycleDate=2027-2-1", "lifecycleDate"),
])
def test_a_typo_or_bad_value_fails_at_install(chart: Any, setting: str, message: str) -> None:
    result = chart.run_helm("template", "x", str(chart.path), "--set", setting, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


@pytest.fixture(scope="module")
def default_docs(chart: Any) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = chart.documents(chart.template())
    return docs


def test_operator_deployment_is_single_recreate_nonroot_readonly(chart: Any, default_docs: list[dict[str, Any]]) -> None:
    dep = chart.find(default_docs, "Deployment", "-operator")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["args"][0] == "operator"
    assert not [a for a in container["args"] if a.startswith(("--webhook", "--sidecar"))], "the webhook runs apart"
    assert [p["name"] for p in container["ports"]] == ["metrics"]


@pytest.mark.parametrize("values", [[], ["webhook.enabled=false"], ["webhook.tls.mode=secret", "webhook.tls.existingSecret=s"]])
def test_operator_args_are_accepted_by_the_real_cli(chart: Any, values: list[str]) -> None:
    dep = chart.find(chart.documents(chart.template(*values)), "Deployment", "-operator")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = build_parser(args).parse_args(args)  # SystemExit (a failure) on an unknown option
    assert parsed.command == "operator"
    assert str(parsed.signing_key) == "/etc/modelroute/signing/signing-key.pem"
    mounts = {m["mountPath"] for m in dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert "/etc/modelroute/signing" in mounts


def _rules(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = doc["rules"]
    return rules


def test_rbac_is_least_privilege(chart: Any, default_docs: list[dict[str, Any]]) -> None:
    cluster_roles = [d for d in default_docs if d["kind"] == "ClusterRole"]
    assert sorted(r["metadata"]["name"] for r in cluster_roles) == ["mr-modelroute-operator", "mr-modelroute-webhook"]
    for cluster_role in cluster_roles:
        for rule in _rules(cluster_role):
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            assert "secrets" not in rule["resources"], "no cluster-wide Secret access"
            if "mutatingwebhookconfigurations" in rule["resources"]:
                assert rule["resourceNames"] == ["mr-modelroute"]
            if "configmaps" in rule["resources"] and set(rule["verbs"]) - {"create"}:
                assert rule["resourceNames"] == ["modelroute-routes"]
    for role in (chart.find(default_docs, "Role", "-operator"), chart.find(default_docs, "Role", "-webhook")):
        assert role["metadata"]["namespace"] == chart.namespace
        for rule in _rules(role):
            if set(rule["verbs"]) - {"create"}:
                assert rule.get("resourceNames"), f"{rule} must name its objects"
    assert not [d for d in default_docs if d["kind"] == "ClusterRoleBinding" and "secret" in d["metadata"]["name"]]
    # The operator no longer touches the webhook's TLS; the webhook may only keep its TLS and caBundle.
    operator_resources = {r for d in ("ClusterRole", "Role") for rule in _rules(chart.find(default_docs, d, "-operator"))
                          for r in rule["resources"]}
    assert not operator_resources & {"mutatingwebhookconfigurations", "secrets"}
    webhook_rules = [*_rules(chart.find(default_docs, "ClusterRole", "-webhook")), *_rules(chart.find(default_docs, "Role", "-webhook"))]
    assert {r for rule in webhook_rules for r in rule["resources"]} == {"mutatingwebhookconfigurations", "secrets"}
    assert [rule["resourceNames"] for rule in webhook_rules if "secrets" in rule["resources"] and "get" in rule["verbs"]] == [
        ["mr-modelroute-webhook-tls"]]


@pytest.mark.parametrize("values", [[], ["webhook.tls.mode=secret", "webhook.tls.existingSecret=s"]])
def test_webhook_is_its_own_deployment_under_its_own_serviceaccount(chart: Any, values: list[str]) -> None:
    docs = chart.documents(chart.template(*values))
    dep = chart.find(docs, "Deployment", "-webhook")
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert pod["serviceAccountName"] == "mr-modelroute-webhook"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "webhook", "scheme": "HTTPS"}
    args = container["args"]
    parsed = build_parser(args).parse_args(args)  # SystemExit (a failure) on an unknown option
    assert parsed.command == "webhook" and parsed.webhook_listen == "0.0.0.0:9443"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(parsed.signing_key).startswith("/etc/modelroute/signing/") and "/etc/modelroute/signing" in mounts
    # The Service selects the webhook pods only: the operator may be scaled to 0 without effect.
    svc = chart.find(docs, "Service", "-webhook")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    operator_labels = chart.find(docs, "Deployment", "-operator")["spec"]["template"]["metadata"]["labels"]
    assert not svc["spec"]["selector"].items() <= operator_labels.items()
    managed = not values
    assert pod["automountServiceAccountToken"] is managed
    assert chart.find(docs, "ServiceAccount", "-webhook")["automountServiceAccountToken"] is managed
    assert bool([d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-webhook")]) is managed
    assert parsed.webhook_tls == ("managed" if managed else "files")


def test_webhook_replicas_get_a_disruption_budget(chart: Any, default_docs: list[dict[str, Any]]) -> None:
    assert not [d for d in default_docs if d["kind"] == "PodDisruptionBudget"]  # one replica: nothing to keep
    docs = chart.documents(chart.template("webhook.replicas=2"))
    assert chart.find(docs, "Deployment", "-webhook")["spec"]["replicas"] == 2
    pdb = chart.find(docs, "PodDisruptionBudget", "-webhook")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == chart.find(docs, "Service", "-webhook")["spec"]["selector"]
    off = chart.documents(chart.template("webhook.replicas=2", "webhook.podDisruptionBudget.enabled=false"))
    assert not [d for d in off if d["kind"] == "PodDisruptionBudget"]


def test_webhook_disabled_renders_no_webhook_objects(chart: Any) -> None:
    docs = chart.documents(chart.template("webhook.enabled=false"))
    assert not [d for d in docs if "webhook" in d["metadata"]["name"] or d["kind"] == "MutatingWebhookConfiguration"]


def test_secret_read_only_in_listed_namespaces(chart: Any) -> None:
    docs = chart.documents(chart.template("rbac.secretReadNamespaces={team-a,team-b}"))
    bindings = [d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-secret-reader")]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    reader = chart.find(docs, "ClusterRole", "-secret-reader")
    assert _rules(reader) == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"].endswith("-secret-reader")]


def test_webhook_configuration(chart: Any, default_docs: list[dict[str, Any]]) -> None:
    mwc = chart.find(default_docs, "MutatingWebhookConfiguration")
    hooks = {h["name"]: h for h in mwc["webhooks"]}
    assert set(hooks) == {"pods.inject.modelroute.dev", "namespaces.inject.modelroute.dev"}
    assert hooks["pods.inject.modelroute.dev"]["failurePolicy"] == "Ignore"
    assert hooks["namespaces.inject.modelroute.dev"]["failurePolicy"] == "Fail"
    settings = InjectionSettings(image="i", operator_public_key_pem="k", operator_namespace="ns")
    served = {r.resource.canonical for r in build_app(settings).router.routes() if r.method == "POST" and r.resource}
    svc = chart.find(default_docs, "Service", "-webhook")
    for hook in hooks.values():
        assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"]
        assert hook["reinvocationPolicy"] == "IfNeeded"
        assert hook["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                  "resources": ["pods"], "scope": "Namespaced"}]
        names = hook["namespaceSelector"]["matchExpressions"][0]
        assert names["key"] == "kubernetes.io/metadata.name" and names["operator"] == "NotIn"
        assert {"kube-system", "kube-public", "kube-node-lease", chart.namespace} <= set(names["values"])
        service = hook["clientConfig"]["service"]
        assert service["path"] in served and service["name"] == svc["metadata"]["name"]
        assert "caBundle" not in hook["clientConfig"]  # the webhook writes it; helm must not reset it


def test_examples_are_valid_modelroutes(chart: Any) -> None:
    from modelroute.api.v1alpha1 import ModelRoute

    crd = yaml.safe_load((chart.path / "crds" / "modelroute.dev_modelroutes.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    examples = sorted((chart.path / "examples").glob("*.yaml"))
    assert [p.stem for p in examples] == ["classification", "extraction", "summarization"]
    for path in examples:
        doc = yaml.safe_load(path.read_text())
        ModelRoute.model_validate(doc)
        jsonschema.Draft4Validator(schema).validate(doc)  # OpenAPI 3.0 schemas use draft-4 keywords


def test_notes_mention_next_steps(chart: Any) -> None:
    notes = Path(chart.path / "templates" / "NOTES.txt").read_text()
    assert "modelroute.dev/inject" in notes and "examples/" in notes


def test_gate_datasets_are_readable_only_by_name(chart: Any, default_docs: list[dict[str, Any]]) -> None:
    def configmap_gets(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        role = chart.find(docs, "ClusterRole", "-operator")
        return [r for r in _rules(role) if "configmaps" in r["resources"] and r["verbs"] == ["get"]]

    assert configmap_gets(default_docs) == [], "no gate datasets: no extra ConfigMap read"
    docs = chart.documents(chart.template("rbac.gateConfigMaps={golden,golden-v2}"))
    assert configmap_gets(docs) == [{"apiGroups": [""], "resources": ["configmaps"],
                                     "resourceNames": ["golden", "golden-v2"], "verbs": ["get"]}]


def test_model_registry_value_reaches_the_operator_as_a_mounted_file(chart: Any, default_docs: list[dict[str, Any]]) -> None:
    def operator(docs: list[dict[str, Any]]) -> dict[str, Any]:
        pod: dict[str, Any] = chart.find(docs, "Deployment", "-operator")["spec"]["template"]
        return pod

    assert not [d for d in default_docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-model-registry")]
    assert not [a for a in operator(default_docs)["spec"]["containers"][0]["args"] if a.startswith("--model-registry")]
    docs = chart.documents(chart.template(values=Path(__file__).parent / "values" / "custom.yaml"))
    cm = chart.find(docs, "ConfigMap", "-model-registry")
    registry = parse_registry(cm["data"]["registry.yaml"], "registry.yaml")  # what the operator reads at start-up
    window = registry.window(Provider.OPENAI_COMPATIBLE, "llama-3.1-8b")
    assert window is not None and window.context == 8192
    pod = operator(docs)
    container = pod["spec"]["containers"][0]
    parsed = build_parser(container["args"]).parse_args(container["args"])
    assert str(parsed.model_registry) == "/etc/modelroute/registry/registry.yaml"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/modelroute/registry"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    assert pod["metadata"]["annotations"]["checksum/model-registry"]  # a changed registry restarts the operator


@pytest.mark.parametrize(("values", "gate"), [
    ([], StartGate()),
    (["sidecar.startGate.python=/usr/local/bin/python3", "sidecar.startGate.timeoutSeconds=900",
      "sidecar.startGate.pollIntervalMs=100"], StartGate(timeout_seconds=900, poll_interval_ms=100, python="/usr/local/bin/python3")),
])
def test_start_gate_values_reach_the_injected_hook(chart: Any, values: list[str], gate: StartGate) -> None:
    dep = chart.find(chart.documents(chart.template(*values)), "Deployment", "-webhook")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    settings = settings_from_args(build_parser(args).parse_args(args), "pem")  # what the webhook injects with
    assert settings.start_gate == gate
    pod = {"metadata": {"namespace": "apps", "annotations": {"modelroute.dev/inject": "true"}},
           "spec": {"containers": [{"name": "app", "image": "app:1"}]}}
    (sidecar,) = next(op["value"] for op in patch(pod, settings) if op["path"] == "/spec/initContainers")
    command = sidecar["lifecycle"]["postStart"]["exec"]["command"]
    assert command[:4] == [gate.python, "-I", "-S", "-c"]
    assert f"end=time.monotonic()+{gate.timeout_seconds}\n" in command[4]
    assert f"time.sleep({gate.poll_interval_ms / 1000})" in command[4]


def test_a_pinned_lifecycle_date_reaches_the_operator_and_none_by_default(chart: Any, default_docs: list[dict[str, Any]]) -> None:
    def env(docs: list[dict[str, Any]]) -> dict[str, Any]:
        container = chart.find(docs, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container["env"]}
    assert ENV_LIFECYCLE_DATE not in env(default_docs)  # a real cluster checks retirements against the real date
    pinned = env(chart.documents(chart.template("operator.lifecycleDate=2027-02-01")))
    assert pinned[ENV_LIFECYCLE_DATE] == "2027-02-01"
