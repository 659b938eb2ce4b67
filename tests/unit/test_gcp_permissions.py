"""The custom IAM roles in deploy/gcp/ (and the GKE quickstart that lists them) grant exactly the
permissions the operator's code calls: the Google Cloud SDK methods called in backends/ are
collected from the source (ast), each mapped to the permission Google documents for its REST
method, and compared with the roles. A new SDK call without a mapping fails here, so does a
permission no code uses (least privilege)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from google.cloud import storage
from google.cloud.iam_admin_v1 import IAMClient
from google.cloud.redis_v1 import CloudRedisClient

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ROOT / "operator" / "featurestore_operator" / "backends"
PROJECT_ROLE = ROOT / "deploy" / "gcp" / "featurestore-operator-role.yaml"
BINDER_ROLE = ROOT / "deploy" / "gcp" / "featurestore-wi-binder-role.yaml"
GKE_PAGE = ROOT / "docs" / "install" / "gke.md"
SDK = (CloudRedisClient, storage.Client, storage.Bucket, storage.Blob, IAMClient)

#: (module, SDK method) -> the IAM permission of the API method it calls; None: no API call.
#: Sources: cloud.google.com/memorystore/docs/redis/access-control, cloud.google.com/storage/docs/
#: access-control/iam-json, cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.
PERMISSIONS: dict[tuple[str, str], str | None] = {
    ("memorystore.py", "create_instance"): "redis.instances.create",
    ("memorystore.py", "get_instance"): "redis.instances.get",
    ("memorystore.py", "update_instance"): "redis.instances.update",
    ("memorystore.py", "delete_instance"): "redis.instances.delete",
    ("memorystore.py", "get_instance_auth_string"): "redis.instances.getAuthString",
    ("memorystore.py", "get_operation"): "redis.operations.get",
    ("gcs.py", "create_bucket"): "storage.buckets.create",
    ("gcs.py", "get_bucket"): "storage.buckets.get",
    ("gcs.py", "list_buckets"): "storage.buckets.list",
    ("gcs.py", "patch"): "storage.buckets.update",
    ("gcs.py", "delete"): "storage.buckets.delete",
    ("gcs.py", "get_iam_policy"): "storage.buckets.getIamPolicy",
    ("gcs.py", "set_iam_policy"): "storage.buckets.setIamPolicy",
    ("gcs.py", "list_blobs"): "storage.objects.list",
    ("gcs.py", "delete_blob"): "storage.objects.delete",
    ("gcs.py", "bucket"): None,  # a local handle, no request
    ("workload_identity.py", "get_iam_policy"): "iam.serviceAccounts.getIamPolicy",
    ("workload_identity.py", "set_iam_policy"): "iam.serviceAccounts.setIamPolicy",
    ("workload_identity.py", "close"): None,  # closes the gRPC channel
    ("longop.py", "labels"): None,  # a prometheus metric's labels(), not storage.Blob.labels
    ("tls.py", "update"): None,  # hashlib's update(), not a GCS request
    ("notebook_access.py", "get_service_account"): None,  # reads a Kubernetes ServiceAccount, not IAM
}


def sdk_calls() -> set[tuple[str, str]]:
    """(module, method) of every call in backends/ whose name is a method of a Google Cloud client
    class: ``x.create_bucket(...)``, and ``self._rpc("get_instance", ...)`` (memorystore's wrapper)."""
    found: set[tuple[str, str]] = set()
    for path in sorted(BACKENDS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name == "_rpc" and node.args and isinstance(node.args[0], ast.Constant):
                name = str(node.args[0].value)
            if not name.startswith("_") and any(hasattr(cls, name) for cls in SDK):
                found.add((path.name, name))
    return found


def derived(prefix: str) -> set[str]:
    calls = sdk_calls()
    unmapped = sorted(calls - PERMISSIONS.keys())
    assert not unmapped, f"map these SDK calls to their IAM permission (or None) in PERMISSIONS: {unmapped}"
    return {p for c in calls if (p := PERMISSIONS[c]) and p.startswith(prefix)}


def role(path: Path) -> set[str]:
    return set(yaml.safe_load(path.read_text())["includedPermissions"])


def test_the_collector_sees_the_calls_of_each_backend():
    calls = sdk_calls()
    assert {("memorystore.py", "create_instance"), ("gcs.py", "create_bucket")} <= calls, calls
    assert ("workload_identity.py", "set_iam_policy") in calls, calls
    assert not PERMISSIONS.keys() - calls, f"stale PERMISSIONS entries: {sorted(PERMISSIONS.keys() - calls)}"


def test_project_role_grants_exactly_what_the_code_calls():
    assert role(PROJECT_ROLE) == derived("redis.") | derived("storage.")


def test_binder_role_grants_exactly_what_the_code_calls():
    assert role(BINDER_ROLE) == derived("iam.")


def test_every_permission_the_code_calls_is_in_a_role():
    assert derived("") == role(PROJECT_ROLE) | role(BINDER_ROLE)


def test_the_gke_quickstart_uses_the_roles_and_no_broad_predefined_role():
    page = GKE_PAGE.read_text()
    for path in (PROJECT_ROLE, BINDER_ROLE):
        assert str(path.relative_to(ROOT)) in page, path
    for permission in sorted(role(PROJECT_ROLE) | role(BINDER_ROLE)):
        assert f"`{permission}`" in page, f"docs/install/gke.md should list {permission}"
    for broad in ("roles/redis.admin", "roles/storage.admin", "roles/iam.serviceAccountAdmin"):
        assert f"--role {broad}" not in page, broad


def granted_roles() -> set[str]:
    """Every predefined role the operator grants: the ``roles/...`` strings bound to module-level
    names in backends/ (``OBJECT_ADMIN = "roles/storage.objectAdmin"``, tuples of them included);
    a role only named in an error message is not granted."""
    roles: set[str] = set()
    for path in sorted(BACKENDS.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                for const in ast.walk(node.value):
                    if isinstance(const, ast.Constant) and str(const.value).startswith("roles/"):
                        roles.add(str(const.value))
    return roles


def test_the_gke_quickstart_names_every_role_the_operator_grants():
    """A grant added to the code (the notebook reader of issue 26, the store's legacyBucketReader)
    is a step the platform engineer must know about: the GKE page names each role."""
    roles = granted_roles()
    assert {"roles/storage.objectAdmin", "roles/storage.objectViewer", "roles/iam.workloadIdentityUser"} <= roles
    page = GKE_PAGE.read_text()
    assert not [r for r in sorted(roles) if f"`{r}`" not in page], "docs/install/gke.md should name these roles"
    assert "`policy.notebookBucketRead`" in page and "default-editor" in page


def gke_values_file(env: dict[str, str]) -> dict:
    """The chart values file the GKE quickstart writes (``cat > values-gke.yaml <<EOF``), with the
    shell variables of its first block filled in."""
    page = GKE_PAGE.read_text()
    body = page.split("cat > values-gke.yaml <<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    return yaml.safe_load(re.sub(r"\$(\w+)", lambda m: env[m.group(1)], body))


def test_the_gke_values_file_is_valid_for_the_chart():
    import jsonschema

    env = {"PROJECT": "my-project", "REGION": "us-central1", "NETWORK": "default"}
    env["GSA"] = f"featurestore-operator@{env['PROJECT']}.iam.gserviceaccount.com"
    values = gke_values_file(env)
    schema = json.loads((ROOT / "charts" / "featurestore-operator" / "values.schema.json").read_text())
    jsonschema.validate(values, schema)
    # the namespace's notebook service account (step 7) is one the admin policy gives the namespace
    patterns = values["policy"]["serviceAccountPatterns"]
    assert any(p.startswith("kf-{namespace}@") for p in patterns), patterns
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**values, "policy": {**values["policy"], "notebookBucketReads": True}}, schema)


def _operator_config(values: dict) -> dict:
    """The operator settings the chart makes of these values (templates/deployment.yaml: FSO_*)."""
    return {
        "defaultProvider": values["defaultProvider"],
        "gcpProject": values["gcp"]["project"],
        "gcpRegion": values["gcp"]["region"],
        "gcpNetwork": values["gcp"]["network"],
        "gcpServiceAccount": values["serviceAccount"]["gcpServiceAccount"],
        "policy": values["policy"],
    }


def test_the_gke_first_store_and_notebook_pass_the_gke_policy(tmp_path, capsys):
    """Step 9's FeatureStore is admitted by step 8's settings, and step 7's notebook service account
    is one that policy gives the namespace (so the operator grants it bucket read), another
    namespace's is not."""
    from featurestore_operator.api.policy import notebook_gsa_problem
    from featurestore_operator.cli import main
    from featurestore_operator.cli_files import config_file

    env = {"PROJECT": "my-project", "REGION": "us-central1", "NETWORK": "default", "NS": "team-a"}
    env["GSA"] = f"featurestore-operator@{env['PROJECT']}.iam.gserviceaccount.com"
    config = tmp_path / "operator.yaml"
    config.write_text(yaml.safe_dump(_operator_config(gke_values_file(env))))
    page = GKE_PAGE.read_text()
    store = page.split("cat <<EOF | kubectl apply -f -\n", 1)[1].split("\nEOF\n", 1)[0]
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(re.sub(r"\$(\w+)", lambda m: env[m.group(1)], store))
    assert main(["validate", "-f", str(manifest), "--config", str(config)]) == 0, capsys.readouterr()
    policy = config_file(str(config)).effective_policy
    notebook = re.search(r"gcloud iam service-accounts create (\S+)", page.split("## 7. Notebook access")[1])
    assert notebook, "step 7 creates the notebook service account"
    gsa = f"{notebook.group(1).replace('$NS', env['NS'])}@{env['PROJECT']}.iam.gserviceaccount.com"
    assert notebook_gsa_problem(policy, env["NS"], gsa) is None
    assert notebook_gsa_problem(policy, "team-b", gsa), "another namespace's notebooks must not get it"
