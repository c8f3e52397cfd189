"""Read a TrioTransformer back out of an exported ONNX step graph (models/export.py), for fine-tuning.

There is no PyTorch checkpoint of the shipped model, only models/trio-base.onnx. Its hyper-parameters
are in the ONNX metadata; its weights are initializers, most of them anonymous (torch.onnx's dynamo
exporter stores each nn.Linear weight transposed, as `val_N`, the right operand of a MatMul). So we
walk the graph in node order and take every weight where it is used:

    Gather(W, input_ids)        the embedding (the head is tied to it)
    Mul(x, w), w float [d]      the RMSNorm weights: per block attn_norm, mlp_norm; then final_norm
    MatMul(x, W) / Gemm         per block q_proj, kv_proj, out_proj, up, down; then the head

and check each against the shape TrioTransformer expects. Then the rebuilt model must compute what
the file computes: a fixed token sequence through PyTorch `model.step` and through ONNX Runtime,
max |logit difference| <= 1e-4, or we refuse ("cannot read the weights of MODEL: ...").

    from onnx_weights import load_transformer_from_onnx
    model, metadata = load_transformer_from_onnx("models/trio-base.onnx")
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export
from model import TransformerConfig, TrioTransformer

PARITY_TOLERANCE = 1e-4
# The parity check: a prefill of PARITY_PREFILL tokens from an empty cache, then PARITY_STEPS single
# steps (so both the prefill and the KV-cache path are compared). Fixed tokens, any vocabulary.
PARITY_PREFILL = 32
PARITY_STEPS = 4
PARITY_SEED = 0


class OnnxWeightsError(ValueError):
    """The file is not a TrioTransformer step graph we can read (or reads back wrong)."""


def parity_tokens(vocab_size, length=PARITY_PREFILL + PARITY_STEPS, seed=PARITY_SEED):
    return [int(t) for t in np.random.default_rng(seed).integers(0, vocab_size, length)]


def _config_from_metadata(meta, path):
    def integer(key, default=None):
        if key not in meta:
            if default is None:
                raise OnnxWeightsError(f"cannot read the weights of {path}: no '{key}' in its metadata")
            return default
        return int(meta[key])

    if meta.get("arch", "transformer") != "transformer":
        raise OnnxWeightsError(f"cannot read the weights of {path}: arch is {meta['arch']!r}, not transformer")
    n_head = integer("n_head")
    head_dim = integer("head_dim", 0)
    d_model = integer("d_model", n_head * head_dim if head_dim else None)
    return TransformerConfig(vocab_size=integer("vocab_size"), n_layer=integer("n_layer"), n_head=n_head,
                             n_kv_head=integer("n_kv_head"), d_model=d_model,
                             context_length=integer("context_length"), dropout=0.0,
                             rope_base=float(meta.get("rope_base", TransformerConfig.rope_base)))


def _graph_weights(proto, path):
    """(embedding, norms, matmuls) as numpy arrays in node order, each matmul weight in PyTorch's
    nn.Linear layout [out, in]."""
    from onnx import numpy_helper

    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    arrays = {}

    def array(name):
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(inits[name])
        return arrays[name]

    # Initializers seen through a Transpose (e.g. the tied head: Transpose(model.head.weight)).
    transposed = {}
    for node in graph.node:
        if node.op_type == "Transpose" and node.input[0] in inits:
            perm = [a.ints for a in node.attribute if a.name == "perm"]
            if not perm or list(perm[0]) == [1, 0]:
                transposed[node.output[0]] = node.input[0]

    def attr(node, name, default):
        for a in node.attribute:
            if a.name == name:
                return a.i
        return default

    embedding, norms, matmuls = None, [], []
    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in inits and embedding is None:
            w = array(node.input[0])
            if w.ndim == 2 and w.dtype == np.float32:
                embedding = w
        elif node.op_type == "Mul":
            for name in node.input:
                if name in inits and array(name).ndim == 1 and array(name).dtype == np.float32 and array(name).size > 1:
                    norms.append((name, array(name)))
        elif node.op_type in ("MatMul", "Gemm"):
            b = node.input[1]
            if b in inits:
                w = array(b)  # MatMul(x, W): W is [in, out]
                if node.op_type == "Gemm" and attr(node, "transB", 0):
                    w = w.T
                matmuls.append((b, np.ascontiguousarray(w.T)))
            elif b in transposed:
                if node.op_type == "Gemm" and attr(node, "transB", 0):
                    raise OnnxWeightsError(f"cannot read the weights of {path}: Gemm {node.name} on a transpose")
                matmuls.append((transposed[b], np.ascontiguousarray(array(transposed[b]))))
            elif node.input[0] in inits or node.input[0] in transposed:
                raise OnnxWeightsError(f"cannot read the weights of {path}: {node.name} has its weight on the left")
    if embedding is None:
        raise OnnxWeightsError(f"cannot read the weights of {path}: no embedding (Gather on an initializer)")
    return embedding, norms, matmuls


def load_transformer_from_onnx(path, check_parity=True):
    """(TrioTransformer in eval mode on the CPU, metadata dict of strings) from an ONNX file written
    by export.py; model.onnx_parity_error holds the measured max |logit difference|. Raises OnnxWeightsError when the graph does not read as a TrioTransformer, or when
    the rebuilt model's logits differ from ONNX Runtime's by more than 1e-4."""
    import onnx

    if not os.path.exists(path):
        raise OnnxWeightsError(f"cannot read the weights of {path}: no such file")
    try:
        proto = onnx.load(path)
    except Exception as e:  # a truncated or foreign file: say which
        raise OnnxWeightsError(f"cannot read the weights of {path}: not an ONNX file ({e})") from e
    meta = {p.key: p.value for p in proto.metadata_props}
    config = _config_from_metadata(meta, path)
    d, hd, L = config.d_model, config.head_dim, config.n_layer
    embedding, norms, matmuls = _graph_weights(proto, path)
    del proto

    def fail(what):
        raise OnnxWeightsError(f"cannot read the weights of {path}: {what}")

    if embedding.shape != (config.vocab_size, d):
        fail(f"embedding is {list(embedding.shape)}, metadata says [{config.vocab_size}, {d}]")
    if len(norms) != 2 * L + 1:
        fail(f"found {len(norms)} norm weights, expected {2 * L + 1} for {L} layers")
    if len(matmuls) != 5 * L + 1:
        fail(f"found {len(matmuls)} weight matrices, expected {5 * L + 1} for {L} layers")
    for name, w in norms:
        if w.shape != (d,):
            fail(f"norm weight {name} is {list(w.shape)}, expected [{d}]")

    # Expected [out, in] shapes, per block in node order, then the (tied) head.
    block_shapes = [("q_proj", (config.n_head * hd, d)), ("kv_proj", (2 * config.n_kv_head * hd, d)),
                    ("out_proj", (d, config.n_head * hd)), ("up", (4 * d, d)), ("down", (d, 4 * d))]
    state = {"embed.weight": embedding, "head.weight": embedding, "final_norm.weight": norms[-1][1]}
    for i in range(L):
        state[f"blocks.{i}.attn_norm.weight"] = norms[2 * i][1]
        state[f"blocks.{i}.mlp_norm.weight"] = norms[2 * i + 1][1]
        for j, (module, shape) in enumerate(block_shapes):
            name, w = matmuls[5 * i + j]
            if w.shape != shape:
                fail(f"block {i} {module}: initializer {name} is {list(w.shape[::-1])} (as a MatMul operand), "
                     f"expected {list(shape[::-1])}")
            prefix = "attn" if module in ("q_proj", "kv_proj", "out_proj") else "mlp"
            state[f"blocks.{i}.{prefix}.{module}.weight"] = w
    head_name, head = matmuls[-1]
    if head.shape != (config.vocab_size, d):
        fail(f"head {head_name} is {list(head.shape)}, expected [{config.vocab_size}, {d}]")
    if not np.array_equal(head, embedding):
        fail("the head is not tied to the embedding (TrioTransformer ties them)")
    # (Names are not checked: the exporter shares one initializer between equal weights, e.g. the
    # all-ones norms of a fresh model, under the first one's name. Node order is what counts, and
    # the parity check below is the proof.)

    torch.manual_seed(0)  # the init is overwritten; seeded so nothing here depends on the global RNG
    model = TrioTransformer(config)
    missing = set(model.state_dict()) - set(state)
    if missing:
        fail(f"no weights for {sorted(missing)}")
    model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()})
    model.eval()

    if check_parity:
        try:
            error = export.parity_error(model, path, parity_tokens(config.vocab_size), PARITY_PREFILL, PARITY_STEPS)
        except Exception as e:  # ONNX Runtime refuses the file, or its inputs are not the step graph's
            raise OnnxWeightsError(f"cannot read the weights of {path}: ONNX Runtime could not run it ({e})") from e
        if not error <= PARITY_TOLERANCE:
            fail(f"the rebuilt PyTorch model differs from the file by {error:.2e} in the logits "
                 f"(tolerance {PARITY_TOLERANCE:.0e})")
        model.onnx_parity_error = error  # for the caller to report
    return model, meta


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="models/trio-base.onnx")
    args = parser.parse_args()
    try:
        model, metadata = load_transformer_from_onnx(args.model)
    except OnnxWeightsError as e:
        raise SystemExit(str(e)) from None
    print(f"{args.model}: {model.num_params():,} parameters, model_version {metadata.get('model_version')}, "
          f"parity {model.onnx_parity_error:.2e}")
