"""A small NetworkPolicy evaluator for the manifest tests: may pod A open a connection to B:P?

It follows the networking.k8s.io/v1 semantics: a pod selected by no policy of a direction is
open in that direction; once selected, a connection needs one rule of one selecting policy that
matches the peer and the port, and it needs that on both sides (egress of the source, ingress of
the destination). Peers are pods (labels + namespace) or addresses outside the cluster; pods get
addresses from POD_CIDR so that `ipBlock` rules apply to them as a CNI would apply them.
Not modelled: Services (a connection names the pod behind the Service) and SCTP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any

POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
_pod_numbers = count(10)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # named container ports
    ip: str = field(default_factory=lambda: str(POD_CIDR[next(_pod_numbers)]))


@dataclass(frozen=True)
class External:
    """An address outside the cluster (a provider API, the cloud metadata endpoint...)."""

    ip: str


Peer = Pod | External


def namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector applied to labels ({} selects everything)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[op]
        if not ok:
            return False
    return True


def _types(policy: Obj) -> list[str]:
    """policyTypes as the API server defaults them (SetDefaults_NetworkPolicy): an absent or empty
    list becomes Ingress, plus Egress only when the policy has at least one egress rule."""
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _selecting(policies: Iterable[Obj], pod: Pod, direction: str) -> list[Obj]:
    """The policies of one direction that select pod."""
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in _types(p)
        and selects(p["spec"].get("podSelector") or {}, pod.labels)
    ]


def _in_block(ip: str, block: Mapping[str, Any]) -> bool:
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))


def _peer_matches(entry: Mapping[str, Any], peer: Peer, policy_namespace: str) -> bool:
    if "ipBlock" in entry:
        return _in_block(peer.ip, entry["ipBlock"])
    if isinstance(peer, External):
        return False
    if "namespaceSelector" in entry:
        in_namespace = selects(entry["namespaceSelector"], namespace_labels(peer.namespace))
    else:
        in_namespace = peer.namespace == policy_namespace
    return in_namespace and selects(entry.get("podSelector") or {}, peer.labels)


def _port_matches(entry: Mapping[str, Any], port: int, protocol: str, target: Peer) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    if "port" not in entry:
        return True
    wanted = entry["port"]
    if isinstance(wanted, str):
        return isinstance(target, Pod) and target.ports.get(wanted) == port
    return wanted <= port <= entry.get("endPort", wanted)


def _rule_allows(
    rule: Mapping[str, Any],
    peers_key: str,
    peer: Peer,
    target: Peer,
    port: int,
    proto: str,
    ns: str,
) -> bool:
    ports = rule.get("ports") or []
    if ports and not any(_port_matches(p, port, proto, target) for p in ports):
        return False
    peers = rule.get(peers_key) or []
    return not peers or any(_peer_matches(entry, peer, ns) for entry in peers)


def _side_allows(
    policies: Iterable[Obj],
    pod: Pod,
    direction: str,
    peer: Peer,
    target: Peer,
    port: int,
    proto: str,
) -> bool:
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = _selecting(policies, pod, direction)
    if not selecting:
        return True
    return any(
        _rule_allows(rule, peers_key, peer, target, port, proto, pod.namespace)
        for policy in selecting
        for rule in policy["spec"].get(rules_key) or []
    )


def allowed(
    policies: Iterable[Obj], source: Peer, target: Peer, port: int, protocol: str = "TCP"
) -> bool:
    """Whether source may open a connection to target on port under these NetworkPolicies."""
    policies = list(policies)
    egress = isinstance(source, External) or _side_allows(
        policies, source, "Egress", target, target, port, protocol
    )
    ingress = isinstance(target, External) or _side_allows(
        policies, target, "Ingress", source, target, port, protocol
    )
    return egress and ingress


def selecting_policies(policies: Iterable[Obj], pod: Pod, direction: str) -> list[str]:
    """Names of the policies of one direction that select pod."""
    return [p["metadata"]["name"] for p in _selecting(policies, pod, direction)]


def allowing_policies(
    policies: Iterable[Obj], source: Pod, target: Peer, port: int, protocol: str = "TCP"
) -> list[str]:
    """Names of the egress policies of source with a rule that lets it reach target:port."""
    return [
        p["metadata"]["name"]
        for p in _selecting(policies, source, "Egress")
        if any(
            _rule_allows(rule, "to", target, target, port, protocol, source.namespace)
            for rule in p["spec"].get("egress") or []
        )
    ]


# --------------------------------------------------------------------------------------------
# Pods of rendered objects, with the labels their controllers add
# --------------------------------------------------------------------------------------------


def _ports(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    return {
        p["name"]: p["containerPort"]
        for c in pod_spec.get("containers", [])
        for p in c.get("ports", [])
        if "name" in p
    }


def _template_pod(name: str, namespace: str, template: Obj, extra: Mapping[str, str]) -> Pod:
    labels = {**(template.get("metadata", {}).get("labels") or {}), **extra}
    return Pod(name, namespace, labels, _ports(template.get("spec", {})))


def rendered_pods(objs: Iterable[Obj]) -> dict[str, Pod]:
    """Every pod the rendered objects create, keyed "<Kind>/<name>[ <group>]".

    Labels: the pod template's, plus what the controllers add -- KubeRay `ray.io/cluster` and
    `ray.io/node-type`, KServe `serving.kserve.io/inferenceservice` and `component: predictor`.
    """
    pods: dict[str, Pod] = {}
    for obj in objs:
        kind, meta, spec = obj["kind"], obj["metadata"], obj.get("spec", {})
        name, namespace = meta["name"], meta.get("namespace", "default")
        where = f"{kind}/{name}"
        if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            pods[where] = _template_pod(where, namespace, spec["template"], {})
        elif kind == "RayCluster":
            ray = {"ray.io/cluster": name}
            head = spec["headGroupSpec"]["template"]
            pods[f"{where} head"] = _template_pod(
                f"{where} head", namespace, head, {**ray, "ray.io/node-type": "head"}
            )
            for group in spec.get("workerGroupSpecs", []):
                key = f"{where} {group['groupName']}"
                pods[key] = _template_pod(
                    key, namespace, group["template"], {**ray, "ray.io/node-type": "worker"}
                )
        elif kind == "InferenceService":
            predictor = spec["predictor"]
            labels = {
                **(predictor.get("labels") or {}),
                "serving.kserve.io/inferenceservice": name,
                "component": "predictor",
            }
            pods[where] = Pod(where, namespace, labels, {"http1": 8080})
    return pods


def network_policies(objs: Iterable[Obj]) -> list[Obj]:
    return [o for o in objs if o["kind"] == "NetworkPolicy"]
