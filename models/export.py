"""Export a trained TrioTransformer to the ONNX step graph the plugin runs, and write the parity
fixture for the Rust test.

Run from the workspace root (/work/main); `cargo xtask export -- ARGS` runs exactly
`models/.venv/bin/python models/export.py ARGS`:

    models/.venv/bin/python models/export.py                  # checkpoints/transformer/best.pt -> models/trio-base.onnx
    models/.venv/bin/python models/export.py --checkpoint models/checkpoints/transformer/last.pt --out /tmp/t.onnx
    models/.venv/bin/python models/export.py --quantize       # also models/trio-base-int8.onnx, with its KL from fp32
    models/.venv/bin/python models/export.py --bench          # also one-token step latency (batch 1, 1 thread)

The graph (see models/README.md, "Architecture"; plugin/tests/model_contract.rs checks it from Rust):
    inputs   input_ids int64 [batch, new], pos_offset int64 [1],
             past_key_i, past_value_i float32 [batch, n_kv_head, past, head_dim] for each layer i
    outputs  logits float32 [batch, new, vocab], present_key_i, present_value_i (past + new long)
    metadata vocab_hash, vocab_size, context_length, n_layer, n_kv_head, head_dim, training_data,
             licence, model_version, arch
Also writes models/fixtures/parity.json: a token sequence and this model's logits for a 32-token
prefill and 4 single steps after it, for the Rust side to compare its ONNX Runtime output with.
"""

import argparse
import hashlib
import json
import os
import sys
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data
from model import TransformerConfig, TrioTransformer

DEFAULT_TRAINING_DATA = "POP909 training split, songs 001-818, 12 transpositions"
DEFAULT_LICENCE = "MIT (POP909 dataset)"


class StepGraph(torch.nn.Module):
    """TrioTransformer.step with flat tensor arguments, the shape the ONNX graph takes."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, pos_offset, *past):
        logits, keys, values = self.model.step(input_ids, pos_offset, list(past[0::2]), list(past[1::2]))
        outputs = [logits]
        for k, v in zip(keys, values):
            outputs += [k, v]
        return tuple(outputs)


def cache_names(n_layer, prefix):
    names = []
    for i in range(n_layer):
        names += [f"{prefix}_key_{i}", f"{prefix}_value_{i}"]
    return names


def load_checkpoint(path):
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    if checkpoint["arch"] != "transformer":
        raise SystemExit(f"{path}: only the transformer exports (this is {checkpoint['arch']})")
    model = TrioTransformer(TransformerConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint


def export_onnx(model, path, metadata):
    """The step graph with dynamic batch, new and past axes. Example sizes are neither 0 nor 1
    (batch 2, new 3, past 5): torch.export would freeze an axis whose example size is 0 or 1."""
    import onnx
    c = model.config
    batch, new, past = 2, 3, 5
    example = [torch.randint(0, c.vocab_size, (batch, new)), torch.tensor([past], dtype=torch.int64)]
    example += [torch.randn(batch, c.n_kv_head, past, c.head_dim) for _ in range(2 * c.n_layer)]
    batch_dim = torch.export.Dim("batch", min=1, max=1024)
    new_dim = torch.export.Dim("new", min=1, max=1 << 16)
    past_dim = torch.export.Dim("past", min=0, max=1 << 16)
    # torch.export sees forward(input_ids, pos_offset, *past) as three arguments, the last a tuple.
    dynamic_shapes = ({0: batch_dim, 1: new_dim}, None, tuple({0: batch_dim, 2: past_dim} for _ in range(2 * c.n_layer)))
    with torch.no_grad(), warnings.catch_warnings():
        # The exporter notes that axes sharing a Dim share a name; that is what we want.
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints")
        program = torch.onnx.export(
            StepGraph(model).eval(), tuple(example), dynamo=True, opset_version=18,
            input_names=["input_ids", "pos_offset"] + cache_names(c.n_layer, "past"),
            output_names=["logits"] + cache_names(c.n_layer, "present"),
            dynamic_shapes=dynamic_shapes, verbose=False)
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    onnx.save_model(proto, path)  # one file: the weights are small enough to live inside it
    onnx.checker.check_model(path)
    return path


def describe_training_data(manifest):
    """What the model saw, in words, from the data set's manifest (None when it does not say)."""
    if manifest.get("synthetic"):
        return "synthetic test data (models/data.py), not for shipping"
    train = manifest.get("splits", {}).get("train")
    if not train:
        return None
    shifts = manifest.get("transpositions", {}).get("train", [])
    return (f"{manifest.get('dataset', 'unknown data set')}; training split: {train.get('songs_used', '?')} songs "
            f"({manifest.get('split_rule', '')}), {len(shifts)} transpositions ({min(shifts, default=0):+d}.."
            f"{max(shifts, default=0):+d} semitones), {train.get('tokens', '?')} tokens")


