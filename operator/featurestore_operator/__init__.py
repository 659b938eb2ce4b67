"""Kubernetes operator that runs Feast feature stores for Kubeflow on GCP or in-cluster.

Layers (imports only go downwards): handlers -> reconcile -> backends -> render -> api.
"""

__version__ = "0.1.0"
