"""Fine-tune an exported Neural Trio model on the user's own songs ("teach the trio your style").

Run from the workspace root (/work/main); `cargo xtask finetune --midi DIR --name NAME` encodes the
MIDI files into a token directory and then runs this script:

    models/.venv/bin/python models/finetune.py --data TOKENS_DIR --from models/trio-base.onnx \\
        --out my-style.onnx --name my-style [--minutes 10] [--epochs E] [--device cpu|cuda|auto] \\
        [--threads N] [--seed S] [--card-json my-style.json]

TOKENS_DIR holds train.bin and valid.bin (little-endian uint16 token ids, songs concatenated, each
BOS TEMPO KEY MOOD, bars, EOS: the format of target/dataset) and data.json (what the Rust side
read: copied as given into the card). Either file may be short.

What it does, nanoGPT style: rebuild the PyTorch model from the --from ONNX file (onnx_weights.py,
parity-checked), measure held-out bits per token over ALL of valid.bin, then train the whole model
(AdamW, short warmup, constant small learning rate) on random windows of train.bin, evaluating every
few iterations and keeping the best weights by held-out loss. It stops when the held-out loss has
not improved for `patience` evaluations, or when --minutes / --epochs run out, whichever is first.
The best weights are exported with export.py (same step graph and KV cache as the shipped model,
parity-checked again) with the base model's metadata plus model_version=NAME, base_model,
licence, training_data and finetune (a JSON string of the figures). --card-json (default: OUT
with a .json suffix) gets the figures for the model card.

FIGURES (held-out bits/token, best by early stopping; 2 CPU cores; proxies for a user's folder, since
no user data is at hand: songs from POP909's held-out split, which trio-base never saw):
                                            8 songs (52k tokens)   25 songs (154k)     synthetic (3.5k)
    before (trio-base-0.2)                      1.1938                 1.2389              4.7435
    full, lr 3e-4, dropout 0.1                  1.1938 (no gain)       -                   -
    full, lr 1e-4, dropout 0.1 (default)        1.1816 (iter 10)       1.1871 (iter 40)    2.9257 (iter 40)
    full, lr 3e-5, dropout 0.1                  1.1797 (iter 20)       1.1883 (iter 48+)   2.9719 (iter 60+)
    full, lr 1e-4, dropout 0.0                  -                      -                   2.9415 (iter 30)
    LoRA rank 8 on all 5 matrices, lr 1e-3      1.1780 (iter 15)       -                   2.8989 (iter 50)
(+ = still improving when the run ended.) Adapters came out level on real songs (0.002 bits/token, the
size of the difference between two learning rates) and slightly ahead on the synthetic set; not enough to
justify a second code path (adapter modules, merging before export), so the whole model is trained.
lr 1e-4 is level with 3e-5 on real songs and gets there in fewer iterations (a 10-minute budget on a busy
2-core CPU is only ~50 iterations); 3e-4 overfits before the first evaluation. Every run overfits within
1-2 epochs on 8 songs, hence evaluations twice per epoch and early stopping; dropout 0.1 slows that down.

Refusals (exit code 2, one line on stderr): no train.bin or valid.bin in TOKENS_DIR, an empty or
malformed token file, a base model that cannot be read, a base model (or data.json) made with
another vocabulary than models/vocab.json.
"""

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so `import data` works from the root
import data
import export
from onnx_weights import OnnxWeightsError, load_transformer_from_onnx, parity_tokens

# --- settings (the important ones have command-line overrides) ---------------------------------
SETTINGS = dict(
    # budget: whichever comes first (and early stopping)
    minutes=10.0,
    epochs=None,              # None: no epoch limit; an epoch = tokens in train.bin / tokens per batch iterations
    max_iters=100000,
    # optimiser: AdamW, linear warmup then a constant learning rate (a budget in minutes has no
    # iteration count to decay over, and a constant rate keeps runs of one seed identical)
    learning_rate=1e-4,
    warmup_iters=10,
    weight_decay=0.1,
    beta1=0.9,
    beta2=0.95,
    grad_clip=1.0,
    dropout=0.1,              # what trio-base was trained with; the user's data is small
    batch_size=8,             # windows of min(context_length, longest song) tokens
    # evaluation and early stopping
    eval_interval=None,       # None: about twice per epoch, between 5 and 50 iterations
    patience=6,               # evaluations without a held-out improvement before stopping
    eval_batch_size=8,
    # machine
    seed=1337,
    device="auto",            # auto | cpu | cuda
    threads=None,             # None: PyTorch's default (the machine's cores)
)
LICENCE = "the user's own data"
BASE_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trio-base.onnx")
REFUSED = 2  # exit code for a refusal (bad input), as opposed to a crash


