"""RBAC questions asked of the real API server."""

from __future__ import annotations

from kubernetes import client


def can(
    api: client.ApiClient,
    user: str,
    verb: str,
    resource: str,
    group: str = "",
    namespace: str | None = None,
    *,
    name: str | None = None,
    subresource: str | None = None,
) -> bool:
    """Whether ``user`` (a ServiceAccount's username: it is in the groups every ServiceAccount has)
    may ``verb`` the resource, as the API server's authorizer answers a SubjectAccessReview.
    ``namespace`` None: cluster-wide (or a cluster-scoped resource); ``name`` None: any object."""
    attrs = client.V1ResourceAttributes(
        verb=verb, resource=resource, group=group, namespace=namespace, name=name, subresource=subresource
    )
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user, groups=["system:serviceaccounts", "system:authenticated"], resource_attributes=attrs
        )
    )
    status = client.AuthorizationV1Api(api).create_subject_access_review(review).status
    return bool(status and status.allowed)
