"""kopf wiring only: settings, startup, and thin handlers that call :mod:`..reconcile`."""