class Refusal(Exception):
    pass


def parse_settings(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="DIR", help="train.bin, valid.bin, data.json")
    parser.add_argument("--from", dest="base", default=BASE_MODEL, metavar="BASE.onnx",
                        help="the model to start from (default: the shipped models/trio-base.onnx)")
    parser.add_argument("--out", required=True, metavar="OUT.onnx")
    parser.add_argument("--name", required=True, help="model_version of the new model")
    parser.add_argument("--card-json", metavar="PATH", help="default: OUT with a .json suffix")
    parser.add_argument("--minutes", type=float, help=f"wall-clock budget (default {SETTINGS['minutes']})")
    parser.add_argument("--epochs", type=float, help="budget in passes over train.bin (default: none)")
    parser.add_argument("--max-iters", type=int)
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's, the machine's cores)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--learning-rate", "--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--eval-interval", type=int)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--dropout", type=float)
    args = parser.parse_args(argv)
    s = dict(SETTINGS)
    for key, value in vars(args).items():
        if key in s and value is not None:
            s[key] = value
    return s, args


# --- data ---------------------------------------------------------------------------------------

def load_token_file(path, vocab, what):
    if not os.path.isfile(path):
        raise Refusal(f"{os.path.dirname(path) or '.'} has no {os.path.basename(path)} ({what})")
    size = os.path.getsize(path)
    if size == 0:
        raise Refusal(f"{path} is empty: no {what} (were any MIDI files usable?)")
    if size % 2:
        raise Refusal(f"{path} has an odd size ({size} bytes): not uint16 token ids")
    tokens = np.fromfile(path, dtype="<u2").astype(np.int64)
    if tokens.max() >= vocab.size:
        raise Refusal(f"{path} holds token id {tokens.max()}, beyond the vocabulary ({vocab.size} tokens)")
    if tokens[0] != vocab.bos or not (tokens == vocab.bar).any():
        raise Refusal(f"{path} does not start with BOS or has no BAR: not a token file of songs")
    return tokens


def song_bounds(tokens, vocab):
    """[(start, end)] per song: start = its BOS, end = its EOS (inclusive), or the file's end."""
    bos = np.flatnonzero(tokens == vocab.bos)
    ends = []
    for i, start in enumerate(bos):
        stop = bos[i + 1] if i + 1 < len(bos) else len(tokens)
        eos = np.flatnonzero(tokens[start:stop] == vocab.eos)
        ends.append(int(start + eos[0]) if len(eos) else int(stop - 1))
    return [(int(a), b) for a, b in zip(bos, ends)]


def heldout_windows(tokens, vocab, context_length):
    """Windows that score every token of every song exactly once (all but each song's BOS), the way
    the model is used: the first window is the song's opening; each later one is the song's header
    followed by the song from the last BAR at or before the first token not yet scored (the tokens
    before that are context only). Deterministic, so bits before and after training compare.
    Returns [(inputs, targets)], int64 arrays of at most context_length, IGNORE_INDEX where unscored."""
    H = vocab.header_length
    bars = np.flatnonzero(tokens == vocab.bar)
    windows = []
    for start, end in song_bounds(tokens, vocab):
        seq = tokens[start:end + 1]
        n = min(context_length, len(seq) - 1)
        if n <= 0:
            continue
        windows.append((seq[:n].copy(), seq[1:n + 1].copy()))
        scored = start + n + 1  # the first token (file index) not yet scored
        while scored <= end:
            body = context_length + 1 - H  # tokens after the header
            song_bars = bars[(bars >= start + H) & (bars <= scored)]
            b = int(song_bars[-1]) if len(song_bars) else scored
            if scored - b >= body:  # a bar longer than a window: continue mid-bar
                b = scored
            chunk = tokens[b:min(b + body, end + 1)]
            seq = np.concatenate([tokens[start:start + H], chunk])
            inputs, targets = seq[:-1].copy(), seq[1:].copy()
            # target j is file index b + j - H + 1 (for j >= H - 1); keep only the unscored ones
            first = H - 1 + (scored - b)
            targets[:first] = data.IGNORE_INDEX
            windows.append((inputs, targets))
            scored = b + len(chunk)
    return windows


