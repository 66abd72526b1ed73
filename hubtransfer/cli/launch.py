"""``hubtransfer launch CONFIG RECIPE [overrides]``: ``accelerate launch`` of ``hubtransfer train`` with a launch config
(recipes/launch/), a rendezvous that gives up after a timeout, and one line saying why when it does.

Accelerate's config files carry no rendezvous timeout, and torchrun's static rendezvous waits 600 s by default for a
machine that may never come (a wrong address or port, a firewall, the other machine not started): the launch looks
hung. Here both sides stop after ``--rendezvous-timeout`` seconds and the error names the address and the fix.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

import yaml

from hubtransfer.errors import HubtransferError

# What torch prints when the rendezvous gives up: a machine that cannot reach the main one, or the main one that
# waited for the others in vain.
_CLIENT_LOST = re.compile(r"timed out after (\d+)ms while trying to connect to \(([^,]+), (\d+)\)")
_SERVER_ALONE = re.compile(r"Timed out after (\d+) seconds waiting for clients\. (\d+)/(\d+) clients joined")
# Flags of `hubtransfer launch` that override the config file's key of the same name.
OVERRIDES = ("machine_rank", "main_process_ip", "main_process_port", "num_processes", "num_machines")


class LaunchError(HubtransferError, RuntimeError):
    """A launch that did not start its processes together, with the fix."""


def read_config(path: Path) -> dict:
    """The launch config (an Accelerate config file), checked for what a multi-process run needs."""
    if not path.is_file():
        known = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "recipes" / "launch").glob("*.yaml"))
        raise FileNotFoundError(f"launch config '{path}' not found; the shipped ones (recipes/launch/): {known}")
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict) or "distributed_type" not in config:
        raise LaunchError(
            f"{path} is not an Accelerate launch config (no distributed_type); write one with `accelerate config` "
            "or start from recipes/launch/"
        )
    return config


def command(args) -> list[str]:
    """The ``accelerate launch`` command line."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(args.config)]
    for key in OVERRIDES:
        value = getattr(args, key)
        if value is not None:
            cmd += [f"--{key}", str(value)]
    cmd += ["--rdzv_conf", f"timeout={args.rendezvous_timeout}"]
    return [*cmd, "-m", "hubtransfer.cli", "train", str(args.recipe), *args.overrides]


def launch(args) -> int:
    """Run the launch, passing its output through; a rendezvous that timed out becomes one line (exit 2)."""
    config = read_config(Path(args.config))
    tail: collections.deque[str] = collections.deque(maxlen=400)
    with subprocess.Popen(command(args), stderr=subprocess.PIPE, text=True, bufsize=1) as proc:
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line)
    if proc.returncode == 0:
        return 0
    why = rendezvous_failure("".join(tail), config, args)
    if why:
        raise LaunchError(why)
    return proc.returncode


def rendezvous_failure(stderr: str, config: dict, args) -> str | None:
    """One line for a launch whose machines never met, or None when it failed otherwise."""
    setting = lambda key: getattr(args, key) if getattr(args, key) is not None else config.get(key)
    rank, machines = setting("machine_rank") or 0, setting("num_machines") or 1
    if m := _CLIENT_LOST.search(stderr):
        host, port, seconds = m.group(2), m.group(3), int(m.group(1)) // 1000
        return (
            f"machine rank {rank} could not reach the main machine at {host}:{port} within {seconds} s. Start machine "
            f"rank 0 first (or within --rendezvous-timeout) with the same main_process_ip and main_process_port, and "
            f"check that this machine reaches {host}:{port} (firewall, the main machine's address on this network)"
        )
    if m := _SERVER_ALONE.search(stderr):
        return (
            f"the main machine waited {m.group(1)} s but only {m.group(2)} of {m.group(3)} machines joined "
            f"(num_machines: {machines}). Start every machine rank 1..{machines - 1} with the same main_process_ip "
            "and main_process_port within --rendezvous-timeout, or lower num_machines"
        )
    return None
