"""The models: TrioTransformer (the shipped one) and LSTMBaseline (a BachProp-like baseline).

TrioTransformer is a small decoder-only transformer: pre-norm (RMSNorm), rotary positions,
multi-query / grouped-query attention, GELU MLP, tied embeddings. It has two paths that compute
the same function:
- forward(): whole windows, for training (SDPA with is_causal=True);
- step(): new tokens on top of a KV cache, attention written by hand; this is what export.py turns
  into the ONNX graph that the plugin runs.

Nothing here is run directly; see train.py and export.py.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from data import IGNORE_INDEX


@dataclass
class TransformerConfig:
    vocab_size: int = 356
    n_layer: int = 4
    n_head: int = 8
    n_kv_head: int = 1  # 1 = multi-query: the spike measured ~3x faster batch-8 steps than full MHA
    d_model: int = 256
    context_length: int = 512
    dropout: float = 0.0
    rope_base: float = 10000.0

    @property
    def head_dim(self):
        return self.d_model // self.n_head


class RMSNorm(nn.Module):
    # Written out rather than nn.RMSNorm so the exported graph is plain ops on every opset.
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_cos_sin(positions, head_dim, base):
    """cos, sin [T, head_dim/2] for integer positions [T]. Computed from the positions themselves
    (no table), so a host may drop cache entries and keep counting past the context length."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    return torch.cos(angles), torch.sin(angles)


def apply_rotary(x, cos, sin):
    # x [B, heads, T, head_dim]; rotate the two halves of each head as complex pairs.
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.d_model % config.n_head == 0
        assert config.n_head % config.n_kv_head == 0
        self.n_head = config.n_head
        self.n_kv_head = config.n_kv_head
        self.head_dim = config.head_dim
        self.rope_base = config.rope_base
        self.q_proj = nn.Linear(config.d_model, config.n_head * self.head_dim, bias=False)
        self.kv_proj = nn.Linear(config.d_model, 2 * config.n_kv_head * self.head_dim, bias=False)
        self.out_proj = nn.Linear(config.n_head * self.head_dim, config.d_model, bias=False)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def qkv(self, x, cos, sin):
        """Rotated q [B, H, T, hd], k [B, KV, T, hd], and v [B, KV, T, hd]."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        kv = self.kv_proj(x).view(B, T, 2, self.n_kv_head, self.head_dim)
        k = kv[:, :, 0].transpose(1, 2)
        v = kv[:, :, 1].transpose(1, 2)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q, k, v = self.qkv(x, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv_head != self.n_head,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.out_proj(y.transpose(1, 2).reshape(B, T, -1)))

    def step(self, x, cos, sin, past_k, past_v):
        """New tokens x [B, N, d] attending to the cache [B, KV, P, hd] and to themselves (causally).
        Returns the output and the present cache (past + new)."""
        B, N, _ = x.shape
        q, k, v = self.qkv(x, cos, sin)
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        P = past_k.shape[2]
        S = k.shape[2]  # P + N
        group = self.n_head // self.n_kv_head
        # The query heads that share one kv head are stacked along the rows, so each kv head is
        # one plain matmul (no repeated keys): [B, KV, group*N, hd] @ [B, KV, hd, S].
        q = q.reshape(B, self.n_kv_head, group * N, self.head_dim)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        scores = scores.view(B, self.n_kv_head, group, N, S)
        allowed = torch.arange(S, device=x.device)[None, :] <= torch.arange(N, device=x.device)[:, None] + P
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=-1).view(B, self.n_kv_head, group * N, S)
        y = (weights @ v).view(B, self.n_head, N, self.head_dim)
        return self.out_proj(y.transpose(1, 2).reshape(B, N, -1)), k, v


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.up = nn.Linear(config.d_model, 4 * config.d_model, bias=False)
        self.down = nn.Linear(4 * config.d_model, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        # tanh GELU: one formula that PyTorch and ONNX Runtime compute alike.
        return self.dropout(self.down(F.gelu(self.up(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))

    def step(self, x, cos, sin, past_k, past_v):
        a, k, v = self.attn.step(self.attn_norm(x), cos, sin, past_k, past_v)
        x = x + a
        return x + self.mlp(self.mlp_norm(x)), k, v


class TrioTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.final_norm = RMSNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied: fewer parameters, and it helps small models
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream.
        for name, p in self.named_parameters():
            if name.endswith(("out_proj.weight", "down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())  # the tied matrix counts once

    def forward(self, input_ids, targets=None):
        """input_ids [B, T] -> logits [B, T, V] (and the mean cross entropy over non-ignored targets)."""
        T = input_ids.shape[1]
        cos, sin = rotary_cos_sin(torch.arange(T, device=input_ids.device), self.config.head_dim, self.config.rope_base)
        x = self.dropout(self.embed(input_ids))
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.head(self.final_norm(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=IGNORE_INDEX)
        return logits, loss

    def empty_cache(self, batch=1):
        shape = (batch, self.config.n_kv_head, 0, self.config.head_dim)
        keys = [torch.zeros(shape) for _ in self.blocks]
        values = [torch.zeros(shape) for _ in self.blocks]
        return keys, values

    def step(self, input_ids, pos_offset, past_keys, past_values):
        """The KV-cache path (what the ONNX graph computes).

        input_ids [B, N] int64, pos_offset [1] int64 (position of the first new token),
        past_keys / past_values: one [B, n_kv_head, P, head_dim] tensor per layer.
        Returns logits [B, N, V] float32 and the present keys / values (past + new, P + N long).
        """
        N = input_ids.shape[1]
        positions = pos_offset + torch.arange(N, device=input_ids.device)
        cos, sin = rotary_cos_sin(positions, self.config.head_dim, self.config.rope_base)
        x = self.embed(input_ids)
        present_keys, present_values = [], []
        for block, past_k, past_v in zip(self.blocks, past_keys, past_values):
            x, k, v = block.step(x, cos, sin, past_k, past_v)
            present_keys.append(k)
            present_values.append(v)
        return self.head(self.final_norm(x)), present_keys, present_values


@dataclass
class LSTMConfig:
    vocab_size: int = 356
    n_layer: int = 2
    hidden: int = 256
    context_length: int = 512
    dropout: float = 0.0


class LSTMBaseline(nn.Module):
    """The seed article's BachProp-like baseline: embedding, 2 x LSTM-256, output layer, on the
    same tokens and windows as the transformer."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden)
        self.lstm = nn.LSTM(config.hidden, config.hidden, num_layers=config.n_layer, batch_first=True,
                            dropout=config.dropout if config.n_layer > 1 else 0.0)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, input_ids, targets=None, state=None):
        out, state = self.lstm(self.embed(input_ids), state)
        logits = self.head(out)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=IGNORE_INDEX)
        return logits, loss


def build_model(arch, config_dict):
    if arch == "transformer":
        return TrioTransformer(TransformerConfig(**config_dict))
    if arch == "lstm":
        return LSTMBaseline(LSTMConfig(**config_dict))
    raise ValueError(f"unknown arch {arch!r}")
