"""Commands use only what their Context names, and the client connection provides it.

commands/context.py is the seam between the Redis commands and the server. mypy checks
both sides of it: every handler against the Protocol (a handler reaching for
`c.server`, a socket or anything else unnamed fails), and the client connection that
runs the handlers against the same Protocol (a member it stops providing fails).
"""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ["dynredis/commands", "dynredis/server/client.py", "dynredis/server/app.py"]


def mypy(*paths: str, cache: Path) -> tuple[str, int]:
    out, err, status = api.run(["--follow-imports=silent", "--cache-dir", str(cache),
                                "--no-error-summary", *paths])
    return out + err, status


def test_the_commands_and_the_connection_agree_on_the_context(tmp_path: Path) -> None:
    out, status = mypy(*(str(ROOT / p) for p in CHECKED), cache=ROOT / "build" / "mypy-context")
    assert status == 0, out


def test_the_check_sees_a_command_reaching_into_the_server(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text(
        "from dynredis.commands.context import Context\n"
        "def cmd_x(c: Context, args: list[bytes]) -> bytes | None:\n"
        "    c.node.get(args[1], lambda r: None)\n"
        "    c.server.pump()\n"
        "    return None\n")
    out, status = mypy(str(handler), cache=ROOT / "build" / "mypy-context")
    assert status == 1
    assert out.count("error:") == 1 and '"Context" has no attribute "server"' in out, out


def test_the_check_sees_a_connection_missing_a_member(tmp_path: Path) -> None:
    conn = tmp_path / "conn.py"
    conn.write_text(
        "from dynredis.commands.context import Context\n"
        "from dynredis.server.client import ClientConnection\n"
        "class Partial(ClientConnection):\n"
        "    retry_until = None  # type: ignore[assignment]\n"
        "def run(c: Partial) -> Context:\n"
        "    return c\n")
    out, status = mypy(str(conn), cache=ROOT / "build" / "mypy-context")
    assert status == 1
    assert "retry_until" in out, out
