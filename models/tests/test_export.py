import json
import os

import numpy as np
import onnx
import pytest
import torch

import data
import export
from model import TransformerConfig, TrioTransformer

PARITY_TOLERANCE = 1e-4
VOCAB_SIZE = data.load_vocab().size


def tiny_model(n_kv_head, seed=0):
    """A tiny random model with weights large enough that its logits vary (std > 0.5): with the
    default 0.02 init every logit is near 0 and a parity check would prove little."""
    torch.manual_seed(seed)
    model = TrioTransformer(TransformerConfig(vocab_size=VOCAB_SIZE, n_layer=2, n_head=4, n_kv_head=n_kv_head,
                                              d_model=64, context_length=128))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.15)
    return model.eval()


def test_step_path_matches_training_forward():
    for n_kv_head in (1, 2, 4):
        model = tiny_model(n_kv_head)
        ids = torch.randint(0, VOCAB_SIZE, (2, 50))
        with torch.no_grad():
            full, _ = model(ids)
            keys, values = model.empty_cache(2)
            chunks = []
            for start, end in ((0, 20), (20, 21), (21, 35), (35, 50)):
                logits, keys, values = model.step(ids[:, start:end], torch.tensor([start]), keys, values)
                chunks.append(logits)
        assert full.std() > 0.5
        torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=0, atol=1e-4)
        assert keys[0].shape == (2, n_kv_head, 50, 16)


@pytest.mark.parametrize("n_kv_head", [1, 2])
def test_onnx_matches_pytorch(n_kv_head, vocab, tmp_path):
    model = tiny_model(n_kv_head)
    path = str(tmp_path / "step.onnx")
    metadata = export.metadata_for(model, vocab, None, "test data", "MIT", "test")
    export.export_onnx(model, path, metadata)

    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}
    for key in ("vocab_hash", "vocab_size", "context_length", "n_layer", "n_kv_head", "head_dim",
                "training_data", "licence", "model_version", "arch"):
        assert key in props, key
    assert props["vocab_hash"] == vocab.hash and props["n_kv_head"] == str(n_kv_head)
    assert [i.name for i in proto.graph.input] == ["input_ids", "pos_offset", "past_key_0", "past_value_0",
                                                   "past_key_1", "past_value_1"]
    assert [o.name for o in proto.graph.output] == ["logits", "present_key_0", "present_value_0",
                                                    "present_key_1", "present_value_1"]

    # Batch 1 from an empty cache: a 100-token prefill (every position) and 20 single steps.
    tokens = np.random.default_rng(0).integers(0, VOCAB_SIZE, 120).tolist()
    assert export.parity_error(model, path, tokens, 100, 20) <= PARITY_TOLERANCE

    # Other batch and past sizes than at export: batch 3, 4 new tokens on a past of 7.
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ids = torch.randint(0, VOCAB_SIZE, (3, 11))
    with torch.no_grad():
        keys, values = model.empty_cache(3)
        _, keys, values = model.step(ids[:, :7], torch.tensor([0]), keys, values)
        expected, new_keys, _ = model.step(ids[:, 7:], torch.tensor([7]), keys, values)
    feed = {"input_ids": ids[:, 7:].numpy(), "pos_offset": np.array([7], np.int64)}
    for i in range(2):
        feed[f"past_key_{i}"], feed[f"past_value_{i}"] = keys[i].numpy(), values[i].numpy()
    outputs = session.run(None, feed)
    assert outputs[0].shape == (3, 4, VOCAB_SIZE) and outputs[1].shape == (3, n_kv_head, 11, 16)
    assert np.abs(outputs[0] - expected.numpy()).max() <= PARITY_TOLERANCE
    assert np.abs(outputs[1] - new_keys[0].numpy()).max() <= PARITY_TOLERANCE


def test_parity_fixture(vocab, tmp_path):
    model = tiny_model(1)
    tokens, source = export.fixture_tokens(vocab, str(tmp_path / "no-dataset-here"))
    assert "synthetic" in source and tokens[0] == vocab.bos
    fixture = export.parity_fixture(model, tokens, source)
    path = export.write_parity_fixture(fixture, vocab, str(tmp_path / "fixtures" / "parity.json"))
    assert os.path.getsize(path) < 200_000
    with open(path) as f:
        loaded = json.load(f)
    assert loaded["vocab_hash"] == vocab.hash and loaded["prefill_length"] == 32
    assert len(loaded["tokens"]) == 36 and all(0 <= t < vocab.size for t in loaded["tokens"])
    assert len(loaded["prefill_last_logits"]) == vocab.size
    assert len(loaded["step_logits"]) == 4 and all(len(row) == vocab.size for row in loaded["step_logits"])
    # The stored numbers are the model's: recompute the last step the slow way (whole sequence).
    with torch.no_grad():
        full, _ = model(torch.tensor([loaded["tokens"]]))
    np.testing.assert_allclose(loaded["step_logits"][-1], full[0, -1].numpy(), atol=1e-4)
    np.testing.assert_allclose(loaded["prefill_last_logits"], full[0, 31].numpy(), atol=1e-4)


SHIPPED_MODEL = os.path.join(os.path.dirname(data.VOCAB_PATH), "trio-base.onnx")
SHIPPED_FIXTURE = os.path.join(os.path.dirname(data.VOCAB_PATH), "fixtures", "parity.json")


@pytest.mark.skipif(not (os.path.exists(SHIPPED_MODEL) and os.path.exists(SHIPPED_FIXTURE)),
                    reason="no exported models/trio-base.onnx + fixtures/parity.json yet")
def test_shipped_model_matches_its_fixture(vocab):
    with open(SHIPPED_FIXTURE) as f:
        fixture = json.load(f)
    session_meta = {p.key: p.value for p in onnx.load(SHIPPED_MODEL, load_external_data=False).metadata_props}
    assert session_meta["vocab_hash"] == fixture["vocab_hash"] == vocab.hash
    prefill, steps = export.onnx_logits(SHIPPED_MODEL, fixture["tokens"], fixture["prefill_length"],
                                        len(fixture["step_logits"]))
    assert np.abs(prefill[-1] - np.array(fixture["prefill_last_logits"])).max() <= PARITY_TOLERANCE
    assert np.abs(steps - np.array(fixture["step_logits"])).max() <= PARITY_TOLERANCE
