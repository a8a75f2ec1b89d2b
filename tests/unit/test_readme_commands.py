"""Every command the README shows works as written on a fresh clone: the tool is
typed by its path in .venv/bin (a fresh clone has no `dynredis` on its PATH), every
`make` target it names exists and accepts the variables shown, and every file a command
names is in the repository."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(?:sh|console|bash)\n(.*?)```", README, re.S)


def shell_lines() -> list[str]:
    """The commands of the README's shell blocks (prompts and comments removed,
    continuations joined)."""
    out = []
    for block in BLOCKS:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("$ ").split("  #")[0].strip()
            if line and not line.startswith(("1)", "2)", '"', "OK", "(")):
                out.append(line)
    return out


def test_the_readme_runs_the_tool_by_the_path_a_fresh_clone_has() -> None:
    lines = shell_lines()
    assert any(line.startswith(".venv/bin/dynredis ") for line in lines)
    bare = [line for line in lines if re.match(r"(\S+=\S+ )*dynredis\b", line)]
    assert not bare, bare
    prose = re.findall(r"`(dynredis (?:stop|status|cluster)[^`]*)`", README)
    commands = [p for p in prose if "--" in p]  # with options: a command to type
    assert not commands, commands


def test_every_make_command_of_the_readme_is_a_target_that_takes_its_variables() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.M))
    makes = [line for line in shell_lines() if line.startswith("make ")]
    makes += re.findall(r"`(make [^`]+)`", README)
    assert {"make cluster", "make test", "make status", "make stop"} <= {
        " ".join(m.split()[:2]) for m in makes}
    for cmd in makes:
        words = shlex.split(cmd.replace("[", "").replace("]", ""))
        assert words[1] in targets, cmd
        if words[1] in ("cluster", "stop", "status"):
            dry = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True,
                                 text=True, timeout=60)
            assert dry.returncode == 0, (cmd, dry.stderr)


def test_make_cluster_takes_its_ports_size_and_directory() -> None:
    dry = subprocess.run(["make", "-n", "cluster", "PORT=27000", "NODES=5", "DATA=/tmp/d5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "--nodes 5 --base-port 27000" in dry.stdout and "--data-dir /tmp/d5" in dry.stdout
    # A PORT in the environment is not the cluster's port: only the command line sets it.
    env_port = subprocess.run(["make", "-n", "cluster"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                          "PORT": "9999"})
    assert "--base-port 7000" in env_port.stdout


def test_files_the_readme_commands_name_exist() -> None:
    for line in shell_lines():
        for word in shlex.split(line, posix=True) if "'" not in line else line.split():
            if re.match(r"^(bench|docker|scripts|tests)/\S+\.\w+$", word):
                assert (ROOT / word).exists(), (line, word)
