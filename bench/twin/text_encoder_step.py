#!/usr/bin/env python3
"""Python twin of mtrec's TextEncoder training step (bench/twin_steps.h, make_text_encoder_step).

The same architecture as include/mtrec/nn/text_encoder.h with the options the bench uses
(pre-LN, separate q/k/v projections, exact masked-softmax attention as LibTorch 1.13's
attention_reference, GELU feed-forward, masked-mean pooling), the same deterministic batch,
loss and AdamW; prints one JSON line with the milliseconds of every timed step.

    /usr/bin/python3 bench/twin/text_encoder_step.py --threads 1 --warmup 3 --steps 10
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class TransformerLayer(nn.Module):
    def __init__(self, d, heads, ffn, dropout, eps=1e-5):
        super().__init__()
        self.h, self.p = heads, dropout
        self.query, self.key, self.value, self.attn_out = (nn.Linear(d, d) for _ in range(4))
        self.ffn_in, self.ffn_out = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)

    def self_attention(self, x, mask):
        b, l, d = x.shape
        dh = d // self.h

        def split(t):
            return t.view(b, l, self.h, dh).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(dh))
        any_key = mask.any(1)
        keep = mask.logical_or(any_key.logical_not().unsqueeze(1))
        scores = scores.masked_fill(keep.logical_not().view(b, 1, 1, l), float("-inf"))
        w = torch.softmax(scores, -1)
        if self.training and self.p > 0:
            w = F.dropout(w, self.p, True)
        out = torch.matmul(w, v)
        out = out.masked_fill(any_key.logical_not().view(-1, 1, 1, 1), 0)
        return self.attn_out(out.transpose(1, 2).reshape(b, l, d))

    def forward(self, x, mask):
        p, t = self.p, self.training
        y = x + F.dropout(self.self_attention(self.norm1(x), mask), p, t)
        f = self.ffn_out(F.dropout(F.gelu(self.ffn_in(self.norm2(y))), p, t))
        return y + F.dropout(f, p, t)


class TextEncoder(nn.Module):
    def __init__(self, vocab, d, layers, heads, max_len, dropout):
        super().__init__()
        self.p = dropout
        self.token_embedding = nn.Embedding(vocab, d)
        self.position_embedding = nn.Embedding(max_len, d)
        with torch.no_grad():
            self.token_embedding.weight.normal_(0, 0.02)
            self.position_embedding.weight.normal_(0, 0.02)
        self.final_norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(TransformerLayer(d, heads, 4 * d, dropout) for _ in range(layers))

    def forward(self, ids, mask):
        l = ids.size(1)
        positions = torch.arange(l, dtype=ids.dtype)
        x = self.token_embedding(ids) + self.position_embedding(positions).unsqueeze(0)
        x = F.dropout(x, self.p, self.training)
        for layer in self.layers:
            x = layer(x, mask)
        hidden = self.final_norm(x)
        w = mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)
        return hidden, pooled


def batch(b_size, seq, vocab):
    ids = torch.zeros(b_size, seq, dtype=torch.int64)
    mask = torch.zeros(b_size, seq, dtype=torch.bool)
    for b in range(b_size):
        n = min(seq, seq // 2 + (b * 7) % (seq // 2 + 1))
        for j in range(n):
            ids[b, j] = 5 + (b * 1009 + j * 31) % (vocab - 5)
        mask[b, :n] = True
    return ids, mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=8000)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    enc = TextEncoder(a.vocab, a.dim, a.layers, a.heads, a.seq, 0.1)
    enc.train()
    ids, mask = batch(a.batch, a.seq, a.vocab)
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-4, weight_decay=0.01)
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()  # 1.13: set_to_none=False, as LibTorch's Optimizer::zero_grad()
        hidden, pooled = enc(ids, mask)
        loss = pooled.pow(2).mean() + hidden.mean()
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if s >= a.warmup:
            times.append((t1 - t0) * 1e3)
    print(json.dumps({"model": "text_encoder", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "ms": times}))


if __name__ == "__main__":
    main()
