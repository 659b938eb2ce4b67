"""Run the operator CLI with only what its image has importable.

The operator image installs the package's runtime dependencies only; the test virtualenv also holds
the test extra (the ``kubernetes`` client, Feast, Ray, ...). Some libraries change what they load
when such packages are present: kopf imports ``kubernetes`` whenever it is installed
(``kopf/_cogs/helpers/thirdparty.py``), which pulls in ``google.auth.transport.requests`` and, with
google-auth 2.63, ``cryptography`` (~8 MiB resident) — none of which the image's operator ever loads.
Tests that measure or inspect the operator process (memory, mapped libraries, start time) therefore
run it through this launcher, which makes the test-only packages unimportable, as in the image.

Usage: ``python tests/support/as_in_image.py ARGS...`` = ``featurestore-operator ARGS...``."""

from __future__ import annotations

import importlib.abc
import runpy
import sys

#: top-level packages of the ``test`` extra that are not runtime dependencies of the operator
TEST_ONLY = frozenset({"kubernetes", "kubernetes_asyncio", "pykube", "feast", "ray", "pandas", "pyarrow", "pytest"})


class _TestOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - MetaPathFinder's signature
        if fullname.partition(".")[0] in TEST_ONLY:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not in the operator image)", name=fullname)
        return None


def main() -> None:
    sys.meta_path.insert(0, _TestOnly())
    sys.argv = ["featurestore-operator", *sys.argv[1:]]
    runpy.run_module("featurestore_operator.cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
