import json
import math
import os

import pytest
import torch

import train


def run(synthetic_dir, out_dir, *extra):
    return train.main(["--tiny", "--data-dir", synthetic_dir, "--out-dir", str(out_dir), "--no-progress",
                       "--threads", "1", *extra])


@pytest.fixture(scope="module")
def straight_run(synthetic_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("transformer")
    return run(synthetic_dir, out, "--max-iters", "30"), out


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_smoke_run_learns(arch, synthetic_dir, straight_run, tmp_path):
    if arch == "transformer":
        metrics, out = straight_run
    else:
        out = tmp_path
        metrics = run(synthetic_dir, out, "--arch", "lstm", "--max-iters", "30")
    assert metrics["arch"] == arch and metrics["iters"] == 30
    for name in ("last.pt", "best.pt", "metrics.json", "loss.png"):
        assert os.path.getsize(out / name) > 0, name
    with open(out / "metrics.json") as f:
        assert json.load(f)["iters"] == 30
    train_losses = [loss for _, loss in metrics["history"]["train"]]
    valid_bits = [bits for _, bits in metrics["history"]["valid"]]
    assert [it for it, _ in metrics["history"]["valid"]] == [0, 10, 20, 30]
    assert train_losses[-1] < train_losses[0] - 0.5
    assert valid_bits[-1] < valid_bits[0] - 1.0
    assert valid_bits[-1] < math.log2(metrics["model_config"]["vocab_size"])
    assert metrics["best_valid_bits_per_token"] == min(valid_bits)
    assert metrics["tokens_seen"] == 30 * train.TINY["batch_size"] * train.TINY["context_length"]


def test_resume_matches_an_uninterrupted_run(synthetic_dir, straight_run, tmp_path):
    _, straight_out = straight_run
    paused = run(synthetic_dir, tmp_path, "--max-iters", "30", "--pause-at", "15")
    assert paused["iters"] == 15
    resumed = run(synthetic_dir, tmp_path, "--max-iters", "30", "--resume")
    assert resumed["iters"] == 30 and resumed["tokens_seen"] == straight_run[0]["tokens_seen"]
    a = torch.load(straight_out / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "last.pt", weights_only=True)
    assert a["iter"] == b["iter"] == 30
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=1e-6, msg=name)
    assert b["best_valid_bits"] == pytest.approx(a["best_valid_bits"], abs=1e-6)


def test_resume_without_checkpoint_fails(synthetic_dir, tmp_path):
    with pytest.raises(SystemExit):
        run(synthetic_dir, tmp_path, "--max-iters", "5", "--resume")
