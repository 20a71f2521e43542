#!/usr/bin/env python3
"""Python twin of mtrec's next-item training step (bench/twin_steps.h, make_next_item_step).

The same SASRec-style model as include/mtrec/tasks/next_item.h and
include/mtrec/nn/causal_transformer.h (item embedding scaled by sqrt(d) plus positions counted
back from the end, pre-LN causal blocks with a fused qkv projection, final LayerNorm, padding
zeroed), full-softmax cross-entropy over the catalogue at the target positions, gradient
clipping at 5 and AdamW, on the same deterministic batch; prints one JSON line with the
milliseconds of every timed step.

    /usr/bin/python3 bench/twin/next_item_step.py --threads 1 --warmup 3 --steps 10
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def causal_padding_mask(valid):
    l = valid.size(1)
    causal = torch.ones(l, l, dtype=torch.bool).tril()
    keys = valid.to(torch.bool).unsqueeze(1).unsqueeze(1)
    eye = torch.eye(l, dtype=torch.bool)
    return causal.logical_and(keys).logical_or(eye)


class CausalBlock(nn.Module):
    def __init__(self, d, heads, ffn, dropout):
        super().__init__()
        self.h = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.drop = nn.Dropout(dropout)
        with torch.no_grad():
            for lin in (self.qkv, self.out, self.ff1, self.ff2):
                nn.init.xavier_uniform_(lin.weight)
                lin.bias.zero_()

    def forward(self, x, attn_mask):
        b, l, d = x.shape
        dh = d // self.h
        parts = self.qkv(self.ln1(x)).view(b, l, 3, self.h, dh).permute(2, 0, 3, 1, 4)
        q, k, v = parts[0], parts[1], parts[2]
        att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(dh))
        att = att.masked_fill(attn_mask.logical_not(), float("-inf"))
        att = self.drop(torch.softmax(att, -1))
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, l, d)
        h = x + self.drop(self.out(y))
        f = self.ff2(self.drop(F.gelu(self.ff1(self.ln2(h)))))
        return h + self.drop(f)


class NextItemModel(nn.Module):
    def __init__(self, num_items, d, layers, heads, max_len, dropout):
        super().__init__()
        self.d = d
        self.item_emb = nn.Embedding(num_items + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, d)
        with torch.no_grad():
            self.item_emb.weight.normal_(0.0, 1.0 / math.sqrt(d))
            self.item_emb.weight[0].zero_()
            self.pos_emb.weight.normal_(0.0, 0.3)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(CausalBlock(d, heads, d, dropout) for _ in range(layers))
        self.final_ln = nn.LayerNorm(d)

    def forward(self, tokens):
        l = tokens.size(1)
        valid = tokens.ne(0)
        x = self.item_emb(tokens)
        pos = torch.arange(l - 1, -1, -1, dtype=tokens.dtype)
        x = x * math.sqrt(self.d) + self.pos_emb(pos).unsqueeze(0)
        x = self.emb_drop(x)
        mask = causal_padding_mask(valid)
        keep = valid.to(x.dtype).unsqueeze(-1)
        h = x * keep
        for blk in self.blocks:
            h = blk(h, mask) * keep
        return self.final_ln(h) * keep

    def full_softmax_loss(self, tokens, targets):
        h = self.forward(tokens)
        idx = targets.reshape(-1).ne(0).nonzero().squeeze(1)
        hs = h.reshape(-1, self.d).index_select(0, idx)
        ts = targets.reshape(-1).index_select(0, idx) - 1
        return F.cross_entropy(torch.matmul(hs, self.item_emb.weight[1:].t()), ts)


def batch(b_size, max_len, num_items):
    tok = torch.zeros(b_size, max_len, dtype=torch.int64)
    tgt = torch.zeros_like(tok)
    for b in range(b_size):
        n = min(max_len, 10 + (b * 37) % 250)
        for j in range(n):
            tok[b, max_len - n + j] = 1 + (b * 1009 + j * 31) % num_items
            tgt[b, max_len - n + j] = 1 + (b * 1009 + (j + 1) * 31) % num_items
    return tok, tgt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--num-items", type=int, default=1682)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = NextItemModel(a.num_items, a.d, a.layers, a.heads, a.max_len, 0.2)
    model.train()
    tok, tgt = batch(a.batch, a.max_len, a.num_items)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)
    loss_sum = torch.zeros((), dtype=torch.float64)
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()  # 1.13: set_to_none=False, as LibTorch's Optimizer::zero_grad()
        loss = model.full_softmax_loss(tok, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        loss_sum += loss.detach().to(torch.float64)
        t1 = time.perf_counter()
        if s >= a.warmup:
            times.append((t1 - t0) * 1e3)
    print(json.dumps({"model": "next_item", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "ms": times}))


if __name__ == "__main__":
    main()
