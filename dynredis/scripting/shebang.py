"""The first line of a script or a function library: `#!lua flags=...` / `#!lua name=...`.

Parsed as Redis 7.0 parses them (evalExtractShebangFlags, functionExtractLibMetaData),
with the same error texts.
"""

from __future__ import annotations

# Script and function flags, in the order Redis lists them.
FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")


def script_flags(body: bytes) -> tuple[frozenset[str] | None, str | None]:
    """An EVAL script's flags: (None, None) without a shebang (Redis' compatibility mode),
    (flags, None) with one, or (None, error text without the "ERR ")."""
    if not body.startswith(b"#!"):
        return None, None
    end = body.find(b"\n")
    if end < 0:
        return None, "Invalid script shebang"
    parts = body[:end].split()
    if not parts:
        return None, "Invalid engine in script shebang"
    if parts[0] != b"#!lua":
        return None, "Unexpected engine in script shebang: " + _text(parts[0])
    flags: set[str] = set()
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            return None, "Unknown lua shebang option: " + _text(part)
        value = part[6:]
        if not value:
            continue
        for flag in value.split(b","):
            name = _text(flag)
            if name not in FLAGS:
                return None, "Unexpected flag in script shebang: " + name
            flags.add(name)
    return frozenset(flags), None


def library_name(code: bytes) -> tuple[str | None, str | None]:
    """A function library's name from its metadata line, or (None, error text)."""
    if not code.startswith(b"#!"):
        return None, "Missing library metadata"
    end = code.find(b"\n")
    if end < 0:
        return None, "Invalid library metadata"
    parts = code[:end].split()
    if not parts:
        return None, "Invalid library metadata"
    engine = _text(parts[0][2:])
    name: str | None = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                return None, "Invalid metadata value, name argument was given multiple times"
            name = _text(part[5:])
            continue
        return None, "Invalid metadata value given: " + _text(part)
    if name is None:
        return None, "Library name was not given"
    if engine.lower() != "lua":
        return None, f"Engine '{engine}' not found"
    if not valid_name(name):
        return None, ("Library names can only contain letters, numbers, or underscores(_) "
                      "and must be at least one character long")
    return name, None


def valid_name(name: str) -> bool:
    return bool(name) and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
