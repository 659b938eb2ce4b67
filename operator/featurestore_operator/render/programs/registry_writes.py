"""The prelude of every Python program the operator runs with Feast (``programs.feast_program``):
file registry writes replace the file whole.

Feast's file registry store rewrites the registry in place (``open(path, "wb")`` truncates it, then
writes), so a process reading it meanwhile (a feature server refreshing its cache, a
materialization share planning its windows) parses an empty or partial registry: its views and
entities vanish until the next refresh ("Entity driver does not exist in project"). Here every
write goes to a new file next to the registry, is flushed to disk and renamed over it (atomic on
POSIX file systems and NFS): a reader sees the old registry or the new one, never a mix. The new
file keeps the old one's permission bits (pods of the store share the volume).

A Feast without ``FileRegistryStore._write_registry`` (a newer image) keeps Feast's own writes,
with a warning.
"""


def _atomic_file_registry() -> None:
    import datetime
    import os
    import stat
    import sys
    import uuid
    from typing import Any

    from feast.infra.registry.file import FileRegistryStore

    def write(self: Any, registry_proto: Any) -> None:
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(datetime.datetime.now(datetime.UTC))
        path = self._filepath
        path.parent.mkdir(exist_ok=True)
        part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(registry_proto.SerializeToString())
                out.flush()
                os.fsync(out.fileno())
            if path.exists():
                os.chmod(part, stat.S_IMODE(path.stat().st_mode))
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash of the node
        finally:
            os.close(directory)

    if not callable(getattr(FileRegistryStore, "_write_registry", None)):
        print("warning: no FileRegistryStore._write_registry in this Feast: registry writes in place", file=sys.stderr)
        return
    FileRegistryStore._write_registry = write  # type: ignore[method-assign]


_atomic_file_registry()
