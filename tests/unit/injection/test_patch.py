"""patch(): the injected pod spec, checked by applying the JSONPatch to plain dicts."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from modelroute.operator.injection import InjectionSettings, Resources, decide, patch, plan, reinvocation_plan

PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAabc=\n-----END PUBLIC KEY-----\n"
SETTINGS = InjectionSettings(image="ghcr.io/x/modelroute:0.1.0", operator_public_key_pem=PEM, operator_namespace="modelroute-system")


def pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"generateName": "web-", "namespace": "apps"}
    if annotations is not None:
        meta["annotations"] = {"modelroute.dev/inject": "true", **annotations}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "app:1"}], **spec}}


def injected(p: dict[str, Any], settings: InjectionSettings = SETTINGS) -> dict[str, Any]:
    result: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(p), patch(p, settings))
    return result


def sidecar_of(p: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = p["spec"]["initContainers"][0]
    assert c["name"] == "modelroute-sidecar"
    return c


def test_native_sidecar_first_in_init_containers() -> None:
    p = pod({}, initContainers=[{"name": "migrate", "image": "m"}])
    out = injected(p)
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["modelroute-sidecar", "migrate"]
    assert sidecar_of(out)["restartPolicy"] == "Always"
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]


def test_pod_without_init_containers_volumes_labels_or_annotations() -> None:
    p = {"metadata": {"name": "bare", "namespace": "apps"}, "spec": {"containers": [{"name": "app", "image": "a"}]}}
    out = injected(p)
    assert out["metadata"]["labels"] == {"modelroute.dev/sidecar": "true"}
    assert out["metadata"]["annotations"]["modelroute.dev/admin-port"] == "8788"
    assert len(out["spec"]["initContainers"]) == 1
    assert {v["name"] for v in out["spec"]["volumes"]} >= {"modelroute-podinfo", "modelroute-routes"}


def test_label_and_annotations_are_added_next_to_existing_ones() -> None:
    p = pod({"team": "a"})
    p["metadata"]["labels"] = {"app": "web"}
    out = injected(p)
    assert out["metadata"]["labels"] == {"app": "web", "modelroute.dev/sidecar": "true"}
    ann = out["metadata"]["annotations"]
    assert ann["team"] == "a" and ann["modelroute.dev/admin-port"] == "8788"
    assert ann["modelroute.dev/operator-public-key"] == PEM


def test_user_supplied_public_key_annotation_is_overwritten() -> None:
    out = injected(pod({"modelroute.dev/operator-public-key": "attacker"}))
    assert out["metadata"]["annotations"]["modelroute.dev/operator-public-key"] == PEM


def test_sidecar_command_line_ports_and_probes() -> None:
    c = sidecar_of(injected(pod({})))
    assert c["image"] == SETTINGS.image
    args = c["args"]
    assert args[0] == "sidecar"
    flags = dict(zip(args[1::2], args[2::2], strict=True))
    assert flags == {
        "--listen": "127.0.0.1:8787",
        "--admin-listen": "0.0.0.0:8788",
        "--operator-public-key": "/etc/modelroute/pod/operator-public-key",
        "--bundle-dir": "/etc/modelroute/bundle",
        "--pod-labels-file": "/etc/modelroute/pod/labels",
    }
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8788, "scheme": "HTTP"}
    assert "startupProbe" not in c  # the postStart hook gates the app instead (test_start_gate.py)
    assert c["lifecycle"]["postStart"]["exec"]["command"][:3] == ["/opt/modelroute/bin/python", "-I", "-S"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["ports"] == [{"name": "mr-admin", "containerPort": 8788, "protocol": "TCP"}]


def test_downward_api_env_and_volume() -> None:
    out = injected(pod({}))
    env = {e["name"]: e for e in sidecar_of(out)["env"]}
    assert env["MODELROUTE_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["MODELROUTE_POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["MODELROUTE_POD_UID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.uid"  # pushes bound to the UID
    assert env["MODELROUTE_STATE_DIR"]["value"] == "/tmp/state"  # under the tmp emptyDir: kept across restarts
    mounts = {m["mountPath"]: m["name"] for m in sidecar_of(out)["volumeMounts"]}
    assert mounts["/tmp"] == "modelroute-tmp"
    assert env["MODELROUTE_SECRETS_DIR"]["value"] == "/var/run/secrets/modelroute"
    assert env["PYTHONOPTIMIZE"]["value"] == "2"  # the image ships -OO bytecode for it (Dockerfile)
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    items = {i["path"]: i["fieldRef"]["fieldPath"] for i in vols["modelroute-podinfo"]["downwardAPI"]["items"]}
    assert items == {"labels": "metadata.labels",
                     "operator-public-key": "metadata.annotations['modelroute.dev/operator-public-key']"}
    assert vols["modelroute-routes"]["configMap"] == {"name": "modelroute-routes", "optional": True}


def test_security_context_is_locked_down() -> None:
    sc = sidecar_of(injected(pod({})))["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_sidecar_gets_no_service_account_token_and_pod_setting_is_kept() -> None:
    p = pod({}, automountServiceAccountToken=True)
    out = injected(p)
    assert out["spec"]["automountServiceAccountToken"] is True
    mounts = {m["mountPath"]: m["name"] for m in sidecar_of(out)["volumeMounts"]}
    # an emptyDir over the token path: the apiserver's ServiceAccount plugin skips containers
    # that already mount something there
    assert mounts["/var/run/secrets/kubernetes.io/serviceaccount"] == "modelroute-no-sa-token"
    assert "automountServiceAccountToken" not in injected(pod({}))["spec"]


def test_resources_from_settings() -> None:
    settings = InjectionSettings(image="i", operator_public_key_pem=PEM, operator_namespace="op",
                                 resources=Resources(cpu_request="100m", memory_request="50Mi", cpu_limit="1", memory_limit="100Mi"))
    res = sidecar_of(injected(pod({}), settings))["resources"]
    assert res == {"requests": {"cpu": "100m", "memory": "50Mi"}, "limits": {"cpu": "1", "memory": "100Mi"}}


def test_resources_overridden_by_annotations_and_removable() -> None:
    p = pod({"modelroute.dev/sidecar-cpu-request": "250m", "modelroute.dev/sidecar-memory-limit": "1Gi",
             "modelroute.dev/sidecar-cpu-limit": "2", "modelroute.dev/sidecar-memory-request": ""})
    res = sidecar_of(injected(p))["resources"]
    assert res == {"requests": {"cpu": "250m"}, "limits": {"cpu": "2", "memory": "1Gi"}}


def test_bad_resource_annotation_is_ignored_with_a_warning() -> None:
    p = pod({"modelroute.dev/sidecar-memory-limit": "lots"})
    result = plan(p, SETTINGS)
    res = sidecar_of(jsonpatch.apply_patch(p, result.ops))["resources"]
    assert res["limits"]["memory"] == "192Mi"
    assert any("sidecar-memory-limit" in w and "lots" in w for w in result.warnings)


def test_credentials_secret_mounted_into_sidecar_only() -> None:
    out = injected(pod({"modelroute.dev/credentials": "llm-keys"}))
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    secret_vols = [n for n, v in vols.items() if "secret" in v]
    assert secret_vols == ["modelroute-credentials-0"]
    assert vols["modelroute-credentials-0"]["secret"]["secretName"] == "llm-keys"
    mount = next(m for m in sidecar_of(out)["volumeMounts"] if m["name"] == "modelroute-credentials-0")
    assert mount == {"name": "modelroute-credentials-0", "mountPath": "/var/run/secrets/modelroute/llm-keys", "readOnly": True}
    assert "subPath" not in mount  # subPath mounts never see Secret updates (rotation)
    for c in out["spec"]["containers"]:
        assert not any(m["name"].startswith("modelroute-") for m in c.get("volumeMounts", []))


def test_several_credentials_secrets_and_invalid_names() -> None:
    p = pod({"modelroute.dev/credentials": "a-keys, b.keys,,a-keys,Bad_Name"})
    result = plan(p, SETTINGS)
    side = sidecar_of(jsonpatch.apply_patch(p, result.ops))
    paths = [m["mountPath"] for m in side["volumeMounts"] if m["name"].startswith("modelroute-credentials-")]
    assert paths == ["/var/run/secrets/modelroute/a-keys", "/var/run/secrets/modelroute/b.keys"]
    assert any("Bad_Name" in w for w in result.warnings)


def test_inject_env_sets_base_urls_without_overriding() -> None:
    p = pod({"modelroute.dev/inject-env": "true"},
            containers=[{"name": "app", "image": "a", "env": [{"name": "OPENAI_BASE_URL", "value": "https://mine"}]},
                        {"name": "worker", "image": "w"}],
            initContainers=[{"name": "warmup", "image": "w"}])
    out = injected(p)
    app, worker = out["spec"]["containers"]
    assert {e["name"]: e["value"] for e in app["env"]} == {
        "OPENAI_BASE_URL": "https://mine",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8787",
        "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:8787",
    }
    assert {e["name"]: e["value"] for e in worker["env"]}["OPENAI_BASE_URL"] == "http://127.0.0.1:8787/v1"
    sidecar, warmup = out["spec"]["initContainers"]
    assert sidecar["name"] == "modelroute-sidecar" and not any(e["name"].endswith("_BASE_URL") for e in sidecar["env"])
    assert {e["name"] for e in warmup["env"]} == {"OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL"}


def test_no_env_without_the_opt_in() -> None:
    out = injected(pod({}))
    assert "env" not in out["spec"]["containers"][0]


def test_port_annotations_move_listeners_probes_and_env() -> None:
    out = injected(pod({"modelroute.dev/admin-port": "9901", "modelroute.dev/port": "9900", "modelroute.dev/inject-env": "true"}))
    c = sidecar_of(out)
    assert "127.0.0.1:9900" in c["args"] and "0.0.0.0:9901" in c["args"]
    assert c["readinessProbe"]["httpGet"]["port"] == 9901
    assert out["metadata"]["annotations"]["modelroute.dev/admin-port"] == "9901"
    assert out["spec"]["containers"][0]["env"][0] == {"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:9900/v1"}


def test_bad_port_annotation_falls_back_with_warning() -> None:
    result = plan(pod({"modelroute.dev/admin-port": "http"}), SETTINGS)
    assert any("admin-port" in w for w in result.warnings)
    out = jsonpatch.apply_patch(pod({"modelroute.dev/admin-port": "http"}), result.ops)
    assert out["metadata"]["annotations"]["modelroute.dev/admin-port"] == "8788"


def test_injected_pod_is_not_injected_again() -> None:
    out = injected(pod({"modelroute.dev/inject-env": "true"}))
    d = decide(out, {}, SETTINGS)
    assert not d.inject and d.already_injected
    assert reinvocation_plan(out, SETTINGS).ops == []


def test_reinvocation_adds_env_to_containers_added_by_another_webhook() -> None:
    out = injected(pod({"modelroute.dev/inject-env": "true"}))
    out["spec"]["containers"].append({"name": "late", "image": "l"})
    again = jsonpatch.apply_patch(out, reinvocation_plan(out, SETTINGS).ops)
    assert [c["name"] for c in again["spec"]["initContainers"]].count("modelroute-sidecar") == 1
    assert {e["name"] for e in again["spec"]["containers"][1]["env"]} == {"OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL"}


@pytest.mark.parametrize("key", ["a/b", "x~y"])
def test_escape_of_keys(key: str) -> None:
    p = pod({key: "v"})
    p["metadata"]["labels"] = {key: "v"}
    out = injected(p)
    assert out["metadata"]["labels"][key] == "v" and out["metadata"]["labels"]["modelroute.dev/sidecar"] == "true"


def test_only_add_operations() -> None:
    ops = patch(pod({"modelroute.dev/credentials": "k", "modelroute.dev/inject-env": "true"},
                    initContainers=[{"name": "i", "image": "i"}], volumes=[{"name": "data", "emptyDir": {}}]), SETTINGS)
    assert {op["op"] for op in ops} == {"add"}


def test_injected_command_line_and_env_match_the_real_sidecar_cli() -> None:
    from modelroute.cli.main import build_parser
    from modelroute.sidecar import cli as sidecar_cli
    from modelroute.sidecar.config import secrets as sidecar_secrets
    c = sidecar_of(injected(pod({})))
    args = build_parser(c["args"]).parse_args(c["args"])  # SystemExit on an unknown option
    assert args.listen == ("127.0.0.1", 8787) and args.admin_listen == ("0.0.0.0", 8788)
    env = {e["name"] for e in c["env"]}
    assert {sidecar_cli.ENV_POD_NAME, sidecar_cli.ENV_POD_NAMESPACE, sidecar_cli.ENV_POD_UID, sidecar_cli.ENV_STATE_DIR,
            sidecar_secrets.SECRETS_DIR_ENV} <= env
    secrets_dir = next(e["value"] for e in c["env"] if e["name"] == sidecar_secrets.SECRETS_DIR_ENV)
    assert secrets_dir == sidecar_secrets.DEFAULT_SECRETS_DIR
