"""The controller runtime: the client facade, the observed cache, watches, discovery, the kinds table,
workers, leader election, Events and health. It knows the controllers it runs only through the small
protocols they are handed in with (``runtime.workers.Reconciler``); it imports nothing from
``reconcile``, ``handlers`` or ``render`` (tests/unit/test_layers.py)."""
