"""The peer frames' codec in C (csrc/peerframe.c): msgpack's and msgspec's answers for
what peer messages hold, and theirs (errors included) for anything else."""

from __future__ import annotations

import msgpack
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynredis import native
from dynredis.core import obj as objmod
from dynredis.server import wire

try:
    from dynredis import _peerframe as peerframe
except ImportError:  # a pure run (DYNREDIS_PURE=1, or no build): wire.py's fallback only
    peerframe = None

needs_codec = pytest.mark.skipif(peerframe is None and native.state != "compiled",
                                 reason="the C codec is not built (pure run)")

_pack = msgspec.msgpack.Encoder().encode

# What peer messages hold, at every msgpack width: ints of 64 bits, bytes and str of
# each length class, None, bools, floats, nested tuples, lists and dicts.
_ints = st.integers(-(2**63), 2**64 - 1) | st.sampled_from(
    [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**40 + 5, 2**64 - 1, -32,
     -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1])
_lengths = st.sampled_from([0, 1, 15, 16, 31, 32, 33, 255, 256])
_atoms = (_ints | st.binary(max_size=300) | _lengths.map(lambda n: b"b" * n)
          | st.text(max_size=40) | _lengths.map(lambda n: "s" * n)
          | st.sampled_from(["p", "pas", "127.0.0.1:7001", "é"]) | st.none() | st.booleans()
          | st.floats(allow_nan=False))
_values = st.recursive(
    _atoms,
    lambda inner: (st.lists(inner, max_size=20).map(tuple) | st.lists(inner, max_size=20)
                   | st.dictionaries(st.text(max_size=8) | st.binary(max_size=4), inner,
                                     max_size=5)),
    max_leaves=60,
)


@needs_codec
@given(_values)
def test_the_codec_gives_msgspecs_bytes_and_msgpacks_objects(value: object) -> None:
    body = _pack(value)
    assert peerframe.encode(value) == body
    got = peerframe.decode(body)
    expected = msgpack.unpackb(body, use_list=False)
    assert got == expected and repr(got) == repr(expected)  # tuples where msgpack's are
    frame = _pack([value])  # a frame's body: a list of messages
    assert wire.encode([value]) == frame and wire.unframe(frame) == (expected,)


@needs_codec
@pytest.mark.parametrize("n", [65535, 65536])
def test_the_widest_lengths_encode_and_decode_as_msgspec_and_msgpack_do(n: int) -> None:
    for value in (b"b" * n, "s" * n, (None,) * n, [1] * n, {str(i): i for i in range(n)}):
        body = _pack(value)
        assert peerframe.encode(value) == body
        assert repr(peerframe.decode(body)) == repr(msgpack.unpackb(body, use_list=False))


@needs_codec
def test_short_strings_kept_between_frames_decode_as_they_are_each_time() -> None:
    names = [f"10.0.0.{i}:7000" for i in range(2000)]  # more than the kept slots
    for _ in range(2):
        for name in names:
            assert peerframe.decode(_pack(("p", name))) == ("p", name)


def _decided_by_msgpack(body: bytes) -> None:
    """The codec leaves `body` to msgpack, and unframe answers (or fails) as msgpack."""
    assert peerframe.decode(body) is None
    try:
        expected: object = msgpack.unpackb(body, use_list=False)
    except Exception as exc:  # noqa: BLE001  (whichever error msgpack gives)
        with pytest.raises(type(exc)):
            wire.unframe(body)
    else:
        assert wire.unframe(body) == expected


@needs_codec
@pytest.mark.parametrize("body", [
    b"\x91\xd4\x01\x00",  # an ext type
    b"\x91\xc7\x01\x05x",
    b"\x91\x81\x01\x02",  # a map key msgpack refuses (strict_map_key)
    b"\x92\x01",  # cut short
    b"\x91\xcf\x00\x00\x01\x02",  # a uint64 cut short
    b"\xda\xff\xff",
    b"\xdd\xff\xff\xff\xff",  # an array of 4 billion items in 5 bytes
    b"\xdf\xff\xff\xff\xff",
    b"\x90\x90",  # extra data
    b"\x91\xa2\xff\xfe",  # not UTF-8
    b"\x91\xc1",  # never used
    b"",
    b"\x91" * 40 + b"\xc0",  # nested past the codec's depth
])
def test_what_the_codec_does_not_know_msgpack_decides(body: bytes) -> None:
    _decided_by_msgpack(body)


@needs_codec
@given(_values, st.data())
def test_damaged_frames_decode_as_msgpack_decodes_them(value: object, data) -> None:
    body = bytearray(_pack(value))
    if body:
        at = data.draw(st.integers(0, len(body) - 1))
        if data.draw(st.booleans()):
            del body[at:]
        else:
            body[at] = data.draw(st.integers(0, 255))
    got = peerframe.decode(bytes(body))
    try:
        expected: tuple = ("decoded", repr(msgpack.unpackb(bytes(body), use_list=False)))
    except Exception:  # noqa: BLE001  (msgpack refuses it: so must the codec)
        expected = ("refused",)
    if got is not None:  # (None: msgpack decides, in unframe)
        assert expected == ("decoded", repr(got))


@needs_codec
@pytest.mark.parametrize("value", [{1, 2}, frozenset(), 2**64, -(2**63) - 1,
                                   bytearray(b"x"), memoryview(b"x"), [1, {2}],
                                   ("a", 1.5, object())])
