"""Red team (issue 25): a clean-up record naming another namespace's Memorystore instance deletes
nothing. ``status`` is not writable by tenants (tests/controlplane/test_redteam_status.py); this is
the second line: the deletion re-reads the instance and requires this store's owner labels.
Real MemorystoreBackend against the Memorystore fake (as test_backend_memorystore.py)."""

from __future__ import annotations

import asyncio

from featurestore_operator.backends.memorystore import MemorystoreBackend
from featurestore_operator.backends.recorded import recorded_store

from tests.datapath.test_backend_memorystore import FAST_RETRY, Loop, _victim, cfg, fake, make_fs  # noqa: F401


def test_a_forged_record_of_another_namespaces_instance_deletes_nothing(fake, cfg):  # noqa: F811
    iid, _ = _victim(fake, cfg)
    victim = next(i for i in fake.instances() if i.name.endswith(f"/instances/{iid}"))
    attacker = make_fs(cfg, name="prod", namespace="attacker", uid="6f1c1c9e-0000-4000-8000-0000000000bb")
    body = {
        "metadata": attacker.metadata.model_dump(),
        "spec": {"project": "x"},
        "status": {"cloud": {"memorystore": victim.name, "memorystoreDeletionPolicy": "Delete"}},
    }
    stub = recorded_store(body)
    assert stub is not None
    loop = Loop(MemorystoreBackend(cfg, retry=FAST_RETRY), stub, cfg)
    asyncio.run(loop.delete_until_done(timeout=60))
    assert [i.name for i in fake.instances()] == [victim.name]
    assert fake.count("DeleteInstance") == 0
