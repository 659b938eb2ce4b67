"""A git server over ssh for tests: Debian's OpenSSH ``sshd`` run in the foreground (``-D -e``) on a
free loopback port with its own test host key and one authorized client key; git runs
``git-upload-pack`` through it as any ssh git host does. Key-only (no passwords, no PAM)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.prerequisites import missing

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.read_text()


class SshGitServer:
    """Repos under a temp root, served at ``ssh://root@127.0.0.1:PORT<root>/<name>.git``."""

    def __init__(self, bare_root: Path) -> None:
        if not Path(SSHD).exists() or not shutil.which("ssh-keygen"):
            missing("OpenSSH server (Debian openssh-server: sshd, ssh-keygen)")
        self.repos = bare_root
        # not under /tmp: pods mount an emptyDir there
        self.dir = Path(tempfile.mkdtemp(prefix="gitssh-", dir="/var/tmp"))
        _keygen(self.dir / "host_key")
        self.client_key = _keygen(self.dir / "client_key")
        (self.dir / "authorized_keys").write_text((self.dir / "client_key.pub").read_text())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir / 'host_key'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.1)
        else:
            self.close()
            raise RuntimeError("sshd did not listen")

    def known_hosts(self) -> str:
        """The known_hosts line of this server's host key (what a user puts into the Secret)."""
        key = (self.dir / "host_key.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n"

    def url(self, name: str) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{self.repos}/{name}.git"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
