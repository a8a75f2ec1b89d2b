"""The namespace tests' cluster is docker/'s: read from docker/compose.yaml (each
service's address, environment and volume) and docker/Dockerfile (the image's
environment, entry point and health check), so the tests run what the containers
would run, on the same addresses and ports, with the same configuration."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
CTL_IP = "172.28.0.100"  # the control host the tests ask from (the docker host's place)


@dataclass
class NodeSpec:
    name: str
    ip: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=lambda: ["dynredis", "node"])


@dataclass
class Image:
    """What docker/Dockerfile's final stage says."""

    env: dict[str, str]
    entrypoint: list[str]
    user: str
    healthcheck: str  # the shell command of HEALTHCHECK CMD
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments) of the final stage


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuations joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def image(path: Path = DOCKERFILE) -> Image:
    instructions = dockerfile_instructions(path.read_text())
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    final = instructions[starts[-1]:]
    env: dict[str, str] = {}
    entrypoint: list[str] = []
    user = "root"
    health = ""
    for word, args in final:
        if word == "ENV":
            for item in shlex.split(args):
                k, _, v = item.partition("=")
                env[k] = v
        elif word == "ENTRYPOINT":
            entrypoint = json.loads(args)
        elif word == "USER":
            user = args
        elif word == "HEALTHCHECK":
            health = args.partition(" CMD ")[2]
    return Image(env, entrypoint, user, health, final)


def compose(path: Path = COMPOSE) -> dict:
    return yaml.safe_load(path.read_text())


def topology() -> list[NodeSpec]:
    """The compose file's nodes, with the image's environment and entry point (the
    secret, an interpolated value, is the test's to supply; PATH is the machine's)."""
    img = image()
    specs = []
    for name, svc in compose()["services"].items():
        env = {k: v for k, v in img.env.items() if k != "PATH"}
        env.update({k: str(v) for k, v in svc["environment"].items() if "${" not in str(v)})
        ip = svc["networks"]["dynredis"]["ipv4_address"]
        specs.append(NodeSpec(name, ip, int(env["DYNREDIS_PORT"]), env, img.entrypoint))
    return specs


def another_node(first: NodeSpec, name: str, ip: str, zone: str) -> NodeSpec:
    """A node more, as one more service in the compose file would be: the first
    service's settings on its own address and in its own zone, without seeds (it joins
    by a membership change, `dynredis admin join`)."""
    env = {k: v for k, v in first.env.items() if k != "DYNREDIS_SEEDS"}
    env.update(DYNREDIS_ANNOUNCE_IP=ip, DYNREDIS_ZONE=zone)
    return NodeSpec(name, ip, first.port, env, list(first.command))
