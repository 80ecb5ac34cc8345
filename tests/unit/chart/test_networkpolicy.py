"""The sidecar admin NetworkPolicy (issue 14, item 11): who may reach the admin port of injected pods.

``admits`` evaluates the rendered policies the way the NetworkPolicy API defines it (a pod selected
by any policy admits only what some rule allows), so the tests state reachability, not YAML shape.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from modelroute.operator.injection import names

NS = "modelroute-system"
OPERATOR = ({"kubernetes.io/metadata.name": NS},
            {"app.kubernetes.io/name": "modelroute", "app.kubernetes.io/instance": "mr", "app.kubernetes.io/component": "operator"})
SCRAPER = ({"kubernetes.io/metadata.name": "monitoring"}, {"modelroute.dev/metrics-scraper": "true"})
STRANGER = ({"kubernetes.io/metadata.name": "team-a"}, {"app": "curious"})
SIDECAR_POD = {names.SIDECAR_LABEL: "true", "app": "web"}
PORTS = {names.ADMIN_PORT_NAME: 8788}   # the named container port of the injected sidecar


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    return selector is not None and all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_ok(peer: dict[str, Any], source: tuple[dict[str, str], dict[str, str]], ip: str | None) -> bool:
    if "ipBlock" in peer:
        return ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network(peer["ipBlock"]["cidr"])
    ns_labels, pod_labels = source
    return _matches(peer.get("namespaceSelector"), ns_labels) and _matches(peer.get("podSelector", {}), pod_labels)


def _port_ok(spec: dict[str, Any], port: int, protocol: str) -> bool:
    if spec.get("protocol", "TCP") != protocol:
        return False
    first = int(PORTS[spec["port"]] if isinstance(spec["port"], str) else spec["port"])
    return first <= port <= int(spec.get("endPort", first))


def admits(policies: list[dict[str, Any]], pod_ns: str, source: tuple[dict[str, str], dict[str, str]], port: int,
           protocol: str = "TCP", ip: str | None = None) -> bool:
    selecting = [p for p in policies if p["metadata"]["namespace"] == pod_ns and _matches(p["spec"]["podSelector"], SIDECAR_POD)]
    if not selecting:
        return True  # not isolated
    return any(
        ("from" not in rule or any(_peer_ok(peer, source, ip) for peer in rule["from"]))
        and ("ports" not in rule or any(_port_ok(s, port, protocol) for s in rule["ports"]))
        for p in selecting for rule in p["spec"]["ingress"]
    )


def policies(chart: Any, *set_args: str) -> list[dict[str, Any]]:
    return [d for d in chart.documents(chart.template(*set_args)) if d["kind"] == "NetworkPolicy"]


def test_nothing_without_namespaces(chart: Any) -> None:
    assert policies(chart) == []
    assert policies(chart, "adminNetworkPolicy.namespaces={team-a}", "adminNetworkPolicy.enabled=false") == []


def test_only_the_operator_and_scrapers_reach_the_admin_port(chart: Any) -> None:
    found = policies(chart, "adminNetworkPolicy.namespaces={team-a,team-b}")
    assert sorted(p["metadata"]["namespace"] for p in found) == ["team-a", "team-b"]
    for ns in ("team-a", "team-b"):
        assert admits(found, ns, OPERATOR, 8788)
        assert admits(found, ns, SCRAPER, 8788)
        assert not admits(found, ns, STRANGER, 8788)
        assert not admits(found, ns, (OPERATOR[0], {"app": "other"}), 8788)  # the namespace alone is not enough
        assert not admits(found, ns, (STRANGER[0], OPERATOR[1]), 8788)       # nor are the labels alone
        # the app's own ports (and UDP) stay open: selecting a pod must not cut off its app
        for port, proto in ((8080, "TCP"), (8787, "TCP"), (8789, "TCP"), (1, "TCP"), (65535, "TCP"), (53, "UDP")):
            assert admits(found, ns, STRANGER, port, proto), (port, proto)
    assert admits(found, "team-c", STRANGER, 8788)  # an unlisted namespace gets no policy (hence: list them all)


def test_operator_selector_matches_the_operator_pod(chart: Any) -> None:
    docs = chart.documents(chart.template("adminNetworkPolicy.namespaces={team-a}"))
    dep = chart.find(docs, "Deployment", "-operator")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert admits([policy], "team-a", ({"kubernetes.io/metadata.name": chart.namespace}, pod_labels), 8788)
    webhook = chart.find(docs, "Deployment", "-webhook")["spec"]["template"]["metadata"]["labels"]
    assert not admits([policy], "team-a", ({"kubernetes.io/metadata.name": chart.namespace}, webhook), 8788)


def test_options_scraper_cidrs_and_closed_other_ports(chart: Any) -> None:
    found = policies(chart, "adminNetworkPolicy.namespaces={team-a}", "adminNetworkPolicy.scraperPodLabels=null",
                     "adminNetworkPolicy.allowFromCIDRs={10.9.0.0/16}", "adminNetworkPolicy.openOtherPorts=false")
    assert not admits(found, "team-a", SCRAPER, 8788)
    assert admits(found, "team-a", STRANGER, 8788, ip="10.9.3.4")
    assert not admits(found, "team-a", STRANGER, 8080)  # your own policies govern the app's ports then
    assert admits(found, "team-a", OPERATOR, 8788)


def test_other_ports_follow_a_custom_admin_port(chart: Any) -> None:
    PORTS[names.ADMIN_PORT_NAME] = 9000
    try:
        found = policies(chart, "adminNetworkPolicy.namespaces={team-a}", "sidecar.adminPort=9000")
        assert not admits(found, "team-a", STRANGER, 9000)
        assert admits(found, "team-a", STRANGER, 8788) and admits(found, "team-a", STRANGER, 8999)
    finally:
        PORTS[names.ADMIN_PORT_NAME] = 8788
