"""A throw-away sshd on 127.0.0.1 for the tests of ``--remote`` (Debian openssh-server: /usr/sbin/sshd).

tools/run-tests installs openssh-server when it is missing. Import the fixture into a test module
with ``from sshd import local_sshd``.
"""

from __future__ import annotations

import pytest


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def local_sshd(tmp_path):
    """A throw-away sshd on 127.0.0.1 that accepts one generated key; yields (host, ssh options).

    Its sessions' TMPDIR is ``tmp_path / "remote-tmp"``: what a remote run leaves behind is this test's alone."""
    import getpass
    import os
    import socket
    import subprocess
    import time

    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    os.chmod(tmp_path / "authorized_keys", 0o600)
    port = free_port()
    # Remote sessions make their folders here, not in the shared /tmp, so a test can see exactly what it left.
    (tmp_path / "remote-tmp").mkdir()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path / 'host_key'}\n"
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nPidFile {tmp_path / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
        f"SetEnv TMPDIR={tmp_path / 'remote-tmp'}\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)  # privilege-separation directory sshd insists on
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        options = [f"Port={port}", f"IdentityFile={tmp_path / 'client_key'}", "StrictHostKeyChecking=no",
                   "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]
        yield f"{getpass.getuser()}@127.0.0.1", options
    finally:
        proc.terminate()
        proc.wait(timeout=10)