def test_what_the_codec_does_not_encode_msgspec_does(value: object) -> None:
    assert peerframe.encode(value) is None
    try:
        expected = _pack([value])
    except Exception as exc:  # noqa: BLE001
        with pytest.raises(type(exc)):
            wire.encode([value])
    else:
        assert wire.encode([value]) == expected


def test_frames_use_the_codec_where_it_is_built() -> None:
    """A compiled build has the codec (a failed C build must not pass for one)."""
    assert (objmod._native_decode is not None) == (native.state == "compiled")
    assert (objmod._native_encode is not None) == (native.state == "compiled")
    view = memoryview(b"xx" + _pack([("pas", [1, 2])]))[2:]  # a view, as Gather gives
    assert wire.unframe(view) == (("pas", (1, 2)),)


@needs_codec
@given(st.lists(_values, max_size=8))
def test_a_small_batch_is_framed_whole_as_a_body_framed_after_encoding(msgs: list) -> None:
    body = _pack(msgs)
    framed = b"$%d\r\n%b\r\n" % (len(body), body)
    assert peerframe.frame(msgs, len(body) + 1) == framed
    assert peerframe.frame(msgs, len(body)) is None  # not under `most` bytes
    assert wire.batch(msgs) == framed
    if len(body) < wire.PIECE_FROM:
        assert wire.small_frame(msgs) == framed


@needs_codec
def test_a_batch_holding_a_piece_of_its_own_is_not_a_small_frame() -> None:
    """Values of PIECE_FROM bytes or more go as pieces (wire.encode_pieces), never
    copied into one frame."""
    big = b"v" * wire.PIECE_FROM
    assert wire.small_frame([("p", 1, b"k", big, "n", 0, None)]) is None
    assert wire.small_frame([("p", 1, b"k", big[:-100], "n", 0, None)]) is not None
    assert peerframe.frame([{1, 2}], 1000) is None  # msgspec decides


def test_small_frames_are_made_where_the_codec_is_built() -> None:
    msgs = [("pas", [1, 2])]
    assert (wire.small_frame(msgs) is not None) == (native.state == "compiled")


# --- a peer link's input read into frames (wire.frame_reader) -----------------------

_frames = st.lists(
    st.one_of(
        st.lists(st.lists(_values, max_size=7).map(tuple), max_size=6).map(
            lambda msgs: ("batch", wire.batch(msgs))),
        st.tuples(st.booleans(), st.binary(max_size=600)).map(
            lambda part: ("part", wire.part_head(len(part[1]), part[0]) + part[1]
                          + wire.PART_END)),
        st.sampled_from([b"\x91\xd4\x01\x00", b"\x90\x90", b"\x05", b""]).map(
            lambda body: ("odd", wire.frame(body))),  # left to msgpack
    ),
    max_size=12,
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    at = sorted({min(c, len(data)) for c in cuts})
    return [data[i:j] for i, j in zip([0, *at], [*at, len(data)], strict=True)]


def _settled(item: object) -> object:
    """A frame as PeerInbound ends up with it: a body is unframed (or refused)."""
    if type(item) is bytes:
        try:
            return ("msgs", repr(wire.unframe(item)))
        except Exception:  # noqa: BLE001
            return ("bad frame",)
    if type(item) is tuple:
        return ("msgs", repr(item))
    return ("part", item)


@needs_codec
@given(_frames, st.lists(st.integers(0, 4000), max_size=10))
def test_a_links_input_reads_as_hiredis_and_unframe_read_it(frames: list,
                                                             cuts: list[int]) -> None:
    """However the reads cut the input, the codec's reader gives the frames hiredis
    gave, each small one decoded as unframe decodes it (a body where msgpack decides)."""
    data = b"".join(wire for _, wire in frames)
    got: list = []
    expected: list = []
    reader, reference = peerframe.Frames(), wire.HiredisFrames()
    for chunk in _split(data, cuts):
        got += reader.read(chunk)
        expected += reference.read(chunk)
    assert [_settled(i) for i in got] == [_settled(i) for i in expected]
    assert len(got) == len(frames)
    for item, (kind, _) in zip(got, frames, strict=True):
        assert type(item) is {"batch": tuple, "part": list, "odd": bytes}[kind]


@needs_codec
@pytest.mark.parametrize("data", [b"+OK\r\n", b"$x\r\n", b"$3\r\nabcde", b"*3\r\n",
                                  b"*2\r\n$1\r\n", b"*2\r\n:1\r\n:2\r\n", b"$-5\r\n",
                                  b"$99999999999999999999\r\n"])
def test_what_no_peer_sends_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        peerframe.Frames().read(data)


@needs_codec
def test_a_frame_read_a_byte_at_a_time_is_read_once_whole() -> None:
    msgs = [("p", 7, b"k", b"v" * 300, "10.0.0.2:7000", 3, None), ("pas", [1, 2, 3])]
    data = wire.batch(msgs) * 3
    reader = peerframe.Frames()
    got = [item for i in range(len(data)) for item in reader.read(data[i:i + 1])]
    assert got == [(("p", 7, b"k", b"v" * 300, "10.0.0.2:7000", 3, None),
                    ("pas", (1, 2, 3)))] * 3


def test_a_peer_link_reads_with_the_codec_where_it_is_built() -> None:
    assert (type(wire.frame_reader()) is not wire.HiredisFrames) == (
        native.state == "compiled")
