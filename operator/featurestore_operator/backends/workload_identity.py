"""Workload Identity: let the FeatureStore's Kubernetes service account act as its Google one.

GKE maps a Kubernetes service account (KSA) to a Google service account (GSA) when
  1. the KSA carries the annotation ``iam.gke.io/gcp-service-account: GSA`` (rendered with the
     ServiceAccount, see ``render._service_account``), and
  2. the GSA's IAM policy grants ``roles/iam.workloadIdentityUser`` to
     ``serviceAccount:POOL_PROJECT.svc.id.goog[NAMESPACE/KSA]`` (this module).

Step 2 needs ``iam.serviceAccounts.getIamPolicy``/``setIamPolicy`` on the GSA (e.g.
roles/iam.serviceAccountAdmin on it). Many platform teams do not give an operator that; then the
outcome is a Failed whose message is the exact ``gcloud`` command an admin runs once. Report it as
its own, non-blocking condition: pods work as soon as the binding exists, whoever added it.

The pure policy helpers at the top (:func:`with_member`, :func:`without_member`) are shared with
the GCS backend's bucket binding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from google.api_core import exceptions as gexc

from ..api import FeatureStore, OperatorConfig, Provider
from ..api.status import CloudStatus
from ..render import compute
from ..render.names import Names
from . import gcp
from .base import BackendContext, Deleted, Failed, Pending, Ready, StatusUpdate
from .policy import refusal

log = logging.getLogger(__name__)

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
#: IAM policy version to request and write: 3 keeps conditional bindings intact.
POLICY_VERSION = 3
#: Read-modify-write attempts when someone else changes the policy in between (409/412 on etag).
ATTEMPTS = 5


# --- pure policy helpers -----------------------------------------------------------------------


def _binding_tuple(b: Any) -> tuple[str, list[str], Any]:
    """(role, members, condition) of a binding given as a dict (JSON/storage) or a protobuf."""
    if isinstance(b, dict):
        return b.get("role", ""), list(b.get("members") or ()), b.get("condition") or None
    cond = b.condition if b.HasField("condition") else None
    return b.role, list(b.members), cond


def has_member(bindings: Iterable[Any], role: str, member: str) -> bool:
    """Whether ``member`` holds ``role`` unconditionally (a conditional grant does not count)."""
    return any(r == role and member in m and c is None for r, m, c in map(_binding_tuple, bindings))


def with_member(bindings: Iterable[Any], role: str, member: str) -> list[dict[str, Any]] | None:
    """Bindings (as dicts) with ``member`` added to the unconditional ``role`` binding; ``None`` when
    it is already there (nothing to write). Other bindings, conditional ones included, are kept."""
    out: list[dict[str, Any]] = []
    added = False
    for role_, members, cond in map(_binding_tuple, bindings):
        if role_ == role and cond is None:
            if member in members:
                return None
            if not added:
                members = [*members, member]
                added = True
        out.append(_binding(role_, members, cond))
    if not added:
        out.append(_binding(role, [member], None))
    return out


def without_member(bindings: Iterable[Any], role: str, member: str) -> list[dict[str, Any]] | None:
    """Bindings with ``member`` removed from unconditional ``role`` bindings (empty ones dropped);
    ``None`` when it was not there."""
    out: list[dict[str, Any]] = []
    removed = False
    for role_, members, cond in map(_binding_tuple, bindings):
        if role_ == role and cond is None and member in members:
            members = [m for m in members if m != member]
            removed = True
            if not members:
                continue
        out.append(_binding(role_, members, cond))
    return out if removed else None


def _binding(role: str, members: list[str], cond: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"role": role, "members": members}
    if cond is not None:
        b["condition"] = cond
    return b


# --- naming ------------------------------------------------------------------------------------


def member(fs: FeatureStore, pool: str, ksa: str | None = None) -> str:
    """``serviceAccount:POOL[NAMESPACE/KSA]`` of the FeatureStore's pods (``ksa``: another of the
    store's own KSAs). ``pool`` (PROJECT.svc.id.goog) comes from the operator's configuration only:
    a FeatureStore naming another project's pool would bind the GSA to a cluster its author controls."""
    return f"serviceAccount:{pool}[{fs.metadata.namespace}/{ksa or Names(fs).service_account}]"


