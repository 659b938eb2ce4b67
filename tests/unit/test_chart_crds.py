"""The Helm chart ships the project's CRDs unchanged: charts/featurestore-operator/files/crds/ (rendered
by templates/crds.yaml, so upgrades reach them) must equal crds/ byte for byte (fix drift with
`bash hack/sync-chart-crds.sh`), and nothing else."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "featurestore-operator"


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_chart_crds_equal_repo_crds():
    repo, chart = _files(ROOT / "crds"), _files(CHART / "files" / "crds")
    assert repo, "crds/ is empty"
    assert set(chart) == set(repo), (
        f"chart files/crds/ has {sorted(chart)}, repo crds/ has {sorted(repo)}: run `bash hack/sync-chart-crds.sh`"
    )
    drifted = [name for name in repo if chart[name] != repo[name]]
    assert not drifted, f"chart CRDs drifted from crds/: {drifted}; run `bash hack/sync-chart-crds.sh`"


def test_the_chart_installs_no_other_crds():
    """HA uses a coordination.k8s.io Lease: no kopf peering CRDs (kopf.dev) come with the chart."""
    assert not (CHART / "charts").exists()
    assert "dependencies" not in yaml.safe_load((CHART / "Chart.yaml").read_text())
