"""render's own quantity parser (no Kubernetes client library in the pure layer)."""

from decimal import Decimal

import pytest
from featurestore_operator.render.pods import quantity


@pytest.mark.parametrize(
    "text, value",
    [
        ("500m", "0.5"),
        ("2", "2"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("1Gi", str(2**30)),
        ("1e3", "1000"),
        ("2k", "2000"),
        ("100M", "100000000"),
        ("250u", "0.00025"),
        (3, "3"),
    ],
)
def test_quantities(text, value):
    assert quantity(text) == Decimal(value)


@pytest.mark.parametrize("bad", ["", "-1", "1.5.2", "2 cores", "1GB"])
def test_not_a_quantity(bad):
    with pytest.raises(ValueError):
        quantity(bad)
