"""Train the Neural Trio model (or the LSTM baseline) on the token data set.

Run from the workspace root (/work/main); `cargo xtask train -- ARGS` runs exactly
`models/.venv/bin/python models/train.py ARGS`:

    models/.venv/bin/python models/train.py                          # transformer, 60 minutes
    models/.venv/bin/python models/train.py --arch lstm --minutes 30
    models/.venv/bin/python models/train.py --resume --minutes 120   # continue last.pt; minutes count in total
    models/.venv/bin/python models/train.py --tiny --max-iters 30    # smoke run
    models/.venv/bin/python models/train.py --bf16 --compile         # ~1.8x faster on this CPU (spike)
    models/.venv/bin/python models/train.py --device auto            # the GPU when PyTorch sees one, else the CPU

Several GPUs (or CPU processes): the same script under torchrun, with DistributedDataParallel:

    models/.venv/bin/torchrun --nproc_per_node 4 models/train.py --device cuda ...   # 4 GPUs, 1 machine

Each process trains on its own GPU (cuda:LOCAL_RANK; gloo processes on the CPU without --device cuda)
with its own data seed (seed + rank), so they draw different windows; --batch-size is per process,
so one iteration sees nproc x batch-size windows and tokens_seen counts them all. Rank 0 alone
evaluates, logs and writes; the others wait for it, and every process takes rank 0's clock, so all
stop at the same iteration. Checkpoints hold the plain model (no "module." prefix), so export.py
and --resume (with the same or another number of processes) work as after a one-process run.

Reads target/dataset/{train,valid}.bin (uint16 token ids, songs concatenated) and writes into
models/checkpoints/<arch>/: last.pt, best.pt (by held-out loss), metrics.json and loss.png.
Held-out bits per token are measured on a fixed, seeded set of valid.bin windows (data.py), the
same for every architecture and for ngram.py.
"""

import argparse
import json
import math
import os
import sys
import time
import zlib

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so `import data` works from the root
import data
from model import build_model

# --- settings (the important ones have command-line overrides) ---------------------------------
DEFAULTS = dict(
    arch="transformer",       # transformer | lstm
    # transformer size: ~2.8M parameters, ~1 ms per one-token step on one core in ONNX Runtime
    n_layer=4,
    n_head=8,
    n_kv_head=1,              # multi-query attention
    d_model=256,
    dropout=0.0,              # we see well under one epoch in a CPU budget: nothing to regularise yet
    # LSTM baseline size (the seed article's 2 x 256)
    lstm_layers=2,
    lstm_hidden=256,
    # data
    data_dir="target/dataset",
    context_length=data.EVAL_CONTEXT,
    batch_size=16,
    # optimiser: AdamW, linear warmup then cosine decay to min_lr
    learning_rate=1e-3,
    min_lr=1e-4,
    warmup_iters=200,
    weight_decay=0.1,
    beta1=0.9,
    beta2=0.95,
    grad_clip=1.0,
    # budget: whichever comes first. The cosine follows whichever is further along, so a
    # wall-clock-bound run still ends at min_lr.
    minutes=60.0,
    max_iters=20000,
    # evaluation
    eval_interval=250,
    eval_windows=data.EVAL_WINDOWS,
    eval_seed=data.EVAL_SEED,
    eval_batch_size=16,
    log_interval=10,
    # machine
    seed=1337,
    device="cpu",             # cpu | cuda | auto (cuda when available); the plugin always runs the exported
                              # graph on ONNX Runtime, and CPU-only CI must never need a GPU
    threads=2,
    compile=False,
    bf16=False,
    out_dir=None,             # default models/checkpoints/<arch>
)

# --tiny: a model and batch small enough for a smoke test in seconds.
TINY = dict(n_layer=2, n_head=4, n_kv_head=1, d_model=64, lstm_hidden=64, context_length=64, batch_size=8,
            learning_rate=3e-3, min_lr=3e-4, warmup_iters=5, eval_interval=10, eval_windows=16, eval_batch_size=16,
            log_interval=5, minutes=5.0)