def own_members(fs: FeatureStore, pool: str | None) -> frozenset[str]:
    """Every member this store's grants can ever hold: its own KSAs (the servers' and the compute
    engine's, whatever the spec asks for now) in its own namespace, in the operator's pool. A
    revocation removes nothing else, whatever ``status.cloud`` records (red-team.md: a clean-up
    record is re-verified at the resource, never trusted alone)."""
    if not pool:
        return frozenset()
    return frozenset(member(fs, pool, ksa) for ksa in (Names(fs).service_account, compute.compute_service_account(fs)))


def with_members(bindings: Iterable[Any], role: str, members: list[str]) -> list[dict[str, Any]] | None:
    """:func:`with_member` for several members at once (one policy write); None when all are there."""
    out: list[Any] = list(bindings)
    changed = False
    for m in members:
        added = with_member(out, role, m)
        if added is not None:
            out, changed = added, True
    return out if changed else None


def resource(gsa: str) -> str:
    return f"projects/-/serviceAccounts/{gsa}"


def gcloud_add_command(gsa: str, mem: str) -> str:
    return f'gcloud iam service-accounts add-iam-policy-binding {gsa} --role {WORKLOAD_IDENTITY_USER} --member "{mem}"'


def gcloud_remove_command(gsa: str, mem: str) -> str:
    return (
        f'gcloud iam service-accounts remove-iam-policy-binding {gsa} --role {WORKLOAD_IDENTITY_USER} --member "{mem}"'
    )


def wants_grant(fs: FeatureStore) -> bool:
    """Whether ``fs`` asks for a Workload Identity grant (provider local never gets one)."""
    return bool(fs.spec.gcp.service_account) and fs.spec.provider is not Provider.LOCAL


# --- the IAM admin client ----------------------------------------------------------------------


def default_client_factory(endpoint: str | None = None) -> Callable[[], Any]:
    """A factory of ``iam_admin_v1.IAMClient`` (gRPC: the library has no REST transport).

    ``endpoint`` overrides the API host: ``http://HOST:PORT`` means a plaintext channel with
    anonymous credentials (tests, local fakes); ``HOST[:PORT]`` keeps TLS and default credentials.
    """

    def make() -> Any:
        from google.cloud import iam_admin_v1

        if endpoint and endpoint.startswith("http://"):
            import grpc
            from google.auth.credentials import AnonymousCredentials
            from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

            channel = grpc.insecure_channel(endpoint.removeprefix("http://"))
            return iam_admin_v1.IAMClient(
                transport=IAMGrpcTransport(channel=channel, credentials=AnonymousCredentials())
            )
        if endpoint:
            return iam_admin_v1.IAMClient(client_options={"api_endpoint": endpoint})
        return iam_admin_v1.IAMClient()

    return make


#: Status update that drops the record of the grant (status.cloud).
FORGET = StatusUpdate(cloud=CloudStatus(service_account=None, workload_member=None))


