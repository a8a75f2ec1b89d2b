"""The settings a local cluster (`dynredis cluster`) was started with, kept in its data
directory (``cluster.json``) so that a node started again, by a restart of a dead node
or a start after `dynredis stop`, runs exactly as before, password included.

The record holds no secret: the password is kept in its own file (mode 0600) and the
record names that file, as it names the cluster secret's file.
"""

from __future__ import annotations

import json
import os
from typing import Any

SETTINGS_FILE = "cluster.json"
PASSWORD_FILE = "requirepass"  # made from --requirepass / $DYNREDIS_REQUIREPASS

# Every node setting the local cluster passes on, with its default.
NODE_DEFAULTS: dict[str, Any] = {
    "bind": "127.0.0.1",
    "n": 3,
    "r": 2,
    "w": 2,
    "engine": "lmdb",
    "durability": "buffered",
    "ring_size": 256,
    "timeout_ms": 2000,
    "ae_interval_ms": 200,
    "tombstone_grace_ms": 600_000,
    "phi_threshold": 8.0,
    "object_cache_max_memory": 64 << 20,
    "tls_cert_file": None,
    "tls_key_file": None,
    "tls_ca_cert_file": None,
    "tls_auth_clients": "yes",
}
# Settings of the cluster as a whole.
CLUSTER_DEFAULTS: dict[str, Any] = {
    "cluster_port_offset": 10000,
    "requirepass_file": None,  # the file the nodes read their password from
    "tls": False,  # every node serves TLS only, on its usual ports; peers link over TLS
}
DEFAULTS = {**NODE_DEFAULTS, **CLUSTER_DEFAULTS}


def path(data_dir: str) -> str:
    return os.path.join(data_dir, SETTINGS_FILE)


def load(data_dir: str) -> dict[str, Any] | None:
    """The recorded settings (every key present, defaults for ones a record lacks), or
    None for a data directory without a record."""
    try:
        with open(path(data_dir), encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the cluster's settings {path(data_dir)}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"the cluster's settings {path(data_dir)} are not a JSON object")
    return {k: raw.get(k, v) for k, v in DEFAULTS.items()}


def save(data_dir: str, settings: dict[str, Any]) -> None:
    tmp = path(data_dir) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({k: settings[k] for k in DEFAULTS}, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path(data_dir))


def resolve(given: dict[str, Any], recorded: dict[str, Any] | None) -> dict[str, Any]:
    """The settings of a start: each one as given on the command line (not None), else
    as recorded, else its default."""
    base = recorded if recorded is not None else DEFAULTS
    return {k: given[k] if given.get(k) is not None else base[k] for k in DEFAULTS}


def differences(given: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    """The options given on the command line that differ from the record (for a warning
    when the record wins: a node restarted beside running peers must match them)."""
    return [f"--{k.replace('_', '-')} {given[k]}" for k in DEFAULTS
            if given.get(k) is not None and given[k] != recorded[k]]
