import io
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

import data
import export
import finetune
from model import TransformerConfig, TrioTransformer

MODELS_DIR = os.path.dirname(os.path.abspath(data.VOCAB_PATH))


def write_token_dir(out, vocab, train_songs, valid_songs, summary=None):
    os.makedirs(out, exist_ok=True)
    np.asarray([t for s in train_songs for t in s], dtype="<u2").tofile(os.path.join(out, "train.bin"))
    np.asarray([t for s in valid_songs for t in s], dtype="<u2").tofile(os.path.join(out, "valid.bin"))
    with open(os.path.join(out, "data.json"), "w") as f:
        json.dump(summary if summary is not None else {"files_used": 3, "roles_found": ["lead", "bass"]}, f)
    return str(out)


@pytest.fixture(scope="module")
def pattern_dir(tmp_path_factory, vocab):
    """The user's 'style': one short synthetic song, repeated. Held-out is the same song, so a model
    that learns the training data must do better on it (and train.bin is only ~1,400 tokens)."""
    song = data.synthetic_song(vocab, np.random.default_rng(7), bars=4)
    return write_token_dir(tmp_path_factory.mktemp("pattern"), vocab, [song] * 8, [song])


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, vocab):
    """A tiny untrained TrioTransformer exported by export.py: the base to fine-tune."""
    torch.manual_seed(0)
    model = TrioTransformer(TransformerConfig(vocab_size=vocab.size, n_layer=2, n_head=4, n_kv_head=1, d_model=64,
                                              context_length=128)).eval()
    path = str(tmp_path_factory.mktemp("base") / "tiny-base.onnx")
    export.export_onnx(model, path, export.metadata_for(model, vocab, None, "test data", "MIT", "tiny-base-0"))
    return path


def finetune_args(data_dir, base, out, name, *extra):
    return ["--data", data_dir, "--from", base, "--out", str(out), "--name", name, "--threads", "1",
            "--batch-size", "4", "--eval-interval", "5", "--lr", "3e-3", *extra]