def parse_settings(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["transformer", "lstm"])
    parser.add_argument("--minutes", type=float, help="wall-clock budget, counted over resumes")
    parser.add_argument("--max-iters", type=int)
    parser.add_argument("--data-dir")
    parser.add_argument("--out-dir")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    parser.add_argument("--init-from", metavar="MODEL.onnx",
                        help="start from an exported model's weights (a vocabulary that grew at its end keeps "
                             "every old token's row; new tokens start fresh) instead of random ones")
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the training model")
    parser.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast for training steps")
    parser.add_argument("--tiny", action="store_true", help="tiny model and batch, for smoke tests")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], help="auto: cuda when available, else cpu")
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--eval-batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--context-length", type=int)
    parser.add_argument("--learning-rate", "--lr", type=float)
    parser.add_argument("--warmup-iters", type=int)
    parser.add_argument("--eval-interval", type=int)
    parser.add_argument("--eval-windows", type=int)
    parser.add_argument("--n-layer", type=int)
    parser.add_argument("--n-head", type=int)
    parser.add_argument("--n-kv-head", type=int)
    parser.add_argument("--d-model", type=int)
    parser.add_argument("--pause-at", type=int, metavar="ITER",
                        help="save and stop at this iteration, schedule unchanged (continue with --resume)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar (logs and tests)")
    args = parser.parse_args(argv)
    settings = dict(DEFAULTS)
    if args.tiny:
        settings.update(TINY)
    for key, value in vars(args).items():
        if key in settings and value is not None:
            settings[key] = value
    if settings["out_dir"] is None:
        settings["out_dir"] = os.path.join("models", "checkpoints", settings["arch"])
    return settings, args


def init_from_onnx(model, path):
    """Copies an exported model's weights into `model`. The vocabulary may have grown at its end
    (new token groups appended, every old id the same): the embedding's old rows are copied and the
    new ones keep their fresh initialisation. Every other weight must have the same shape."""
    from onnx_weights import load_transformer_from_onnx
    base, _ = load_transformer_from_onnx(path)
    old = base.state_dict()
    new = model.state_dict()
    for name, weight in new.items():
        if name not in old:
            raise SystemExit(f"--init-from {path}: it has no {name}")
        source = old[name]
        if source.shape == weight.shape:
            weight.copy_(source)
        elif source.shape[1:] == weight.shape[1:] and source.shape[0] < weight.shape[0]:
            weight[:source.shape[0]].copy_(source)  # the embedding (and the tied head): old tokens' rows
        else:
            raise SystemExit(f"--init-from {path}: {name} is {tuple(source.shape)}, this model's "
                             f"{tuple(weight.shape)}")
    model.load_state_dict(new)


def model_config(settings, vocab_size):
    if settings["arch"] == "transformer":
        return dict(vocab_size=vocab_size, n_layer=settings["n_layer"], n_head=settings["n_head"],
                    n_kv_head=settings["n_kv_head"], d_model=settings["d_model"],
                    context_length=settings["context_length"], dropout=settings["dropout"])
    return dict(vocab_size=vocab_size, n_layer=settings["lstm_layers"], hidden=settings["lstm_hidden"],
                context_length=settings["context_length"], dropout=settings["dropout"])


