"""Notebook identity on GCP: which member may READ a store's bucket (registry.pb + offline data).

Kubeflow runs a profile's notebooks, pipeline steps and KServe predictors as the KSA ``default-editor``
of the profile namespace; on GKE its Workload Identity annotation ``iam.gke.io/gcp-service-account``
(set by the profile controller's GCP plugin, or by the admin) names the GSA they act as. The client
``feature_store.yaml`` points at ``gs://BUCKET/registry.pb`` and gs:// parquet, so that GSA needs
read on the bucket, and nothing else:

* roles ``roles/storage.objectViewer`` + ``roles/storage.legacyBucketReader`` (together
  ``storage.objects.get``/``list`` and ``storage.buckets.get``, which Feast's gs:// registry needs
  first: no write, no delete, no IAM), bound on the store's own bucket only (no project-level grant).
  The bucket holds nothing but this store's registry and offline data, so a bucket-level read is
  exactly "what the notebook needs"; an IAM condition on object prefixes cannot restrict
  ``objects.list``, so none is used;
* the GSA must be one the admin policy gives THIS namespace (``api.policy.notebook_gsa_problem``): the
  annotation is tenant-writable, so a GSA of another namespace, a denied one, or a GSA shared by every
  profile is refused (the store reports why; notebooks then use the store's servers);
* recorded in ``status.cloud.notebookReader``; revoked when the annotation changes, the admin turns
  ``policy.notebookBucketRead`` off, or the store is deleted (a retained bucket keeps no reader). A
  revocation removes only a member the policy still gives this namespace (a forged record names nobody
  else's).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api import FeatureStore, OperatorConfig, Provider
from ..api.policy import notebook_gsa_problem
from .base import BackendContext

OBJECT_VIEWER = "roles/storage.objectViewer"
#: objectViewer (objects.get/list) + legacyBucketReader (buckets.get, objects.list: Feast's gs://
#: registry GETs the bucket first). No write, no delete, no IAM.
READER_ROLES = (OBJECT_VIEWER, "roles/storage.legacyBucketReader")
#: The KSA Kubeflow runs notebooks, pipelines and KServe models as.
NOTEBOOK_KSA = "default-editor"
GSA_ANNOTATION = "iam.gke.io/gcp-service-account"


@dataclass(frozen=True)
class Wanted:
    member: str | None  # serviceAccount:GSA to hold objectViewer, or None
    note: str  # why (shown in the OfflineStore condition message)


async def wanted(fs: FeatureStore, ctx: BackendContext) -> Wanted:
    """The member that should read ``fs``'s bucket now, from default-editor's annotation and the policy."""
    if fs.spec.provider is Provider.LOCAL or ctx.get_service_account is None:
        return Wanted(None, "")
    if not ctx.config.effective_policy.notebook_bucket_read:
        return Wanted(None, "notebook bucket read is off by the admin policy")
    try:
        account = await ctx.get_service_account(NOTEBOOK_KSA)
    except Exception as err:  # noqa: BLE001 - e.g. 403 under an admin's narrower RBAC: no grant, store unaffected
        return Wanted(None, f"notebooks: cannot read ServiceAccount {NOTEBOOK_KSA} ({err}); no bucket read")
    if account is None:
        return Wanted(None, "")  # not a Kubeflow profile namespace: nothing to say
    gsa = ((account.get("metadata") or {}).get("annotations") or {}).get(GSA_ANNOTATION)
    if not isinstance(gsa, str) or not gsa:
        return Wanted(None, f"notebooks: {NOTEBOOK_KSA} has no {GSA_ANNOTATION} annotation, no bucket read")
    problem = notebook_gsa_problem(ctx.config.effective_policy, fs.metadata.namespace, gsa)
    if problem:
        return Wanted(None, f"notebooks get no bucket read: {NOTEBOOK_KSA}'s {problem}")
    return Wanted(f"serviceAccount:{gsa}", f"read ({', '.join(READER_ROLES)}) for {NOTEBOOK_KSA}'s {gsa}")


def revocable(fs: FeatureStore, config: OperatorConfig | None, member: str) -> bool:
    """Whether a recorded reader may be removed: only a GSA the policy gives this namespace (the
    on/off switch aside), so a forged ``status.cloud.notebookReader`` cannot strip anyone else's read."""
    if config is None or not member.startswith("serviceAccount:"):
        return False
    policy = config.effective_policy.model_copy(update={"notebook_bucket_read": True})
    return notebook_gsa_problem(policy, fs.metadata.namespace, member.removeprefix("serviceAccount:")) is None
