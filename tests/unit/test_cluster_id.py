"""The cluster identity the operator labels cloud resources with (backends/cluster.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from featurestore_operator.api import OperatorConfig
from featurestore_operator.backends.cluster import with_cluster_id


def getter(objects: dict[str, dict[str, Any]]):
    async def get(kind: str, api_version: str, namespace: None, name: str) -> dict[str, Any] | None:
        return objects.get(f"{kind}/{name}")

    return get


def test_kube_system_uid_fills_the_cluster_id() -> None:
    got = asyncio.run(
        with_cluster_id(OperatorConfig(), getter({"Namespace/kube-system": {"metadata": {"uid": "u-1"}}}))
    )
    assert got.cluster_id == "u-1"


def test_configured_cluster_id_wins_and_missing_one_stops_the_operator() -> None:
    assert asyncio.run(with_cluster_id(OperatorConfig(cluster_id="mine"), getter({}))).cluster_id == "mine"
    with pytest.raises(RuntimeError, match="FSO_CLUSTER_ID"):
        asyncio.run(with_cluster_id(OperatorConfig(), getter({})))
