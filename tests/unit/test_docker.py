"""docker/ checked statically (no container engine here; tests/netns runs its topology):
the image is built by the project's install script, runs as a non-root user, checks
its health with redis-cli ping and starts a node configured by environment; the
compose file runs three such nodes on their own addresses and volumes."""

from __future__ import annotations

import ipaddress

from dynredis import cli
from tests.netns.topology import ROOT, compose, dockerfile_instructions, image


def test_the_image_is_installed_by_the_project_script_and_runs_as_a_non_root_user() -> None:
    all_steps = dockerfile_instructions((ROOT / "docker" / "Dockerfile").read_text())
    assert ("RUN", "scripts/install.sh") in all_steps
    img = image()
    assert img.user not in ("", "root", "0") and not img.user.startswith("0:")
    words = [w for w, _ in img.instructions]
    assert words.index("USER") < words.index("ENTRYPOINT")
    assert any(w == "RUN" and "useradd" in a and img.user in a for w, a in img.instructions)
    assert any(w == "COPY" and "--from=build" in a for w, a in img.instructions)


def test_the_healthcheck_pings_with_redis_cli_and_the_entrypoint_runs_a_node() -> None:
    img = image()
    assert "redis-cli" in img.healthcheck and "ping" in img.healthcheck
    assert "$DYNREDIS_PORT" in img.healthcheck
    assert any(w == "RUN" and "redis-tools" in a for w, a in img.instructions)
    assert img.entrypoint == ["dynredis", "node"]
    # The image's settings are options of `dynredis node`, by their variables.
    known = cli.node_env_vars()
    assert {k for k in img.env if k.startswith("DYNREDIS_")} <= known
    assert img.env["DYNREDIS_DATA_DIR"] == "/data"
    assert ("VOLUME", '["/data"]') in img.instructions
    assert ("EXPOSE", "7000 17000") in img.instructions


def test_the_build_context_leaves_out_local_environments_and_data() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "data", ".git", "compat/node_modules"} <= set(ignored)


def test_the_compose_file_runs_three_nodes_that_seed_each_other_on_their_addresses() -> None:
    doc = compose()
    subnet = ipaddress.ip_network(doc["networks"]["dynredis"]["ipam"]["config"][0]["subnet"])
    services = doc["services"]
    assert len(services) == 3
    addrs = {n: s["networks"]["dynredis"]["ipv4_address"] for n, s in services.items()}
    assert len(set(addrs.values())) == 3
    known = cli.node_env_vars() | {"DYNREDIS_CLUSTER_SECRET"}
    for name, svc in services.items():
        env = svc["environment"]
        assert set(env) <= known, set(env) - known
        assert ipaddress.ip_address(addrs[name]) in subnet
        assert env["DYNREDIS_ANNOUNCE_IP"] == addrs[name]
        seeds = set(env["DYNREDIS_SEEDS"].split(","))
        assert seeds == {f"{a}:7000" for n, a in addrs.items() if n != name}
        assert svc["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert svc["volumes"] == [f"{name}-data:/data"] and f"{name}-data" in doc["volumes"]
        # The secret comes from the environment (docker/.env), never from the file.
        assert env["DYNREDIS_CLUSTER_SECRET"].startswith("${DYNREDIS_CLUSTER_SECRET:?")
    assert len({s["environment"]["DYNREDIS_ZONE"] for s in services.values()}) == 3
    published = [p.split(":")[0] for s in services.values() for p in s["ports"]]
    assert len(published) == len(set(published))
