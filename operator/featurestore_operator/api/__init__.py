"""The one typed contract: FeatureStore spec/status, operator config, and the generated CRD."""

from .config import OperatorConfig
from .resolve import resolve
from .resource import (
    API_VERSION,
    FINALIZER,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    FeatureStore,
    SpecError,
    parse_featurestore,
    parse_spec,
)
from .spec import DeletionPolicy, FeatureStoreSpec, Provider
from .status import Condition, ConditionType, FeatureStoreStatus, Phase

__all__ = [
    "API_VERSION",
    "FINALIZER",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Condition",
    "ConditionType",
    "DeletionPolicy",
    "FeatureStore",
    "FeatureStoreSpec",
    "FeatureStoreStatus",
    "OperatorConfig",
    "Phase",
    "Provider",
    "SpecError",
    "parse_featurestore",
    "parse_spec",
    "resolve",
]
