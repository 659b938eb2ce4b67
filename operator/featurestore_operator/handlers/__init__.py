"""Wiring only: the process start, the controller and watch feeds the runtime runs (``..runtime``,
with ``..reconcile``), and kopf (its operator loop: login, signals; its webhook server)."""
