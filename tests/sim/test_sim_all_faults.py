"""Seed sweep under every fault (seeds from conftest: `--seed N` replays one,
`--sim-seeds` sets the count, default 200).

Profile ALL_FAULTS: loss, duplication, reordering, slow tails, symmetric and one-way
partitions, crash-restarts with fsync, buffered or none durability, clock skew and drift,
tombstones reaped 1 s after a delete; restricted by `--sim-faults` / `--sim-durability`
/ `--sim-config`. Replicas miss writes here, so convergence needs hinted handoff and
anti-entropy; `checker` finds lost, invented or resurrected values, diverged replicas and
reused dots.
"""

from __future__ import annotations

from .scenario import ALL_FAULTS, replay_command, restrict, run_seed

HERE = "tests/sim/test_sim_all_faults.py"


def test_seeds_converge_under_all_faults(sim_seed: int, sim_faults: list[str] | None,
                                         sim_durability: list[str] | None,
                                         sim_config: dict | None) -> None:
    profile = restrict(ALL_FAULTS, sim_faults, sim_durability, sim_config)
    how = replay_command(HERE, "test_seeds_converge_under_all_faults", sim_seed)
    if sim_faults is not None:
        how += f" --sim-faults {','.join(sim_faults)}"
    if sim_durability is not None:
        how += f" --sim-durability {','.join(sim_durability)}"
    if sim_config:
        how += " --sim-config " + ",".join(f"{k}={v}" for k, v in sim_config.items())
    run_seed(sim_seed, profile, how)
