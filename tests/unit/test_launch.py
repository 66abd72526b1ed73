"""`hubtransfer launch` and the launch checks, without launching: the command line, the one-line rendezvous errors,
and the refusals of a launch that would not run as asked."""

from argparse import Namespace
from types import SimpleNamespace

import pytest
from accelerate.utils import DistributedType

from hubtransfer.cli.launch import LaunchError, command, read_config, rendezvous_failure
from hubtransfer.cli.parser import parser
from hubtransfer.errors import TrainingError
from hubtransfer.train.session import check_launch


def _args(*argv: str) -> Namespace:
    return parser().parse_args(["launch", *argv])


def test_the_flags_override_the_config_and_the_rendezvous_gives_up():
    args = _args(
        "recipes/launch/multinode.yaml", "r.yaml", "train.lr=1e-4", "--machine-rank", "1", "--rendezvous-timeout", "7"
    )
    cmd = command(args)
    assert cmd[1:5] == ["-m", "accelerate.commands.launch", "--config_file", "recipes/launch/multinode.yaml"]
    assert cmd[cmd.index("--machine_rank") + 1] == "1" and "--main_process_ip" not in cmd
    assert cmd[cmd.index("--rdzv_conf") + 1] == "timeout=7"
    assert cmd[-5:] == ["-m", "hubtransfer.cli", "train", "r.yaml", "train.lr=1e-4"]


def test_a_rendezvous_that_timed_out_becomes_one_line_naming_the_address():
    client = (
        "torch.distributed.DistNetworkError: The client socket has timed out after 15000ms while trying to connect "
        "to (10.0.0.5, 29530)."
    )
    args = _args("recipes/launch/multinode.yaml", "r.yaml", "--machine-rank", "1")
    line = rendezvous_failure(client, {"num_machines": 2}, args)
    assert line.startswith("machine rank 1 could not reach the main machine at 10.0.0.5:29530 within 15 s")
    server = "torch.distributed.DistStoreError: Timed out after 16 seconds waiting for clients. 1/3 clients joined."
    line = rendezvous_failure(server, {"num_machines": 3}, _args("recipes/launch/multinode.yaml", "r.yaml"))
    assert "only 1 of 3 machines joined (num_machines: 3)" in line and "rank 1..2" in line
    assert rendezvous_failure("RuntimeError: CUDA out of memory", {}, args) is None  # other failures pass through


def test_a_file_that_is_not_a_launch_config_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cpu_2proc\.yaml"):
        read_config(tmp_path / "missing.yaml")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("task: text-classification\n")
    with pytest.raises(LaunchError, match="not an Accelerate launch config"):
        read_config(recipe)


def _accelerator(mode: DistributedType, processes: int) -> SimpleNamespace:
    return SimpleNamespace(distributed_type=mode, num_processes=processes, device=SimpleNamespace(type="cpu"))


def test_a_launch_that_would_not_run_as_asked_is_refused():
    with pytest.raises(TrainingError, match=r"asks for FSDP but Accelerate .* set up MULTI_CPU on cpu"):
        check_launch(_accelerator(DistributedType.MULTI_CPU, 2), {"ACCELERATE_USE_FSDP": "true", "WORLD_SIZE": "2"})
    with pytest.raises(TrainingError, match="asks for DeepSpeed"):
        check_launch(
            _accelerator(DistributedType.MULTI_CPU, 2), {"ACCELERATE_USE_DEEPSPEED": "true", "WORLD_SIZE": "2"}
        )
    # started 2, joined a world of 1: each process would train alone (accelerate launch --cpu --num_processes 2)
    with pytest.raises(TrainingError, match="started 2 processes but this one joined a world of 1"):
        check_launch(_accelerator(DistributedType.NO, 1), {"WORLD_SIZE": "2"})
    check_launch(_accelerator(DistributedType.FSDP, 2), {"ACCELERATE_USE_FSDP": "true", "WORLD_SIZE": "2"})
    check_launch(_accelerator(DistributedType.NO, 1), {})
