"""PiecesReply (server/streamed.py): MGET's reply with large values pinned in the store,
written a slice at a time between the bytes around them."""

from __future__ import annotations

from dynredis.server.streamed import STREAM_SLICE, ChainReply, PiecesReply


class FakePin:
    def __init__(self) -> None:
        self.released = False

    def alive(self) -> bool:
        return not self.released

    def release(self) -> None:
        self.released = True


def written(reply: PiecesReply) -> tuple[bytes, list[bytes]]:
    """What a connection writes of it: before, the slices, after (and the slices)."""
    slices = []
    while (chunk := reply.next_slice()) is not None:
        slices.append(chunk)
    assert reply.done()
    return reply.before + b"".join(slices) + reply.after, slices


def test_the_reply_is_the_pieces_in_order_each_view_a_slice_at_a_time() -> None:
    big1 = bytes(range(256)) * (STREAM_SLICE // 256 * 2 + 3)  # a bit over 2 slices
    big2 = b"y" * 10
    pins = [FakePin(), FakePin()]
    pieces = [b"*4\r\n$-1\r\n$%d\r\n" % len(big1), memoryview(big1),
              b"\r\n$%d\r\n" % len(big2), memoryview(big2), b"\r\n$1\r\nz\r\n"]
    reply = PiecesReply(pieces, pins)
    want = b"".join(bytes(p) for p in pieces)
    assert reply.size() == len(want)
    assert reply.alive()
    out, slices = written(reply)
    assert out == want
    assert max(map(len, slices)) <= STREAM_SLICE
    assert len(slices) == 3 + 1 + 1  # big1 in three slices, the bytes between, big2
    reply.release()
    assert all(p.released for p in pins) and not reply.alive()


def test_views_next_to_each_other_and_at_the_ends() -> None:
    pin = FakePin()
    reply = PiecesReply([b"*2\r\n$3\r\n", memoryview(b"abc"), b"", memoryview(b"de"),
                         b"\r\n"], [pin])
    out, _ = written(reply)
    assert out == b"*2\r\n$3\r\nabcde\r\n"  # (the framing between is the caller's)


def test_a_transactions_reply_chains_streamed_replies_between_whole_ones() -> None:
    """EXEC's reply (ChainReply): its head and whole replies as bytes, each streamed reply
    (a pinned value, a long collection reply) written as itself, in order; whole() gives
    the same bytes at once and lets every pin go."""
    from dynredis.resp.bulks import STREAM_ROWS, SlicedReply, lines

    big = bytes(range(256)) * (STREAM_SLICE // 256 + 5)
    items = [b"k%d" % i for i in range(STREAM_ROWS + 10)]

    def rows(lo: int, hi: int) -> list[list[bytes]]:
        return [[b"$%d" % len(x) for x in items[lo:hi]], items[lo:hi]]

    def chain() -> tuple[ChainReply, list[FakePin]]:
        pins = [FakePin(), FakePin()]
        replies = [b"+OK\r\n", PiecesReply([b"$%d\r\n" % len(big), memoryview(big), b"\r\n"],
                                           [pins[0]]),
                   PiecesReply([b"$3\r\n", memoryview(b"abc"), b"\r\n"], [pins[1]]),
                   SlicedReply(b"*%d" % len(items), len(items), rows), b":1\r\n"]
        return ChainReply(b"*5\r\n", replies), pins

    want = (b"*5\r\n+OK\r\n$%d\r\n" % len(big) + big + b"\r\n$3\r\nabc\r\n"
            + lines(b"*%d" % len(items), rows(0, len(items))) + b":1\r\n")
    reply, pins = chain()
    assert reply.alive()
    out, slices = written(reply)  # type: ignore[arg-type]
    assert out == want
    assert max(map(len, slices)) <= STREAM_SLICE
    reply.release()
    assert all(p.released for p in pins) and not reply.alive()
    reply, pins = chain()
    assert reply.whole() == want and all(p.released for p in pins)


def test_gather_makes_a_reply_whole_a_turn_at_a_time_or_fails_if_its_store_closes() -> None:
    """streamed.gather (a script's redis.call of a long reply): the reply's bytes, one
    `later` turn per turn's worth, and its pins let go; an error if a pin dies meanwhile."""
    from dynredis.server.streamed import ERR_CLOSED, gather

    big = bytes(range(256)) * (STREAM_SLICE // 256 * 9)  # 9 slices: 3 turns of 4 MB
    due: list = []
    got: list[bytes] = []
    pin = FakePin()
    gather(PiecesReply([b"$%d\r\n" % len(big), memoryview(big), b"\r\n"], [pin]),
           due.append, got.append)
    turns = 0
    while due:
        due.pop(0)(None)
        turns += 1
    assert got == [b"$%d\r\n" % len(big) + big + b"\r\n"] and pin.released
    assert turns == 3  # 4 MB a turn, from the turn after the call

    pin = FakePin()
    got.clear()
    gather(PiecesReply([b"$%d\r\n" % len(big), memoryview(big), b"\r\n"], [pin]),
           due.append, got.append)
    due.pop(0)(None)
    pin.released = True  # the store closed
    due.pop(0)(None)
    assert got == [ERR_CLOSED] and not due


def test_gather_hands_a_scripts_parts_unjoined_and_bytes_made_already_as_they_are() -> None:
    """For a script (parts=True) gather hands on the reply's slices as made, for its
    thread to join (joined here, a 100 MiB value was one copy in one loop turn); bytes
    made already (a script's own reply, to the node that handed the script over) go on
    at once, neither copied a slice a turn nor joined again."""
    from dynredis.server.streamed import bytes_reply, gather

    big = bytes(range(256)) * (STREAM_SLICE // 256 * 3 + 1)
    due: list = []
    got: list = []
    pin = FakePin()
    gather(PiecesReply([b"$%d\r\n" % len(big), memoryview(big), b"\r\n"], [pin]),
           due.append, got.append, parts=True)
    while due:
        due.pop(0)(None)
    (parts,) = got
    assert b"".join(parts) == b"$%d\r\n" % len(big) + big + b"\r\n" and pin.released
    assert parts[0] == b"$%d\r\n" % len(big) and parts[-1] == b"\r\n"
    assert len(parts) == 6 and max(map(len, parts)) <= STREAM_SLICE  # 4 slices of it

    got.clear()
    gather(bytes_reply(big), due.append, got.append)
    assert got == [big] and got[0] is big and not due
