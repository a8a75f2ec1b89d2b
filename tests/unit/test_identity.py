"""A starting node keeps its clock identity only when no issued dot can have been lost."""

from dynredis.core.identity import choose_actor


def test_new_data_directory_gets_a_fresh_identity() -> None:
    assert choose_actor(None, False, "fsync", b"new") == b"new"
    assert choose_actor(None, True, "buffered", b"new") == b"new"


def test_crash_in_a_lossy_mode_takes_a_fresh_identity() -> None:
    for mode in ("none", "buffered"):
        assert choose_actor(b"old", False, mode, b"new") == b"new"
        assert choose_actor(b"old", True, mode, b"new") == b"old"


def test_fsync_mode_keeps_its_identity_after_a_crash() -> None:
    assert choose_actor(b"old", False, "fsync", b"new") == b"old"
