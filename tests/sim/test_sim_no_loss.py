"""Seed sweep with only the faults after which every replica still receives every write
(delays, duplication and reordering without loss, skew and drift, crash-restarts with
fsync at quiet moments): profile NO_REPLICA_LOSS. Seeds from conftest (`--seed N`
replays one, `--sim-seeds` sets the count, default 200).
"""

from __future__ import annotations

from .scenario import NO_REPLICA_LOSS, replay_command, run_seed

HERE = "tests/sim/test_sim_no_loss.py"


def test_seeds_without_replica_loss(sim_seed: int) -> None:
    run_seed(sim_seed, NO_REPLICA_LOSS,
             replay_command(HERE, "test_seeds_without_replica_loss", sim_seed))