def metadata_for(model, vocab, checkpoint, training_data, licence, model_version):
    """training_data=None: describe it from the checkpoint's data manifest."""
    c = model.config
    if training_data is None:
        manifest = (checkpoint or {}).get("data_manifest") or {}
        training_data = describe_training_data(manifest) or DEFAULT_TRAINING_DATA
    return dict(vocab_hash=vocab.hash, vocab_size=c.vocab_size, context_length=c.context_length, n_layer=c.n_layer,
                n_head=c.n_head, n_kv_head=c.n_kv_head, head_dim=c.head_dim, d_model=c.d_model,
                training_data=training_data, licence=licence, model_version=model_version, arch="transformer",
                iters=(checkpoint or {}).get("iter", 0),
                held_out_bits_per_token=(checkpoint or {}).get("best_valid_bits", float("nan")))


@torch.no_grad()
def reference_logits(model, tokens, prefill_length, steps):
    """PyTorch logits for a prefill of tokens[:prefill_length] (every position) and then `steps`
    single-token steps feeding the following tokens. Returns ([prefill, V], [steps, V])."""
    ids = torch.tensor([tokens], dtype=torch.int64)
    keys, values = model.empty_cache(1)
    prefill, keys, values = model.step(ids[:, :prefill_length], torch.tensor([0]), keys, values)
    singles = []
    for i in range(prefill_length, prefill_length + steps):
        logits, keys, values = model.step(ids[:, i:i + 1], torch.tensor([i]), keys, values)
        singles.append(logits[0, 0])
    return prefill[0].numpy(), torch.stack(singles).numpy() if singles else np.zeros((0, model.config.vocab_size))


def onnx_logits(path, tokens, prefill_length, steps, threads=1):
    """The same as reference_logits, in ONNX Runtime, batch 1 starting from an empty (past 0) cache."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    n_layer, kv, hd = int(meta["n_layer"]), int(meta["n_kv_head"]), int(meta["head_dim"])
    cache = {name: np.zeros((1, kv, 0, hd), np.float32) for name in cache_names(n_layer, "past")}
    ids = np.array([tokens], dtype=np.int64)

    def run(new_ids, offset):
        outputs = session.run(None, {"input_ids": new_ids, "pos_offset": np.array([offset], np.int64), **cache})
        for name, value in zip(cache_names(n_layer, "past"), outputs[1:]):
            cache[name] = value
        return outputs[0]

    prefill = run(ids[:, :prefill_length], 0)[0]
    singles = [run(ids[:, i:i + 1], i)[0, 0] for i in range(prefill_length, prefill_length + steps)]
    return prefill, np.array(singles, dtype=np.float32).reshape(steps, prefill.shape[-1])


def parity_error(model, path, tokens, prefill_length, steps):
    """Max |ONNX Runtime - PyTorch| over every prefill position and every single step."""
    ref_prefill, ref_steps = reference_logits(model, tokens, prefill_length, steps)
    ort_prefill, ort_steps = onnx_logits(path, tokens, prefill_length, steps)
    return float(max(np.abs(ref_prefill - ort_prefill).max(), np.abs(ref_steps - ort_steps).max(initial=0.0)))


def fixture_tokens(vocab, data_dir, length=36):
    """A grammatical sequence: the opening of the first held-out song, or a synthetic song."""
    valid = os.path.join(data_dir, "valid.bin")
    if os.path.exists(valid):
        tokens = np.asarray(data.load_tokens(valid)[:length], dtype=np.int64)
        if len(tokens) == length and tokens[0] == vocab.bos and vocab.eos not in tokens:
            return [int(t) for t in tokens], "opening of the first song of " + valid
    song = data.synthetic_song(vocab, np.random.default_rng(0), bars=8)
    return [int(t) for t in song[:length]], "synthetic song (data.synthetic_song, seed 0)"


def parity_fixture(model, tokens, source, onnx_path=None, prefill_length=32, steps=4):
    """The Rust parity test's reference: logits of the last prefill position and of each single
    step, full vocabulary vectors, float32 values."""
    assert len(tokens) >= prefill_length + steps
    prefill, singles = reference_logits(model, tokens[:prefill_length + steps], prefill_length, steps)
    fixture = dict(
        about="Reference logits from PyTorch (models/export.py) for the exported step graph. Prefill "
              "tokens[:prefill_length] at pos_offset 0 from an empty cache, keep the last position's logits; "
              "then feed tokens[prefill_length + i] alone at pos_offset prefill_length + i.",
        source=source, vocab_size=model.config.vocab_size,
        tokens=tokens[:prefill_length + steps], prefill_length=prefill_length,
        prefill_last_logits=[float(x) for x in prefill[-1]],
        step_logits=[[float(x) for x in row] for row in singles],
        tolerance=1e-4,
    )
    if onnx_path is not None:
        with open(onnx_path, "rb") as f:
            fixture["model_sha256"] = hashlib.sha256(f.read()).hexdigest()
    return fixture


def write_parity_fixture(fixture, vocab, path):
    fixture = dict(fixture, vocab_hash=vocab.hash)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(fixture, f)
    return path


def quantize_int8(fp32_path, int8_path, tokens, prefill_length):
    """Dynamic int8 quantization of the weights; returns the mean KL(fp32 || int8) in nats over
    the prefill positions of the given tokens."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
    import onnx
    quantized = onnx.load(int8_path)  # quantize_dynamic keeps metadata_props; say what it is
    entry = quantized.metadata_props.add()
    entry.key, entry.value = "quantization", "int8 dynamic (onnxruntime quantize_dynamic, QInt8 weights)"
    onnx.save_model(quantized, int8_path)
    a, _ = onnx_logits(fp32_path, tokens, prefill_length, 0)
    b, _ = onnx_logits(int8_path, tokens, prefill_length, 0)
    log_p = a - np.logaddexp.reduce(a, axis=-1, keepdims=True)
    log_q = b - np.logaddexp.reduce(b, axis=-1, keepdims=True)
    return float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)))


