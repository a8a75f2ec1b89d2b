"""The hint key layout: each owner's hints under its own prefix, parsed back exactly
(the key parts are cached per owner and per partition: a cached part must never be
another owner's or partition's)."""

from dynredis.core.hints import hint_key, hint_prefix, parse_hint_key


def test_hint_keys_parse_back_to_their_owner_partition_and_key() -> None:
    owners = ["127.0.0.1:7000", "127.0.0.1:7001", "10.0.0.1:7000", "é:1"]
    for _round in range(2):  # the second round reads the cached parts
        for owner in owners:
            for p in (0, 1, 255, 256, 4095, 0xFFFE):
                for key in (b"", b"k", b"\x00\xff key"):
                    hk = hint_key(owner, p, key)
                    assert parse_hint_key(hk) == (owner, p, key)
                    assert hk.startswith(hint_prefix(owner))
                    assert not any(hk.startswith(hint_prefix(o)) for o in owners if o != owner)
