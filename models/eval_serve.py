"""The baseline server behind `models/eval.py serve`: next-token logits of the n-gram or the LSTM
baseline for the Rust sampler (xtask/src/eval/baseline.rs), so the baselines run through the same
engine, grammar and masks as the model.

    models/.venv/bin/python models/eval.py serve ngram --order 6 --data-dir target/dataset
    models/.venv/bin/python models/eval.py serve lstm --checkpoint models/checkpoints/lstm/best.pt
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np

import data as trio_data
import ngram


class NgramLogits:
    """models/ngram.py's Kneser-Ney model, fitted on the training token file, as next-token logits
    (natural-log probabilities) for a context."""

    def __init__(self, order, data_dir, max_train_tokens, seed):
        vocab = trio_data.load_vocab()
        path = os.path.join(data_dir, "train.bin")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing (cargo xtask dataset builds it)")
        trio_data.check_manifest(data_dir, vocab)
        tokens, songs = ngram.select_songs(trio_data.load_tokens(path), vocab, max_train_tokens, seed)
        started = time.time()
        self.model = ngram.KneserNey(order, vocab.size, vocab.bos).fit(tokens)
        self.order, self.size = order, vocab.size
        self.info = {"order": order, "train_tokens": len(tokens), "train_songs": int(songs),
                     "fit_seconds": round(time.time() - started, 1), "vocab_size": vocab.size,
                     "vocab_hash": vocab.hash, "context_length": 1 << 20}

    def logits(self, context):
        history = np.zeros(self.order - 1, dtype=np.int64)
        tail = context[-(self.order - 1):]
        history[len(history) - len(tail):] = tail
        targets = np.arange(self.size, dtype=np.int64)
        histories = np.broadcast_to(history, (self.size, self.order - 1))
        lengths = np.full(self.size, len(context), dtype=np.int64)
        return self.model.log2_probs(histories, targets, lengths) * np.log(2.0)


class LstmLogits:
    """A trained LSTM baseline checkpoint (models/train.py --arch lstm), keeping its recurrent state
    across calls whose context extends the previous one."""

    def __init__(self, checkpoint):
        if not os.path.exists(checkpoint):
            raise FileNotFoundError(f"no LSTM checkpoint at {checkpoint} (models/train.py --arch lstm makes one)")
        # torch only here: the n-gram server starts without it.
        import torch

        from model import build_model

        torch.set_num_threads(1)
        state = torch.load(checkpoint, weights_only=True, map_location="cpu")
        vocab = trio_data.load_vocab()
        if state["arch"] != "lstm" or state["vocab_hash"] != vocab.hash:
            raise ValueError(f"{checkpoint} is a {state['arch']} on vocabulary {state['vocab_hash']}, not an LSTM on {vocab.hash}")
        self.torch = torch
        self.model = build_model("lstm", state["model_config"])
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.seen, self.state = [], None
        self.info = {"checkpoint": checkpoint, "iter": int(state.get("iter", 0)),
                     "best_valid_bits": state.get("best_valid_bits"), "vocab_size": vocab.size, "vocab_hash": vocab.hash,
                     "context_length": int(state["model_config"].get("context_length", 512))}

    def logits(self, context):
        context = [int(t) for t in context]
        n = len(self.seen)
        if n == 0 or len(context) <= n or context[:n] != self.seen:
            self.seen, self.state, new = [], None, context
        else:
            new = context[n:]
        with self.torch.no_grad():
            out, self.state = self.model.lstm(self.model.embed(self.torch.tensor([new])), self.state)
            logits = self.model.head(out[0, -1]).double().numpy()
        self.seen = context
        return logits


def serve(argv):
    """Next-token logits for the Rust sampler (xtask/src/eval/baseline.rs), over stdin/stdout: a
    request is a little-endian u32 count and that many u32 token ids (the whole context); the answer
    is vocab-size little-endian f32 logits; a count of 0 ends. The first stdout line describes the
    model as JSON ({"ok": false, "why": ...} when it cannot be had)."""
    parser = argparse.ArgumentParser(prog="eval.py serve", description="a baseline's next-token logits for xtask, over stdin/stdout")
    parser.add_argument("kind", choices=["ngram", "lstm"])
    parser.add_argument("--order", type=int, default=6)
    parser.add_argument("--data-dir", default="target/dataset")
    parser.add_argument("--max-train-tokens", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--checkpoint", default="models/checkpoints/lstm/best.pt")
    args = parser.parse_args(argv)
    out, inp = sys.stdout.buffer, sys.stdin.buffer
    try:
        if args.kind == "ngram":
            source = NgramLogits(args.order, args.data_dir, args.max_train_tokens, args.seed)
        else:
            source = LstmLogits(args.checkpoint)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure is reported to the caller as the reason
        out.write((json.dumps({"ok": False, "why": f"{type(e).__name__}: {e}"}) + "\n").encode())
        out.flush()
        return 0
    out.write((json.dumps({"ok": True, **source.info}) + "\n").encode())
    out.flush()
    while True:
        head = inp.read(4)
        if len(head) < 4:
            break
        (count,) = struct.unpack("<I", head)
        if count == 0:
            break
        context = np.frombuffer(inp.read(4 * count), dtype="<u4").astype(np.int64)
        out.write(np.asarray(source.logits(context), dtype="<f4").tobytes())
        out.flush()
    return 0