def learning_rate(s, it, progress):
    if it < s["warmup_iters"]:
        return s["learning_rate"] * (it + 1) / s["warmup_iters"]
    progress = min(max(progress, 0.0), 1.0)
    return s["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * progress)) * (s["learning_rate"] - s["min_lr"])


def make_optimizer(model, s):
    # Decay matrices (and the embedding); not norms and biases.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": s["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s["learning_rate"], betas=(s["beta1"], s["beta2"]))


@torch.no_grad()
def evaluate(model, windows, bar_indices, batch_size, device="cpu"):
    """Held-out bits per token over the given windows (fp32, whatever the training precision)."""
    was_training = model.training
    model.eval()
    total_nats, total_tokens = 0.0, 0
    for i in range(0, len(bar_indices), batch_size):
        inputs, targets = windows.batch(bar_indices[i:i + batch_size])
        logits, _ = model(torch.from_numpy(inputs).to(device))
        targets = torch.from_numpy(targets).to(device)
        nats = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1),
                                                 ignore_index=data.IGNORE_INDEX, reduction="sum")
        total_nats += nats.item()
        total_tokens += int((targets != data.IGNORE_INDEX).sum())
    model.train(was_training)
    return total_nats / total_tokens / math.log(2), total_tokens


def save_atomic(obj, path):
    # Write then rename, so a run killed mid-save never leaves a broken checkpoint behind.
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def plot_curves(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    if history["train"]:
        it, loss = zip(*history["train"])
        ax.plot(it, np.array(loss) / math.log(2), label="train", alpha=0.6)
    if history["valid"]:
        it, bits = zip(*history["valid"])
        ax.plot(it, bits, "o-", label="held-out")
    ax.set_xlabel("iteration")
    ax.set_ylabel("bits per token")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    s, args = parse_settings(argv)
    if s["device"] == "auto":
        s["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    if s["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA device")
    # torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them this is one plain process.
    ddp = "RANK" in os.environ
    rank, local_rank, world_size = 0, 0, 1
    device = s["device"]
    if ddp:
        rank, local_rank, world_size = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
        if device == "cuda":
            if local_rank >= torch.cuda.device_count():
                raise SystemExit(f"rank {rank}: no cuda:{local_rank} ({torch.cuda.device_count()} CUDA devices)")
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(device)
        # nccl moves the gradients between GPUs; gloo carries the small CPU-side messages (rank 0's
        # clock, the generators' states) without waiting on a GPU. On the CPU gloo does it all.
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo")
    master = rank == 0  # evaluates, logs and writes checkpoints, metrics and plots
    torch.set_num_threads(s["threads"])
    os.makedirs(s["out_dir"], exist_ok=True)
    vocab = data.load_vocab()
    manifest = data.check_manifest(s["data_dir"], vocab)
    last_path = os.path.join(s["out_dir"], "last.pt")
    best_path = os.path.join(s["out_dir"], "best.pt")

    checkpoint = None
    if args.resume:
        if not os.path.exists(last_path):
            raise SystemExit(f"--resume: no checkpoint at {last_path}")
        checkpoint = torch.load(last_path, weights_only=True, map_location="cpu")
        if checkpoint["vocab_hash"] != vocab.hash:
            raise SystemExit(f"{last_path} was trained on vocabulary {checkpoint['vocab_hash']}, not {vocab.hash}")
        # The run's shape is the checkpoint's; the command line may change only the budget and machine.
        for key in DEFAULTS:
            if key not in ("minutes", "max_iters", "threads", "device", "compile", "bf16", "out_dir", "data_dir",
                           "eval_batch_size"):
                s[key] = checkpoint["settings"][key]

    # Each rank its own seed, so that ranks draw different windows (and dropout masks); rank 0's is
    # the one-process seed. The initial weights differ too, but DDP copies rank 0's to every rank.
    torch.manual_seed(s["seed"] + rank)
    rng = np.random.default_rng(s["seed"] + rank)
    config = model_config(s, vocab.size) if checkpoint is None else checkpoint["model_config"]
    model = build_model(s["arch"], config).to(device)
    optimizer = make_optimizer(model, s)
    it, elapsed, tokens_seen, best_bits = 0, 0.0, 0, float("inf")
    history = {"train": [], "valid": []}
    if args.init_from and checkpoint is None:
        init_from_onnx(model, args.init_from)
        if master:
            print(f"initialised from {args.init_from}")
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        it, elapsed, tokens_seen = checkpoint["iter"], checkpoint["elapsed"], checkpoint["tokens_seen"]
        best_bits, history = checkpoint["best_valid_bits"], checkpoint["history"]
        # Every rank continues its own generators. A rank the checkpoint has none for (a run with more
        # processes than the last one) keeps its fresh seed + rank ones.
        rank_rngs = checkpoint.get("rank_rngs", [(checkpoint["numpy_rng"], checkpoint["torch_rng"])])
        if rank < len(rank_rngs):
            rng.bit_generator.state = rank_rngs[rank][0]
            torch.set_rng_state(rank_rngs[rank][1])
        if master:
            print(f"resuming {last_path} at iter {it} ({elapsed / 60:.1f} min in)")

    train_windows = data.Windows(data.load_tokens(os.path.join(s["data_dir"], "train.bin")), vocab, s["context_length"])
    valid_windows = data.Windows(data.load_tokens(os.path.join(s["data_dir"], "valid.bin")), vocab, s["context_length"])
    eval_indices = data.eval_bar_indices(valid_windows, s["eval_windows"], s["eval_seed"])
    if master:
        print(f"{s['arch']}: {model.num_params():,} parameters; train {len(train_windows.tokens):,} tokens "
              f"({len(train_windows.bars):,} bars), held-out {len(eval_indices)} windows of {s['context_length']}"
              + (f"; {world_size} processes x batch {s['batch_size']}" if ddp else ""))

    # Training steps go through train_model (compiled, and wrapped by DDP to average the gradients);
    # evaluation and checkpoints use `model` itself, so state_dict keys have no "module." prefix.
    train_model = torch.compile(model) if s["compile"] else model
    if ddp:
        device_ids = [local_rank] if device.startswith("cuda") else None
        train_model = DistributedDataParallel(train_model, device_ids=device_ids)
    model.train()

    def from_rank0(value):
        # Every rank takes rank 0's clock: the stop decision and the learning rate depend on it, and
        # ranks that disagreed would stop at different iterations (and hang) or drift apart.
        if not ddp:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.broadcast(t, 0)
        return t.item()

    def gather(value):
        # [value of rank 0, value of rank 1, ...]; every rank must call it at the same point.
        if not ddp:
            return [value]
        values = [None] * world_size
        dist.all_gather_object(values, value)
        return values

    rank_rngs = None  # every rank's (numpy, torch) generator state, gathered when a checkpoint is due

    def checkpoint_state():
        return dict(model=model.state_dict(), optimizer=optimizer.state_dict(), iter=it, elapsed=elapsed,
                    tokens_seen=tokens_seen, best_valid_bits=best_bits, history=history,
                    numpy_rng=rank_rngs[0][0], torch_rng=rank_rngs[0][1], rank_rngs=rank_rngs, arch=s["arch"],
                    model_config=config, settings=s, vocab_hash=vocab.hash, data_manifest=manifest)

    budget_s = s["minutes"] * 60.0
    train_seconds = 0.0  # time in training steps only, for tokens/s
    train_tokens_this_run = 0
    last_valid_bits = history["valid"][-1][1] if history["valid"] else None
    progress_bar = None
    if master and not args.no_progress:
        from tqdm import tqdm
        progress_bar = tqdm(total=s["max_iters"], initial=it, unit="it", dynamic_ncols=True)
    log = progress_bar.write if progress_bar else print
    run_start = time.time() - elapsed
    first_iter = it
    first_batch_crc = None  # this rank's first batch of the run, to metrics: equal values = ranks drew the same data
    recent_losses = []

    while True:
        elapsed = from_rank0(time.time() - run_start)
        done = it >= s["max_iters"] or elapsed >= budget_s or (args.pause_at is not None and it >= args.pause_at)
        if it % s["eval_interval"] == 0 or done:
            rank_rngs = gather((rng.bit_generator.state, torch.get_rng_state()))  # for the checkpoint
            if master:
                if not history["valid"] or history["valid"][-1][0] != it:
                    bits, eval_tokens = evaluate(model, valid_windows, eval_indices, s["eval_batch_size"], device)
                    history["valid"].append((it, bits))
                    last_valid_bits = bits
                    log(f"iter {it}: held-out {bits:.4f} bits/token ({eval_tokens:,} tokens), "
                        f"{elapsed / 60:.1f} min")
                    elapsed = time.time() - run_start
                    if bits < best_bits:
                        best_bits = bits
                        save_atomic(checkpoint_state(), best_path)
                save_atomic(checkpoint_state(), last_path)
            elapsed = from_rank0(elapsed)  # the other ranks wait here while rank 0 evaluates and saves
        if done:
            break

        lr = learning_rate(s, it, max(it / s["max_iters"], elapsed / budget_s))
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_start = time.time()
        inputs, targets = train_windows.batch(train_windows.random_bars(rng, s["batch_size"]))
        if first_batch_crc is None:
            first_batch_crc = zlib.crc32(inputs.tobytes())
        with torch.autocast(s["device"], dtype=torch.bfloat16, enabled=s["bf16"]):
            _, loss = train_model(torch.from_numpy(inputs).to(device, non_blocking=True),
                                  torch.from_numpy(targets).to(device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["grad_clip"])
        optimizer.step()
        if it > first_iter:  # the first step of a run includes torch.compile's compile time
            train_seconds += time.time() - step_start
            train_tokens_this_run += inputs.size * world_size
        it += 1
        tokens_seen += inputs.size * world_size  # every rank trained on a batch of its own
        recent_losses.append(loss.detach())  # no .item() per step: on a GPU that would wait for it
        if it % s["log_interval"] == 0:
            mean_loss = torch.stack(recent_losses).mean()
            if ddp:  # the loss over every rank's batches (gloo has no ReduceOp.AVG)
                dist.all_reduce(mean_loss)
                mean_loss = mean_loss / world_size
            mean_loss = float(mean_loss)
            history["train"].append((it, mean_loss))
            recent_losses = []
            tok_s = train_tokens_this_run / max(train_seconds, 1e-9)
            if progress_bar:
                progress_bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.1e}", tok_s=f"{tok_s:.0f}")
            elif master:  # without the bar, a log line says the run is alive
                log(f"iter {it}: train {mean_loss:.3f}, lr {lr:.1e}, {tok_s:.0f} tokens/s, {elapsed / 60:.1f} min")
        if progress_bar:
            progress_bar.update(1)
    if progress_bar:
        progress_bar.close()

    first_batch_crcs = gather(first_batch_crc)
    if not master:
        dist.destroy_process_group()
        return None
    plot_curves(history, os.path.join(s["out_dir"], "loss.png"))
    metrics = dict(
        arch=s["arch"], params=model.num_params(), model_config=config, iters=it, tokens_seen=tokens_seen,
        world_size=world_size, first_batch_crc32=first_batch_crcs,  # tokens_seen counts all ranks' batches
        wall_seconds=round(elapsed, 1),
        train_tokens_per_s=round(train_tokens_this_run / train_seconds, 1) if train_seconds else None,
        best_valid_bits_per_token=best_bits, final_valid_bits_per_token=last_valid_bits,
        eval=dict(windows=len(eval_indices), context_length=s["context_length"], seed=s["eval_seed"]),
        history=history, settings=s, data_manifest=manifest, vocab_hash=vocab.hash,
    )
    with open(os.path.join(s["out_dir"], "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"done: {it} iters, {tokens_seen:,} tokens, best held-out {best_bits:.4f} bits/token, "
          f"{metrics['train_tokens_per_s']} tokens/s (this run)")
    if ddp:
        dist.destroy_process_group()
    return metrics


if __name__ == "__main__":
    main()
