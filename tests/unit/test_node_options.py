"""`dynredis node`'s addresses (bind, announce) and its configuration by environment."""

from __future__ import annotations

import pytest

from dynredis import cli
from dynredis.server.app import NodeOptions


def test_the_name_is_the_announced_address_else_the_first_bound_one() -> None:
    assert NodeOptions(bind="10.1.2.3", port=7001).name == "10.1.2.3:7001"
    assert NodeOptions(bind="10.1.2.3, 127.0.0.1", port=7001).name == "10.1.2.3:7001"
    opts = NodeOptions(bind="0.0.0.0", port=7001, announce_ip="192.0.2.7", announce_port=30001)
    assert opts.name == "192.0.2.7:30001"
    assert opts.bind_addresses == ["0.0.0.0"]


@pytest.mark.parametrize("opts, message", [
    (NodeOptions(bind="0.0.0.0"), "give --announce-ip"),
    (NodeOptions(bind="::"), "give --announce-ip"),
    (NodeOptions(bind=" "), "--bind needs an address"),
    (NodeOptions(bind="0.0.0.0", announce_ip="a b"), "is not an address"),
    (NodeOptions(announce_port=70000), "--announce-port must be between"),
    (NodeOptions(announce_cluster_port=0), "--announce-cluster-port must be between"),
])
def test_a_name_peers_could_not_dial_is_refused(opts: NodeOptions, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        opts.check_addresses()


def parse_node(environ: dict[str, str], *argv: str):
    parser = cli._parser()
    cli._defaults_from_env(parser.node_parser, environ)
    return parser.parse_args(["node", *argv])


def test_every_node_option_can_come_from_the_environment_and_the_command_line_wins() -> None:
    args = parse_node({"DYNREDIS_SEEDS": "10.0.0.2:7000", "DYNREDIS_PORT": "7005",
                       "DYNREDIS_ANNOUNCE_IP": "10.0.0.1", "DYNREDIS_N": "2",
                       "DYNREDIS_ENGINE": "memory", "DYNREDIS_TLS_CLUSTER": "no"},
                      "--port", "7006")
    assert (args.seeds, args.port, args.announce_ip, args.n, args.engine) == \
        ("10.0.0.2:7000", 7006, "10.0.0.1", 2, "memory")
    names = cli.node_env_vars()
    assert {"DYNREDIS_BIND", "DYNREDIS_DATA_DIR", "DYNREDIS_ANNOUNCE_PORT",
            "DYNREDIS_CLUSTER_SECRET_FILE"} <= names
    # The password variable is the password itself (read by credentials), not a default.
    assert "DYNREDIS_REQUIREPASS" not in names


def test_a_bad_value_in_the_environment_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_node({"DYNREDIS_PORT": "seven"})
    assert "$DYNREDIS_PORT: invalid value 'seven'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_node({"DYNREDIS_DURABILITY": "sometimes"})
    assert "$DYNREDIS_DURABILITY: 'sometimes' is not one of" in capsys.readouterr().err
