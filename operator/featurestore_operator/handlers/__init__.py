"""Wiring of the operator process (``handlers.main``): kopf (login, settings, the onboarding watches
of ``handlers.profiles``), the admission webhook's server, and the controller machinery the passes
run in: the FeatureStore watch, per-store workers, leader election, Events and health (issue 29
moves that machinery to a ``runtime`` package). The decisions live in :mod:`..reconcile`."""
