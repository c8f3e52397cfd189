"""train.py under torchrun with DistributedDataParallel: two gloo processes on the CPU (CI has no GPU)."""

import json
import math
import os
import signal
import subprocess
import sys

import pytest
import torch

import export
import train
from model import build_model

WORKSPACE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENS_PER_RANK_STEP = train.TINY["batch_size"] * train.TINY["context_length"]


def torchrun(synthetic_dir, out_dir, *extra, timeout=120):
    """Two processes of train.py --tiny; their own session, so a hung run is killed whole."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "models/train.py", "--tiny", "--data-dir", synthetic_dir, "--out-dir", str(out_dir), "--no-progress",
               "--threads", "1", *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen(command, cwd=WORKSPACE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # ranks that wait on each other forever would outlive torchrun
        output, _ = proc.communicate()
        pytest.fail(f"torchrun timed out after {timeout} s (ranks out of step?):\n{output[-4000:]}")
    assert proc.returncode == 0, output[-4000:]
    with open(out_dir / "metrics.json") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def ddp_run(synthetic_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    return torchrun(synthetic_dir, out, "--max-iters", "6", "--eval-interval", "3"), out


def test_both_ranks_train_on_their_own_batches(ddp_run):
    metrics, _ = ddp_run
    assert metrics["world_size"] == 2 and metrics["iters"] == 6
    assert metrics["tokens_seen"] == 6 * 2 * TOKENS_PER_RANK_STEP  # the batch size is per rank
    crcs = metrics["first_batch_crc32"]
    assert len(crcs) == 2 and crcs[0] != crcs[1], "the ranks drew the same windows"
    assert [it for it, _ in metrics["history"]["valid"]] == [0, 3, 6]  # rank 0 alone evaluates, once each
    losses = [loss for _, loss in metrics["history"]["train"]] + [b for _, b in metrics["history"]["valid"]]
    assert losses and all(math.isfinite(x) for x in losses)


def test_checkpoint_is_the_plain_model(ddp_run):
    _, out = ddp_run
    for name in ("last.pt", "best.pt"):
        checkpoint = torch.load(out / name, weights_only=True)
        assert not any(key.startswith("module.") for key in checkpoint["model"]), name
        model = build_model(checkpoint["arch"], checkpoint["model_config"])
        model.load_state_dict(checkpoint["model"], strict=True)
    export.load_checkpoint(str(out / "last.pt"))  # what export.py reads
    # Each rank's generators are kept, so --resume continues every rank's own stream of windows.
    rank_rngs = torch.load(out / "last.pt", weights_only=True)["rank_rngs"]
    assert len(rank_rngs) == 2 and rank_rngs[0][0] != rank_rngs[1][0]


def test_resume_matches_an_uninterrupted_run(synthetic_dir, ddp_run, tmp_path):
    # Every rank continues its own generator from the checkpoint: ranks that all restarted from rank 0's
    # (or from their seeds) would train on other windows than the uninterrupted run did.
    _, straight_out = ddp_run
    paused = torchrun(synthetic_dir, tmp_path, "--max-iters", "6", "--eval-interval", "3", "--pause-at", "3")
    assert paused["iters"] == 3
    resumed = torchrun(synthetic_dir, tmp_path, "--max-iters", "6", "--resume")
    assert resumed["iters"] == 6 and resumed["tokens_seen"] == 6 * 2 * TOKENS_PER_RANK_STEP
    a = torch.load(straight_out / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "last.pt", weights_only=True)
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=1e-6, msg=name)