@pytest.fixture(scope="module")
def first_run(pattern_dir, tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("first") / "my-style.onnx"
    card = finetune.main(finetune_args(pattern_dir, tiny_base, out, "my-style", "--max-iters", "20"))
    return card, out


def metadata_of(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_finetune_learns_and_exports(first_run, vocab, pattern_dir):
    card, out = first_run
    assert card["iterations"] == 20 and card["tokens_seen"] == 20 * 4 * card["settings"]["context_length"]
    assert card["held_out_bits_per_token_after"] < card["held_out_bits_per_token_before"] - 1.0
    assert [i for i, _ in card["history"]] == [0, 5, 10, 15, 20]
    assert card["held_out_bits_per_token_after"] == min(b for _, b in card["history"])
    assert card["parameters_trained"] == card["parameters_total"] > 0
    assert card["stop_reason"] == "iteration limit reached" and card["stopped_early"] is False
    assert card["device"] == "cpu" and card["parity_error"] <= 1e-4
    assert card["data"] == {"files_used": 3, "roles_found": ["lead", "bass"]}

    with open(os.path.splitext(str(out))[0] + ".json") as f:  # the default --card-json
        assert json.load(f) == json.loads(json.dumps(card))

    meta = metadata_of(out)
    base_meta = metadata_of(card["base_path"])
    for key in ("vocab_hash", "vocab_size", "context_length", "n_layer", "n_head", "n_kv_head", "head_dim",
                "d_model", "arch"):
        assert meta[key] == base_meta[key], key
    assert meta["model_version"] == "my-style" and meta["base_model"] == "tiny-base-0"
    assert meta["licence"] == "the user's own data"
    assert "\n" not in meta["training_data"] and "3 MIDI files" in meta["training_data"]
    figures = json.loads(meta["finetune"])
    assert figures["bits_after"] < figures["bits_before"] and figures["iters"] == 20

    # ONNX Runtime runs it, and it prefers the song it was taught over the untrained base.
    song = [int(t) for t in np.fromfile(os.path.join(pattern_dir, "valid.bin"), dtype="<u2")[:40]]
    tuned, _ = export.onnx_logits(str(out), song, 39, 0)
    base, _ = export.onnx_logits(card["base_path"], song, 39, 0)

    def nll(logits):
        logp = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        return -logp[np.arange(39), song[1:40]].mean()
    assert nll(tuned) < nll(base) - 0.5


def test_finetune_of_a_finetune(first_run, pattern_dir, tmp_path):
    card, first = first_run
    out = tmp_path / "my-style-2.onnx"
    card_path = tmp_path / "card.json"
    second = finetune.main(finetune_args(pattern_dir, str(first), out, "my-style-2", "--max-iters", "5",
                                         "--card-json", str(card_path)))
    assert os.path.exists(card_path) and os.path.exists(out)
    assert second["base_model"] == "my-style" and metadata_of(out)["base_model"] == "my-style"
    # It starts where the first one ended (same evaluation, same weights).
    assert second["held_out_bits_per_token_before"] == pytest.approx(card["held_out_bits_per_token_after"], abs=1e-4)


def test_deterministic_and_progress_lines(first_run, pattern_dir, tiny_base, tmp_path, capsys):
    card, _ = first_run
    again = finetune.main(finetune_args(pattern_dir, tiny_base, tmp_path / "again.onnx", "again", "--max-iters", "20"))
    assert again["history"] == card["history"]  # same seed on the CPU: the same run
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("iter ")]
    assert len(lines) == 5 and "\r" not in err  # not a terminal: one line per evaluation (0, 5, 10, 15, 20)
    assert all(key in lines[-1] for key in ("iter 20", "train", "held-out", "left"))


def test_early_stop_keeps_the_best(pattern_dir, tiny_base, tmp_path):
    # A learning rate far too high: the held-out loss gets worse, the run stops, the base is kept.
    card = finetune.main(finetune_args(pattern_dir, tiny_base, tmp_path / "x.onnx", "x", "--lr", "3",
                                       "--patience", "2", "--eval-interval", "1", "--max-iters", "50"))
    assert card["stopped_early"] and card["stop_reason"].startswith("early stop")
    assert card["iterations"] < 50 and card["best_iteration"] == 0
    assert card["held_out_bits_per_token_after"] == card["held_out_bits_per_token_before"]


def test_training_data_is_one_line():
    summary = {"summary": "the user's own MIDI: 5 files (1 held out),\n 80 bars", "files": []}
    assert finetune.describe_data(summary, 100, 20) == ("the user's own MIDI: 5 files (1 held out), 80 bars; "
                                                        "100 training + 20 held-out tokens")
    assert finetune.describe_data(None, 100, 20) == "the user's own MIDI files: 100 training + 20 held-out tokens"
    assert finetune.describe_data({"files": [{}, {}]}, 1, 2).startswith("the user's own MIDI files: 2 MIDI files; ")


def test_progress_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    stream = Tty()
    progress = finetune.Progress(stream)
    progress.show("iter 1 | a long line")
    progress.show("iter 2")
    progress.close()
    assert stream.getvalue() == "\riter 1 | a long line\riter 2" + " " * 14 + "\n"


def test_heldout_windows_score_every_token_once(vocab):
    rng = np.random.default_rng(3)
    songs = [data.synthetic_song(vocab, rng, bars=bars) for bars in (2, 30, 12)]
    tokens = np.asarray([t for s in songs for t in s], dtype=np.int64)
    for context in (32, 100, 512):
        windows = finetune.heldout_windows(tokens, vocab, context)
        assert all(len(x) == len(y) <= context for x, y in windows)
        scored = sum(int((y != data.IGNORE_INDEX).sum()) for _, y in windows)
        assert scored == len(tokens) - len(songs)  # every token but each song's BOS
        for x, y in windows:  # each window is a song's header, then a bar (when a bar fits in the window)
            assert x[0] == vocab.bos and (x[vocab.header_length] == vocab.bar or context < 512)
            assert (y != data.IGNORE_INDEX).any()
    # A held-out file shorter than the context (and cut mid-song, without EOS) still evaluates.
    short = tokens[:50]
    windows = finetune.heldout_windows(short, vocab, 512)
    assert len(windows) == 1 and int((windows[0][1] != data.IGNORE_INDEX).sum()) == 49


def refusal(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        finetune.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("finetune: ")
    return err


def test_refusals(pattern_dir, tiny_base, tmp_path, capsys, vocab):
    no_train = tmp_path / "no-train"
    no_train.mkdir()
    err = refusal(capsys, finetune_args(str(no_train), tiny_base, tmp_path / "o.onnx", "o"))
    assert "no train.bin" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.bin").write_bytes(b"")
    with open(os.path.join(pattern_dir, "valid.bin"), "rb") as f:
        (empty / "valid.bin").write_bytes(f.read())
    err = refusal(capsys, finetune_args(str(empty), tiny_base, tmp_path / "o.onnx", "o"))
    assert "train.bin is empty" in err

    proto = onnx.load(tiny_base)
    for entry in proto.metadata_props:
        if entry.key == "vocab_hash":
            entry.value = "0123456789abcdef"
    other_vocab = str(tmp_path / "other-vocab.onnx")
    onnx.save_model(proto, other_vocab)
    err = refusal(capsys, finetune_args(pattern_dir, other_vocab, tmp_path / "o.onnx", "o"))
    assert "0123456789abcdef" in err and vocab.hash in err
    assert not os.path.exists(tmp_path / "o.onnx")


def test_command_line_refusal(tmp_path):
    # The script as the Rust side runs it, from the workspace root.
    result = subprocess.run([sys.executable, os.path.join(MODELS_DIR, "finetune.py"), "--data", str(tmp_path),
                             "--from", os.path.join(MODELS_DIR, "trio-base.onnx"), "--out", str(tmp_path / "o.onnx"),
                             "--name", "o"], capture_output=True, text=True, cwd=os.path.dirname(MODELS_DIR),
                            check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"finetune: {tmp_path} has no train.bin (training songs)"
