"""What a tier needs, and what happens when it is missing: a skip on a developer's machine, a
failure naming the missing piece under CI (``CI=true``) or ``FSO_REQUIRE_CONTROLPLANE=1`` (set by
hack/test.sh). kind/Docker (tests/e2e) and real GCP are the only skips CI allows."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_CRDS_DIR = REPO_ROOT / "crds"
SUPPORT_CRDS_DIR = REPO_ROOT / "tests" / "support" / "crds"


def truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def required() -> bool:
    return truthy("CI") or truthy("FSO_REQUIRE_CONTROLPLANE")


def missing(what: str, *, module: bool = False) -> NoReturn:
    """A prerequisite is absent: fail when required, else skip (the test, or the module)."""
    if required():
        pytest.fail(f"missing prerequisite (required with CI=true / FSO_REQUIRE_CONTROLPLANE=1): {what}", pytrace=False)
    pytest.skip(what, allow_module_level=module)


def project_crd_files() -> list[Path]:
    """The project's CRDs (crds/*.yaml)."""
    return sorted(PROJECT_CRDS_DIR.glob("*.yaml")) + sorted(PROJECT_CRDS_DIR.glob("*.yml"))


def support_crd_files() -> list[Path]:
    """Test-only minimal Kubeflow/Istio CRDs (Profile, PodDefault, AuthorizationPolicy)."""
    return sorted(SUPPORT_CRDS_DIR.glob("*.yaml"))


def need_module(name: str, why: str = "", *, module: bool = False) -> ModuleType:
    """``pytest.importorskip`` that honours CI: the module, or :func:`missing` naming it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"Python module {name} ({exc}){': ' + why if why else ''}", module=module)


def not_here(what: str, *, module: bool = False) -> NoReturn:
    """Skip, also under CI: only for what CI may lack (Docker + kind for tests/e2e/test_kind.py,
    real GCP). Anything this machine can run goes through :func:`missing` instead."""
    pytest.skip(what, allow_module_level=module)


def need_tool(name: str, hint: str) -> str:
    """The path of the executable ``name`` on PATH, or :func:`missing` naming it and ``hint``."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} not on PATH ({hint})")
    return path
