"""Options of the simulation sweeps.

Each option also has an environment variable (used when the option is absent, and the
only way to set it when pytest runs from the repository root: pytest registers a
sub-directory conftest's options only when that directory is named on the command line).

  --seed N               DYNREDIS_SIM_SEED       run only seed N in every sweep (replay)
  --sim-seeds COUNT      DYNREDIS_SIM_SEEDS      seeds per sweep (default 200)
  --sim-seed-start S     DYNREDIS_SIM_SEED_START first seed of a sweep (default 0)
  --sim-faults LIST      DYNREDIS_SIM_FAULTS     fault families the all-faults sweep may
                                                 use, comma-separated, out of
                                                 slow,reorder,dup,loss,partitions,crashes,skew
                                                 (default: all of them)
  --sim-durability LIST  DYNREDIS_SIM_DURABILITY durability modes the all-faults sweep's
                                                 nodes draw from (default fsync,buffered,none)
  --sim-config K=V,...   DYNREDIS_SIM_CONFIG     node Config overrides for the all-faults
                                                 sweep, e.g. tombstone_grace_ms=3000
"""

from __future__ import annotations

import os

import pytest

DEFAULT_SEEDS = 200


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sim", "deterministic cluster simulation (tests/sim)")
    group.addoption("--seed", type=int, default=None,
                    help="replay one seed in every seed sweep")
    group.addoption("--sim-seeds", type=int, default=None,
                    help=f"seeds per sweep (default {DEFAULT_SEEDS})")
    group.addoption("--sim-seed-start", type=int, default=None, help="first seed of a sweep")
    group.addoption("--sim-faults", default=None,
                    help="fault families of the all-faults sweep, comma-separated")
    group.addoption("--sim-durability", default=None,
                    help="durability modes of the all-faults sweep, comma-separated")
    group.addoption("--sim-config", default=None,
                    help="node Config overrides of the all-faults sweep, K=V,K=V")


def sim_option(config: pytest.Config, name: str, env: str) -> str | None:
    value = config.getoption(name, default=None)
    if value is None:
        value = os.environ.get(env) or None
    return None if value is None else str(value)


def sweep_seeds(config: pytest.Config) -> list[int]:
    one = sim_option(config, "--seed", "DYNREDIS_SIM_SEED")
    if one is not None:
        return [int(one)]
    count = int(sim_option(config, "--sim-seeds", "DYNREDIS_SIM_SEEDS") or DEFAULT_SEEDS)
    start = int(sim_option(config, "--sim-seed-start", "DYNREDIS_SIM_SEED_START") or 0)
    return list(range(start, start + count))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sim_seed" in metafunc.fixturenames:
        seeds = sweep_seeds(metafunc.config)
        metafunc.parametrize("sim_seed", seeds, ids=[f"seed={s}" for s in seeds])


@pytest.fixture
def sim_faults(pytestconfig: pytest.Config) -> list[str] | None:
    raw = sim_option(pytestconfig, "--sim-faults", "DYNREDIS_SIM_FAULTS")
    return [f.strip() for f in raw.split(",") if f.strip()] if raw is not None else None


@pytest.fixture
def sim_durability(pytestconfig: pytest.Config) -> list[str] | None:
    raw = sim_option(pytestconfig, "--sim-durability", "DYNREDIS_SIM_DURABILITY")
    return [f.strip() for f in raw.split(",") if f.strip()] if raw is not None else None


@pytest.fixture
def sim_config(pytestconfig: pytest.Config) -> dict[str, int | float] | None:
    raw = sim_option(pytestconfig, "--sim-config", "DYNREDIS_SIM_CONFIG")
    if raw is None:
        return None
    out: dict[str, int | float] = {}
    for item in raw.split(","):
        if item.strip():
            k, v = item.split("=", 1)
            out[k.strip()] = float(v) if "." in v else int(v)
    return out
