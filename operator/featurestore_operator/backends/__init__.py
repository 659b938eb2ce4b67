"""Cloud and in-cluster stores behind one contract (see :mod:`.base`)."""