@torch.no_grad()
def evaluate(model, windows, batch_size, device):
    """Held-out bits per token over all the windows (each batch padded to its longest window)."""
    was_training = model.training
    model.eval()
    total_nats, total_tokens = 0.0, 0
    for i in range(0, len(windows), batch_size):
        group = windows[i:i + batch_size]
        width = max(len(w[0]) for w in group)
        inputs = np.zeros((len(group), width), np.int64)
        targets = np.full((len(group), width), data.IGNORE_INDEX, np.int64)
        for row, (x, y) in enumerate(group):
            inputs[row, :len(x)] = x
            targets[row, :len(y)] = y
        logits, _ = model(torch.from_numpy(inputs).to(device))
        targets = torch.from_numpy(targets).to(device)
        nats = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1),
                               ignore_index=data.IGNORE_INDEX, reduction="sum")
        total_nats += nats.item()
        total_tokens += int((targets != data.IGNORE_INDEX).sum())
    model.train(was_training)
    return total_nats / total_tokens / math.log(2), total_tokens


def read_data_json(data_dir):
    path = os.path.join(data_dir, "data.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Refusal(f"{path} is not readable JSON ({e})") from e


def describe_data(summary, train_tokens, valid_tokens):
    """A one-line `training_data` for the metadata: data.json's own summary where it has one, or
    what it counts, and always the token counts."""
    parts = []
    if isinstance(summary, dict):
        if isinstance(summary.get("summary"), str):
            parts.append(summary["summary"])
        else:
            for key in ("files_used", "files", "songs"):
                value = summary.get(key)
                if isinstance(value, (list, dict)):
                    value = len(value)
                if isinstance(value, int):
                    parts.append(f"{value} {'songs' if key == 'songs' else 'MIDI files'}")
                    break
            roles = summary.get("roles_found", summary.get("roles"))
            if isinstance(roles, dict):
                roles = [f"{k} {v}" if isinstance(v, (int, float)) else str(k) for k, v in roles.items()]
            if isinstance(roles, list) and roles:
                parts.append("roles: " + ", ".join(str(r) for r in roles))
    parts.append(f"{train_tokens} training + {valid_tokens} held-out tokens")
    prefix = "" if isinstance(summary, dict) and isinstance(summary.get("summary"), str) \
        else "the user's own MIDI files: "
    return prefix + "; ".join(" ".join(str(p).split()) for p in parts)


# --- progress -----------------------------------------------------------------------------------

def clock(seconds):
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """One line on stderr: rewritten in place on a terminal, one line per evaluation otherwise."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.width = 0

    def show(self, line, evaluation=False):
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
            self.stream.flush()
        elif evaluation:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self):
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()


# --- the run ------------------------------------------------------------------------------------

def run(s, args):
    vocab = data.load_vocab()
    if not os.path.isdir(args.data):
        raise Refusal(f"--data {args.data}: no such directory")
    train_path = os.path.join(args.data, "train.bin")
    valid_path = os.path.join(args.data, "valid.bin")
    train_tokens = load_token_file(train_path, vocab, "training songs")
    valid_tokens = load_token_file(valid_path, vocab, "held-out songs")
    summary = read_data_json(args.data)
    if isinstance(summary, dict) and summary.get("vocab_hash") not in (None, vocab.hash):
        raise Refusal(f"{args.data}/data.json was encoded with vocabulary {summary['vocab_hash']}, "
                      f"models/vocab.json is {vocab.hash}")
    try:
        model, base_meta = load_transformer_from_onnx(args.base)
    except OnnxWeightsError as e:
        raise Refusal(str(e)) from None
    if base_meta.get("vocab_hash") != vocab.hash:
        raise Refusal(f"{args.base} was trained on vocabulary {base_meta.get('vocab_hash')}, "
                      f"models/vocab.json is {vocab.hash}: fine-tune a model made with this vocabulary")
    base_version = base_meta.get("model_version", os.path.basename(args.base))
    if os.path.exists(args.out) and os.path.samefile(args.out, args.base):
        raise Refusal(f"--out {args.out} is the base model: write the fine-tune to another file")
    card_path = args.card_json or os.path.splitext(args.out)[0] + ".json"

    device = s["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Refusal("--device cuda: PyTorch sees no CUDA device")
    if s["threads"]:
        torch.set_num_threads(s["threads"])
    torch.manual_seed(s["seed"])
    rng = np.random.default_rng(s["seed"])

    # The training model: the base's weights, with dropout (the loader builds it without).
    config = dataclasses.replace(model.config, dropout=s["dropout"])
    base_state = model.state_dict()
    model = type(model)(config)
    model.load_state_dict(base_state)
    model.to(device)

    songs = song_bounds(train_tokens, vocab)
    context = min(config.context_length, max(end + 1 - start for start, end in songs) - 1)
    context = max(context, vocab.header_length + 1)
    train_windows = data.Windows(train_tokens, vocab, context)
    valid_windows = heldout_windows(valid_tokens, vocab, config.context_length)
    tokens_per_iter = s["batch_size"] * context
    iters_per_epoch = len(train_tokens) / tokens_per_iter
    max_iters = s["max_iters"]
    if s["epochs"] is not None:
        max_iters = min(max_iters, max(1, math.ceil(s["epochs"] * iters_per_epoch)))
    eval_interval = s["eval_interval"] or int(min(50, max(5, round(iters_per_epoch / 2))))
    budget_s = s["minutes"] * 60.0

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": s["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=s["learning_rate"], betas=(s["beta1"], s["beta2"]))
    trained_params = sum(p.numel() for p in model.parameters() if p.requires_grad)

    log = sys.stderr
    log.write(f"fine-tuning {base_version} ({args.base}, {model.num_params():,} parameters, all trained) on "
              f"{len(train_tokens):,} tokens ({len(songs)} songs), held-out {len(valid_tokens):,} tokens; "
              f"device {device}, batch {s['batch_size']} x {context}, ~{iters_per_epoch:.1f} iterations/epoch, "
              f"evaluating every {eval_interval}\n")
    progress = Progress(log)
    start_time = time.time()
    bits_before, heldout_scored = evaluate(model, valid_windows, s["eval_batch_size"], device)
    best_bits, best_iter = bits_before, 0
    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    history = [(0, bits_before)]
    it, tokens_seen, since_best, recent, train_bits = 0, 0, 0, [], float("nan")
    stop_reason = None
    model.train()

    def line():
        elapsed = time.time() - start_time
        left = budget_s - elapsed
        if it > 0:
            left = min(left, (max_iters - it) * elapsed / it)
        train = f"{train_bits:.3f}" if math.isfinite(train_bits) else "-"
        return (f"iter {it}" + (f"/{max_iters}" if s["epochs"] is not None else "") +
                f" | epoch {it / iters_per_epoch:.2f} | train {train} | held-out {history[-1][1]:.4f} "
                f"bits/token (best {best_bits:.4f}, before {bits_before:.4f}) | {clock(left)} left")

    progress.show(line(), evaluation=True)
    while True:
        elapsed = time.time() - start_time
        if it >= max_iters:
            stop_reason = "epoch budget spent" if s["epochs"] is not None and max_iters < s["max_iters"] \
                else "iteration limit reached"
        elif elapsed >= budget_s:
            stop_reason = f"time budget spent ({s['minutes']:g} min)"
        if stop_reason:
            break
        lr = s["learning_rate"] * min(1.0, (it + 1) / max(1, s["warmup_iters"]))
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = train_windows.batch(train_windows.random_bars(rng, s["batch_size"]))
        _, loss = model(torch.from_numpy(inputs).to(device), torch.from_numpy(targets).to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["grad_clip"])
        optimizer.step()
        it += 1
        tokens_seen += inputs.size
        recent.append(loss.detach())
        evaluation = it % eval_interval == 0 or it >= max_iters or time.time() - start_time >= budget_s
        if evaluation or progress.tty:
            train_bits = float(torch.stack(recent).mean()) / math.log(2)
            recent = []
        if evaluation and not math.isfinite(train_bits):
            stop_reason = "training diverged (the loss is not finite)"
            evaluation = False
        if evaluation:
            bits, _ = evaluate(model, valid_windows, s["eval_batch_size"], device)
            history.append((it, bits))
            if bits < best_bits:
                best_bits, best_iter, since_best = bits, it, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                since_best += 1
                if since_best >= s["patience"]:
                    stop_reason = f"early stop: no held-out improvement in {s['patience']} evaluations"
        progress.show(line(), evaluation)
    progress.close()
    seconds = time.time() - start_time

    # Export the best weights (on the CPU, no dropout) and check the file computes what they do.
    model = type(model)(dataclasses.replace(config, dropout=0.0))
    model.load_state_dict(best_state)
    model.eval()
    epochs = tokens_seen / len(train_tokens)
    training_data = describe_data(summary, len(train_tokens), len(valid_tokens))
    stopped_early = stop_reason.startswith(("early stop", "training diverged"))
    figures = dict(bits_before=round(bits_before, 4), bits_after=round(best_bits, 4), iters=it, best_iter=best_iter,
                   tokens_seen=tokens_seen, epochs=round(epochs, 2), seconds=round(seconds, 1), device=device,
                   stopped_early=stopped_early, params_trained=trained_params)
    metadata = export.metadata_for(model, vocab, None, training_data, LICENCE, args.name)
    for key, value in base_meta.items():  # anything else the base carries, e.g. keys added later
        metadata.setdefault(key, value)
    metadata.update(iters=best_iter, held_out_bits_per_token=best_bits, base_model=base_version,
                    rope_base=config.rope_base, finetune=json.dumps(figures, separators=(",", ":")))
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)  # torchvision notes
    partial = args.out + ".partial"  # OUT appears only once it has passed the parity check
    export.export_onnx(model, partial, metadata)
    parity = export.parity_error(model, partial, parity_tokens(config.vocab_size), 32, 4)
    if not parity <= 1e-4:
        raise RuntimeError(f"{partial}: ONNX Runtime differs from PyTorch by {parity:.2e} (tolerance 1e-4)")
    os.replace(partial, args.out)

    card = dict(
        name=args.name, model=args.out, base_model=base_version, base_path=args.base,
        held_out_bits_per_token_before=bits_before, held_out_bits_per_token_after=best_bits,
        held_out_tokens_scored=heldout_scored, train_tokens=len(train_tokens),
        valid_tokens=len(valid_tokens), train_songs=len(songs),
        iterations=it, best_iteration=best_iter, tokens_seen=tokens_seen, epochs=epochs,
        seconds=round(seconds, 1), device=device, stopped_early=stopped_early, stop_reason=stop_reason,
        method="full fine-tune", parameters_trained=trained_params, parameters_total=model.num_params(),
        settings=dict(s, eval_interval=eval_interval, context_length=context, max_iters=max_iters,
                      threads=torch.get_num_threads()),
        history=[[i, b if math.isfinite(b) else None] for i, b in history], parity_error=parity, vocab_hash=vocab.hash, licence=LICENCE,
        training_data=training_data, data=summary,
    )
    os.makedirs(os.path.dirname(os.path.abspath(card_path)), exist_ok=True)
    with open(card_path, "w") as f:
        json.dump(card, f, indent=2, allow_nan=False)  # strict JSON, for the Rust side
    print(f"wrote {args.out} ({args.name}, from {base_version}): held-out {bits_before:.4f} -> {best_bits:.4f} "
          f"bits/token after {it} iterations ({epochs:.2f} epochs, {seconds:.0f} s, {device}; {stop_reason}; "
          f"best at iteration {best_iter}); ONNX parity {parity:.1e}; card {card_path}")
    return card


def main(argv=None):
    s, args = parse_settings(argv)
    try:
        return run(s, args)
    except Refusal as e:
        sys.stderr.write(f"finetune: {e}\n")
        raise SystemExit(REFUSED) from None


if __name__ == "__main__":
    main()