def bench_step(path, past=300, threads=1, repeats=300):
    """Median wall time of a one-token step (batch 1) on a cache of `past` entries, in ms."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    n_layer, kv, hd = int(meta["n_layer"]), int(meta["n_kv_head"]), int(meta["head_dim"])
    rng = np.random.default_rng(0)
    feed = {name: rng.standard_normal((1, kv, past, hd)).astype(np.float32) for name in cache_names(n_layer, "past")}
    feed["input_ids"] = np.array([[int(meta["vocab_size"]) // 2]], np.int64)
    feed["pos_offset"] = np.array([past], np.int64)
    for _ in range(20):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="models/checkpoints/transformer/best.pt")
    parser.add_argument("--out", default="models/trio-base.onnx")
    parser.add_argument("--fixture", default="models/fixtures/parity.json", help="'' to skip")
    parser.add_argument("--data-dir", default="target/dataset", help="where the fixture's tokens come from")
    parser.add_argument("--training-data", help="default: from the checkpoint's data manifest")
    parser.add_argument("--licence", default=DEFAULT_LICENCE)
    parser.add_argument("--model-version", default="0.1.0")
    parser.add_argument("--quantize", action="store_true", help="also write <out>-int8.onnx")
    parser.add_argument("--bench", action="store_true", help="time one-token steps (batch 1, 1 thread, past 300)")
    args = parser.parse_args(argv)

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    vocab = data.load_vocab()
    model, checkpoint = load_checkpoint(args.checkpoint)
    if checkpoint["vocab_hash"] != vocab.hash:
        raise SystemExit(f"{args.checkpoint} was trained on vocabulary {checkpoint['vocab_hash']}, "
                         f"models/vocab.json is {vocab.hash}: retrain, or regenerate the vocabulary")
    metadata = metadata_for(model, vocab, checkpoint, args.training_data, args.licence, args.model_version)
    start = time.time()
    export_onnx(model, args.out, metadata)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB, {model.num_params():,} parameters) "
          f"in {time.time() - start:.0f} s")

    tokens, source = fixture_tokens(vocab, args.data_dir)
    error = parity_error(model, args.out, tokens, 32, 4)
    print(f"ONNX Runtime vs PyTorch (batch 1, past 0, 32-token prefill + 4 steps): max |diff| {error:.2e}")
    if error > 1e-4:
        raise SystemExit("parity check failed")
    if args.fixture:
        write_parity_fixture(parity_fixture(model, tokens, source, args.out), vocab, args.fixture)
        print(f"wrote {args.fixture} ({os.path.getsize(args.fixture) / 1e3:.0f} KB)")
    if args.quantize:
        int8_path = os.path.splitext(args.out)[0] + "-int8.onnx"
        kl = quantize_int8(args.out, int8_path, tokens, 32)
        print(f"wrote {int8_path}: KL(fp32 || int8) = {kl:.2e} nats/token over the fixture prefill")
    if args.bench:
        print(f"one-token step, batch 1, 1 thread, past 300: {bench_step(args.out):.3f} ms median")
        if args.quantize:
            print(f"  int8: {bench_step(int8_path):.3f} ms median")


if __name__ == "__main__":
    main()