class WorkloadIdentity:
    """Keeps ``roles/iam.workloadIdentityUser`` for the FeatureStore's KSA on its GSA.

    Backend-shaped (``ensure``/``delete``/``needs_cleanup``) so reconcile can run it as an extra part
    with its own condition. ``ensure`` returns ``Ready(endpoint=<member>)``, or ``Ready(None)`` when
    no ``spec.gcp.serviceAccount`` is set. What it granted is recorded in ``status.cloud``; a grant
    recorded for another GSA (the spec's serviceAccount changed or was removed) is revoked first.

    Args:
        config: the operator config: ``workload_pool`` (never a FeatureStore's project) and the admin
            policy (no grant at all when the store breaks it, or on provider local).
        client_factory: builds the ``IAMClient``; called once, lazily, in a worker thread.
        endpoint: IAM API override, e.g. ``http://127.0.0.1:PORT`` for a local fake.
        pool: Workload Identity pool, PROJECT.svc.id.goog (default: ``config.workload_pool``).
    """

    def __init__(
        self,
        config: OperatorConfig | None = None,
        *,
        client_factory: Callable[[], Any] | None = None,
        endpoint: str | None = None,
        pool: str | None = None,
        attempts: int = ATTEMPTS,
        timeout: float = 30.0,
    ):
        self.config = config
        endpoint = endpoint or getattr(config, "iam_endpoint", None)
        self._clients: gcp.LazyClients[Any] = gcp.LazyClients(client_factory or default_client_factory(endpoint))
        self._pool = pool or (config.workload_pool if config else None)
        self._attempts = attempts
        self._timeout = timeout

    def close(self) -> None:
        """Close the client's channel (operator shutdown, tests)."""
        for client in self._clients.clear():
            client.transport.close()

    async def _iam(self) -> Any:
        return await self._clients.get()

    async def _get(self, client: Any, res: str) -> Any:
        return await gcp.call(
            lambda: client.get_iam_policy(
                request={"resource": res, "options": {"requested_policy_version": POLICY_VERSION}},
                retry=None,
                timeout=self._timeout,
            )
        )

    async def _set(self, client: Any, res: str, policy: Any, bindings: list[dict[str, Any]]) -> Any:
        from google.iam.v1 import policy_pb2

        new = policy_pb2.Policy()
        new.CopyFrom(policy)
        del new.bindings[:]
        for b in bindings:
            pb = new.bindings.add(role=b["role"], members=b["members"])
            if b.get("condition") is not None:
                pb.condition.CopyFrom(b["condition"])
        new.version = POLICY_VERSION
        return await gcp.call(
            lambda: client.set_iam_policy(request={"resource": res, "policy": new}, retry=None, timeout=self._timeout)
        )

    async def _modify(self, gsa: str, change: Callable[[Any], list[dict[str, Any]] | None]) -> bool:
        """Read-modify-write with the etag; re-read and re-apply when it changed meanwhile.
        Returns whether it wrote."""
        client = await self._iam()
        res = resource(gsa)

        def edit(policy: Any) -> tuple[Any, list[dict[str, Any]]] | None:
            bindings = change(policy.bindings)
            return None if bindings is None else (policy, bindings)

        return await gcp.read_modify_write(
            res,
            lambda: self._get(client, res),
            edit,
            lambda new: self._set(client, res, *new),
            self._attempts,
        )

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Ready[str | None] | Pending | Failed:
        gsa = fs.spec.gcp.service_account
        recorded = fs.status.cloud
        stale = recorded.compute_workload_member
        if (
            stale
            and recorded.service_account
            and (recorded.service_account != gsa or stale != self._compute_member(fs))
        ):
            revoked = await self._revoke(fs, recorded.service_account, stale)
            if not revoked.done:
                return Pending("RevokingOldGrant", revoked.message, retry_after=revoked.retry_after)
            return Pending(
                "RevokedOldGrant",
                revoked.message or f"revoked the compute KSA's grant on {recorded.service_account}",
                status=StatusUpdate(cloud=CloudStatus(compute_workload_member=None)),
                retry_after=1,
            )
        if (
            recorded.service_account
            and recorded.workload_member
            and (recorded.service_account != gsa or recorded.workload_member != self._member_or_none(fs))
        ):
            revoked = await self._revoke(fs, recorded.service_account, recorded.workload_member)
            if not revoked.done:
                return Pending("RevokingOldGrant", revoked.message, retry_after=revoked.retry_after)
            return Pending(
                "RevokedOldGrant",
                revoked.message or f"revoked the grant on {recorded.service_account}",
                status=FORGET,
                retry_after=1,
            )
        if not gsa:
            return Ready(None, "no spec.gcp.serviceAccount: Feast pods use the node's (or the KSA's default) identity")
        refused = refusal(fs, ctx, self.config)
        if refused:
            return Failed("PolicyViolation", f"no Workload Identity grant: {refused}", retry_after=300)
        if not self._pool:
            return Failed(
                "NoWorkloadPool",
                "the operator has no Workload Identity pool configured (FSO_GCP_WORKLOAD_POOL "
                "or FSO_GCP_PROJECT; Helm value gcp.workloadPool)",
                retry_after=300,
            )
        mem, compute_mem = member(fs, self._pool), self._compute_member(fs)
        members = [mem, compute_mem] if compute_mem else [mem]
        try:
            wrote = await self._modify(gsa, lambda b: with_members(b, WORKLOAD_IDENTITY_USER, members))
        except (gexc.Forbidden, gexc.PermissionDenied) as err:
            return Failed(
                "PermissionDenied",
                f"the operator may not change the IAM policy of {gsa} ({err.message}); it needs "
                f"iam.serviceAccounts.getIamPolicy and iam.serviceAccounts.setIamPolicy on it (e.g. "
                f"roles/iam.serviceAccountAdmin). An admin can add the binding instead: "
                f"{gcloud_add_command(gsa, mem)} (this condition stays False while the "
                f"operator cannot read the policy; pods work once the binding exists)",
                retryable=False,
                retry_after=600,
            )
        except gexc.NotFound:
            return Failed(
                "ServiceAccountNotFound",
                f"spec.gcp.serviceAccount: Google service account {gsa} does not exist (or is in a project the "
                f"operator cannot see); create it or fix the name",
                retryable=False,
                retry_after=300,
            )
        except Exception as err:  # noqa: BLE001 - mapped to a condition
            return gcp.failure(err, f"Workload Identity binding on {gsa}", "iam.serviceAccounts.setIamPolicy")
        verb = "granted" if wrote else "present"
        return Ready(
            mem,
            f"{WORKLOAD_IDENTITY_USER} for {' and '.join(members)} on {gsa}: {verb}",
            status=StatusUpdate(
                cloud=CloudStatus(service_account=gsa, workload_member=mem, compute_workload_member=compute_mem)
            ),
        )

    def _member_or_none(self, fs: FeatureStore) -> str | None:
        return member(fs, self._pool) if self._pool else None

    def _compute_member(self, fs: FeatureStore) -> str | None:
        """The engine's KSA (spec.compute kubernetes/sparkApplication) gets the store's GSA too."""
        enabled = bool(self.config and self.config.compute_enabled)
        extra = compute.workload_identity_service_accounts(fs, enabled)[1:]
        return member(fs, self._pool, extra[0]) if extra and self._pool else None

    async def _revoke(self, fs: FeatureStore, gsa: str, mem: str) -> Deleted:
        """Remove ``mem`` from ``gsa``. Done when removed, gone, or impossible (then says how to do it by hand).
        Only a member of this store's own (:func:`own_members`): a record naming anyone else's is not
        acted on (logged, and done: it must never block deletion)."""
        if mem not in own_members(fs, self._pool):
            log.warning(
                "%s/%s: status.cloud records the member %r, which is not one of this store's own; not revoked",
                fs.metadata.namespace,
                fs.metadata.name,
                mem,
            )
            return Deleted(True, f"recorded member {mem} is not this FeatureStore's own; left untouched")
        return await gcp.revoke(
            self._modify(gsa, lambda b: without_member(b, WORKLOAD_IDENTITY_USER, mem)),
            f"remove the Workload Identity binding of {mem} from {gsa}",
            gcloud_remove_command(gsa, mem),
            gone=f"Google service account {gsa} no longer exists",
            done=f"removed {mem} from {gsa}",
        )

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        """Remove the binding recorded in status (the KSA goes away with the FeatureStore; a later KSA
        of the same name in the namespace must not inherit the GSA silently). Works from the record,
        so a store whose spec became invalid or changed is still cleaned up. Never blocks deletion:
        when the operator may not change the policy it says which command removes the binding."""
        recorded = fs.status.cloud
        if recorded.service_account and recorded.compute_workload_member:
            result = await self._revoke(fs, recorded.service_account, recorded.compute_workload_member)
            if not result.done:
                return result
        if not recorded.service_account or not recorded.workload_member:
            return Deleted(True)
        result = await self._revoke(fs, recorded.service_account, recorded.workload_member)
        if result.done:
            return Deleted(True, result.message, status=FORGET)
        return result

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        """A grant was recorded, or is about to be made (the finalizer must be there first)."""
        return bool(fs.status.cloud.service_account) or wants_grant(fs)


#: The name reconcile's backend registry uses.
WorkloadIdentityBackend = WorkloadIdentity
