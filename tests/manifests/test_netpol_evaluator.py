"""The NetworkPolicy evaluator against Kubernetes' own semantics, one case per row.

The rows are the policies of the Kubernetes documentation ("Network Policies": default deny /
allow all, per direction) plus the API server's defaulting of `policyTypes`
(SetDefaults_NetworkPolicy: absent or empty -> Ingress, plus Egress when there is an egress rule).
Each row is evaluated for a connection into a selected pod and for one out of it.
"""

from __future__ import annotations

from typing import Any

import pytest
from netpol import Pod, allowed

pytestmark = pytest.mark.manifests

DB = Pod("db", "ns", {"role": "db"})
CLIENT = Pod("client", "ns", {"role": "client"})
ALLOW_ALL: list[dict[str, Any]] = [{}]


def _policy(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"podSelector": {"matchLabels": {"role": "db"}}, **spec},
    }


CASES = {
    # name: (spec, ingress into db allowed, egress out of db allowed)
    "default deny all ingress": ({"policyTypes": ["Ingress"]}, False, True),
    "allow all ingress": ({"policyTypes": ["Ingress"], "ingress": ALLOW_ALL}, True, True),
    "default deny all egress": ({"policyTypes": ["Egress"]}, True, False),
    "allow all egress": ({"policyTypes": ["Egress"], "egress": ALLOW_ALL}, True, True),
    "default deny both": ({"policyTypes": ["Ingress", "Egress"]}, False, False),
    "no policyTypes, no rules: ingress only": ({}, False, True),
    "no policyTypes, egress rule: both directions": ({"egress": ALLOW_ALL}, False, True),
    "no policyTypes, egress []: ingress only, egress stays open": ({"egress": []}, False, True),
    "policyTypes [] is defaulted like an absent list": ({"policyTypes": []}, False, True),
    "policyTypes [] with a deny-all egress rule set": (
        {"policyTypes": [], "egress": [{"to": [{"podSelector": {"matchLabels": {"x": "y"}}}]}]},
        False,
        False,
    ),
    "egress-only policy leaves ingress open": (
        {"policyTypes": ["Egress"], "egress": [{"ports": [{"port": 5432}]}]},
        True,
        False,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_policy_types_follow_kubernetes_defaulting(name: str) -> None:
    spec, ingress_open, egress_open = CASES[name]
    policies = [_policy(**spec)]
    assert allowed(policies, CLIENT, DB, 80) is ingress_open, "into db"
    assert allowed(policies, DB, CLIENT, 80) is egress_open, "out of db"


def test_an_egress_rule_with_ports_admits_only_those_ports() -> None:
    policies = [_policy(policyTypes=["Egress"], egress=[{"ports": [{"port": 5432}]}])]
    assert allowed(policies, DB, CLIENT, 5432)
    assert not allowed(policies, DB, CLIENT, 5433)
