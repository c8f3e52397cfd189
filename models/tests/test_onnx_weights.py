import os

import numpy as np
import onnx
import pytest
import torch

import data
import export
import onnx_weights
from model import TransformerConfig, TrioTransformer

SHIPPED_MODEL = os.path.join(os.path.dirname(data.VOCAB_PATH), "trio-base.onnx")


@pytest.mark.skipif(not os.path.exists(SHIPPED_MODEL), reason="no models/trio-base.onnx")
def test_rebuilds_the_shipped_model():
    model, meta = onnx_weights.load_transformer_from_onnx(SHIPPED_MODEL)
    assert model.onnx_parity_error <= 1e-4
    c = model.config
    assert (c.n_layer, c.n_head, c.n_kv_head, c.d_model, c.context_length, c.vocab_size) == (
        int(meta["n_layer"]), int(meta["n_head"]), int(meta["n_kv_head"]), int(meta["d_model"]),
        int(meta["context_length"]), int(meta["vocab_size"]))
    assert model.head.weight is model.embed.weight  # still tied, so a fine-tune keeps them tied
    # The training path (forward) computes what the step path (the ONNX graph) does.
    ids = torch.tensor([onnx_weights.parity_tokens(c.vocab_size, 40)])
    with torch.no_grad():
        full, _ = model(ids)
        stepped, _, _ = model.step(ids, torch.tensor([0]), *model.empty_cache(1))
    torch.testing.assert_close(full, stepped, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def tiny_exported(tmp_path_factory, vocab):
    """A tiny trained-looking model (weights far from their init) exported by export.py, n_kv_head 2."""
    torch.manual_seed(0)
    model = TrioTransformer(TransformerConfig(vocab_size=vocab.size, n_layer=2, n_head=4, n_kv_head=2, d_model=64,
                                              context_length=128))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.15)
            else:
                p.uniform_(0.5, 1.5)
    path = str(tmp_path_factory.mktemp("tiny") / "tiny.onnx")
    export.export_onnx(model.eval(), path, export.metadata_for(model, vocab, None, "test", "MIT", "tiny-0"))
    return model, path


def test_rebuilds_an_exported_model_exactly(tiny_exported):
    model, path = tiny_exported
    rebuilt, meta = onnx_weights.load_transformer_from_onnx(path)
    assert meta["model_version"] == "tiny-0"
    assert rebuilt.config == model.config
    for name, tensor in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], tensor), name
    assert rebuilt.onnx_parity_error <= 1e-4


def test_a_misread_model_is_refused(tiny_exported, tmp_path):
    # A wrong rotary base in the metadata: every weight reads fine, the logits do not match.
    _, path = tiny_exported
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "rope_base", "500.0"
    bad = str(tmp_path / "bad.onnx")
    onnx.save_model(proto, bad)
    with pytest.raises(onnx_weights.OnnxWeightsError, match=r"cannot read the weights of .*bad\.onnx: .*differs"):
        onnx_weights.load_transformer_from_onnx(bad)


def test_not_a_model_is_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    with pytest.raises(onnx_weights.OnnxWeightsError, match="cannot read the weights of"):
        onnx_weights.load_transformer_from_onnx(str(junk))
    with pytest.raises(onnx_weights.OnnxWeightsError, match="no such file"):
        onnx_weights.load_transformer_from_onnx(str(tmp_path / "missing.onnx"))


def test_training_starts_from_an_exported_model_whose_vocabulary_grew_at_its_end(vocab, tmp_path):
    """train.py --init-from: the old tokens keep their rows, the new ones their fresh init, the rest is copied;
    another shape is refused."""
    import train
    torch.manual_seed(1)
    old_size = vocab.size - 35
    config = dict(n_layer=2, n_head=4, n_kv_head=1, d_model=64)
    small = TrioTransformer(TransformerConfig(vocab_size=old_size, context_length=128, **config))
    with torch.no_grad():
        for p in small.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = str(tmp_path / "small.onnx")
    export.export_onnx(small.eval(), path, export.metadata_for(small, vocab, None, "test", "MIT", "small-0"))
    grown = TrioTransformer(TransformerConfig(vocab_size=vocab.size, context_length=256, **config))
    fresh = grown.embed.weight[old_size:].detach().clone()
    train.init_from_onnx(grown, path)
    torch.testing.assert_close(grown.embed.weight[:old_size], small.embed.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(grown.embed.weight[old_size:], fresh, rtol=0, atol=0)
    grown_state = grown.state_dict()
    for name, weight in small.state_dict().items():
        if weight.shape == grown_state[name].shape:
            torch.testing.assert_close(grown_state[name], weight, rtol=0, atol=1e-6, msg=name)
    narrower = TrioTransformer(TransformerConfig(vocab_size=vocab.size, context_length=128, n_layer=2, n_head=4,
                                                 n_kv_head=1, d_model=32))
    with pytest.raises(SystemExit):
        train.init_from_onnx(narrower, path)
