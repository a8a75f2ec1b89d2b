"""Where a node's cluster secret and client password come from: never its command line.

A command line is readable by every local user (`ps`, /proc/PID/cmdline), so secrets
travel by file or environment. The cluster secret, in order: `--cluster-secret-file`,
the environment (DYNREDIS_CLUSTER_SECRET), the one this node stored in its data
directory; failing those, a node that joins nobody (no seeds) makes one and stores it
there (mode 0600) for its peers to be given, while a node with seeds refuses to start:
a secret it made up could not match its cluster's. No secret is built in.
"""

from __future__ import annotations

import os
import secrets

ENV_SECRET = "DYNREDIS_CLUSTER_SECRET"
ENV_REQUIREPASS = "DYNREDIS_REQUIREPASS"
SECRET_FILE = "cluster.secret"  # in a node's (or a local cluster's) data directory
MIN_SECRET_LEN = 16


class CredentialError(Exception):
    """A secret or password that cannot be had; the message says what to do."""


def read_secret_file(path: str, what: str) -> str:
    """The first line of `path` (a secret or password file), without its line end."""
    try:
        with open(path, encoding="utf-8") as f:
            value = f.readline().rstrip("\r\n")
    except OSError as exc:
        raise CredentialError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CredentialError(f"the {what} file {path} is not UTF-8 text") from exc
    if not value:
        raise CredentialError(f"the {what} file {path} is empty")
    return value


def write_secret_file(path: str, value: str) -> None:
    """Create `path` readable by its owner only, holding `value` (never overwrites)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")


def new_secret() -> str:
    return secrets.token_hex(32)


def ensure_secret_file(path: str) -> str:
    """The secret stored at `path`, made (random, mode 0600) if there is none yet."""
    if not os.path.exists(path):
        try:
            write_secret_file(path, new_secret())
        except FileExistsError:
            pass  # made meanwhile by another process: use that one
    return read_secret_file(path, "cluster secret")


def cluster_secret(secret_file: str | None, data_dir: str, has_seeds: bool,
                   environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[str, str]:
    """The node's cluster secret and where it came from (for the log)."""
    if secret_file:
        return read_secret_file(secret_file, "cluster secret"), secret_file
    from_env = environ.get(ENV_SECRET)
    if from_env:
        return from_env, f"${ENV_SECRET}"
    stored = os.path.join(data_dir, SECRET_FILE)
    if os.path.exists(stored):
        return read_secret_file(stored, "cluster secret"), stored
    if has_seeds:
        raise CredentialError(
            "this node has --seeds but no cluster secret: give it the secret of the "
            f"cluster it joins with --cluster-secret-file FILE or ${ENV_SECRET} (a first "
            f"node started without one made it and keeps it in its data directory, "
            f"{SECRET_FILE})")
    os.makedirs(data_dir, exist_ok=True)
    return ensure_secret_file(stored), f"{stored} (made now)"


def requirepass(value: str | None, password_file: str | None,
                environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """The client password: --requirepass-file, else --requirepass, else the
    environment (DYNREDIS_REQUIREPASS); None for none."""
    if password_file:
        return read_secret_file(password_file, "requirepass")
    if value:
        return value
    return environ.get(ENV_REQUIREPASS) or None
