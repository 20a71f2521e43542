#!/usr/bin/env python3
"""Python twin of mtrec's unified joint training step (bench/twin_steps.h, make_joint_step).

The same model as include/mtrec/model/unified.h with fit_joint's defaults and all six tasks
(text encoder d=64 L2 H2 fine-tuned at 0.03x the lr; ID embeddings; profiles encoded per batch
in eval mode without gradient; causal sequence encoder once per distinct history; STAR scenario
layer on the input and on each task's output; MMoE with 4 experts 128-64; the rating head's
biased MF and the CTR head's factors; next item by full softmax over the catalogue table; match
over the batch's distinct positive items; scenario classifier once per distinct context; MLM
with a decoder tied to the token embedding), its texts encoded in length-sorted chunks of 128,
the joint losses of model/joint_tasks.cpp (static weights, MLM 0.1), one read-back of the
losses, backward, clip_grad_norm_(5) and AdamW(2e-3, weight decay 0.01), on the same
deterministic batch. Written as plain PyTorch eager (F.dropout, torch.matmul); the text-cache
refresh is left out, as on the C++ side. Prints one JSON line with the parameter count and the
milliseconds of every timed step. With --dropout 0 --id-dropout 0 and the C++ model's parameters
loaded by name, its six losses, gradient norm and first three AdamW steps matched the C++
step's to 1e-6 (checked when it was written).

    /usr/bin/python3 bench/twin/joint_step.py --threads 1 --warmup 3 --steps 8
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The text encoder's layer is the text-encoder twin's (the same pre-LN layer as nn/text_encoder.h).
from text_encoder_step import TransformerLayer

PAD, MASK, CHUNK = 0, 4, 128
PROFILE_LEN = [19, 20, 18, 19, 21, 10, 19, 20, 18, 19, 11, 20, 19, 21, 18, 19]
CONTEXT_LEN = [3, 6, 4, 6, 8, 3, 6, 9]


# ---- The deterministic texts and batch (twin_steps.h, namespace joint_detail) ----------------
def token(a, vocab):
    return 5 + a % (vocab - 5)


def item_len(i):
    return 15 + (i * 7) % 13


def context_len(k):
    return 17 if k == 100 else CONTEXT_LEN[k % 8]


def history_len(b):
    return 0 if b % 8 == 0 else min(20, 1 + ((b * 37) % 21) * ((b * 11) % 21) // 16)


def text_table(n, lens, a, b, vocab, max_len):
    """[n, L] ids and mask of rows whose token j is token(r*a + j*b); L = the longest row."""
    r = torch.arange(n).unsqueeze(1)
    L = min(max_len, int(lens.max()))
    j = torch.arange(L).unsqueeze(0)
    mask = j < lens.unsqueeze(1)
    ids = (5 + (r * a + j * b) % (vocab - 5)).masked_fill(~mask, PAD)
    return ids, mask


def joint_batch(a):
    B, M = a.batch, a.mlm_texts
    L = max(history_len(b) for b in range(B))
    Lc = max(context_len(b // 2) for b in range(B))
    user, item, scen = [torch.zeros(B, dtype=torch.int64) for _ in range(3)]
    hist = torch.zeros(B, L, dtype=torch.int64)
    rating, click = torch.zeros(B), torch.zeros(B, 3)
    m_rating, m_next, m_match = [torch.zeros(B, dtype=torch.bool) for _ in range(3)]
    ctx, ctx_mask = torch.zeros(B, Lc, dtype=torch.int64), torch.zeros(B, Lc, dtype=torch.bool)
    for b in range(B):
        r, s, n, k = b % 24, b % 16, history_len(b), b // 2
        positive, rated, wished = r < 8, r in (1, 5), r == 6
        user[b] = (b * 7919 + 13) % a.users
        item[b] = ((b - 1 if b % 16 == 15 else b) * 2713 + 7) % a.items
        scen[b] = 0 if s < 9 else 1 if s < 13 else 2
        for j in range(n):
            hist[b, L - n + j] = 1 + (b * 1009 + j * 31) % a.items
        rating[b] = float(1 + (b * 3) % 5) if rated else 0.0
        m_rating[b] = rated
        click[b, 0], click[b, 1], click[b, 2] = float(positive), float(rated), float(wished)
        m_next[b] = positive and n > 0
        m_match[b] = positive
        for j in range(context_len(k)):
            ctx[b, j] = token(k * 131 + j * 17, a.vocab)
            ctx_mask[b, j] = True

    def mlm_len(m):
        return item_len(m) if m % 6 == 0 else PROFILE_LEN[m % 16]

    Lm = max(mlm_len(m) for m in range(M))
    ids = torch.zeros(M, Lm, dtype=torch.int64)
    labels = torch.full((M, Lm), -100, dtype=torch.int64)
    sel, att = torch.zeros(M, Lm, dtype=torch.bool), torch.zeros(M, Lm, dtype=torch.bool)
    for m in range(M):
        for j in range(mlm_len(m)):
            t = token(m * 389 + j * 23, a.vocab)
            picked = j > 0 and (m * 5 + j * 3) % 7 == 2
            ids[m, j] = MASK if picked and (m + j) % 10 < 8 else t
            att[m, j], sel[m, j] = True, picked
            if picked:
                labels[m, j] = t
    return {"user": user, "item": item, "scenario": scen, "history": hist, "rating": rating,
            "mask/rating": m_rating, "click": click, "mask/ctr": torch.ones(B, dtype=torch.bool),
            "mask/next_item": m_next, "mask/match": m_match, "context_ids": ctx, "context_mask": ctx_mask,
            "mask/scenario": torch.ones(B, dtype=torch.bool), "mlm/input_ids": ids, "mlm/labels": labels,
            "mlm/selected": sel, "mlm/attention_mask": att}


# ---- Modules ------------------------------------------------------------------------------
class TextEncoder(nn.Module):
    def __init__(self, vocab, d, layers, heads, max_len, dropout):
        super().__init__()
        self.p = dropout
        self.token_embedding, self.position_embedding = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        with torch.no_grad():
            self.token_embedding.weight.normal_(0, 0.02)
            self.position_embedding.weight.normal_(0, 0.02)
        self.layers = nn.ModuleList(TransformerLayer(d, heads, 4 * d, dropout) for _ in range(layers))
        self.final_norm = nn.LayerNorm(d)

    def encode(self, ids, mask):
        x = self.token_embedding(ids) + self.position_embedding(torch.arange(ids.size(1))).unsqueeze(0)
        x = F.dropout(x, self.p, self.training)
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_norm(x)

    def forward(self, ids, mask):
        """Masked-mean pooled vectors."""
        w = mask.to(torch.float32).unsqueeze(-1)
        return (self.encode(ids, mask) * w).sum(1) / w.sum(1).clamp_min(1.0)


class MlmHead(nn.Module):
    def __init__(self, d, vocab):
        super().__init__()
        self.dense, self.norm = nn.Linear(d, d), nn.LayerNorm(d)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, hidden, embedding):
        return torch.matmul(self.norm(F.gelu(self.dense(hidden))), embedding.t()) + self.bias


class CausalBlock(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.h, self.p = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, d), nn.Linear(d, d)
        with torch.no_grad():
            for lin in (self.qkv, self.out, self.ff1, self.ff2):
                nn.init.xavier_uniform_(lin.weight)
                lin.bias.zero_()

    def forward(self, x, attn_mask):
        b, l, d = x.shape
        dh, p, t = d // self.h, self.p, self.training
        parts = self.qkv(self.ln1(x)).view(b, l, 3, self.h, dh).permute(2, 0, 3, 1, 4)
        att = torch.matmul(parts[0], parts[1].transpose(-2, -1)) * (1.0 / math.sqrt(dh))
        att = F.dropout(torch.softmax(att.masked_fill(attn_mask.logical_not(), float("-inf")), -1), p, t)
        y = torch.matmul(att, parts[2]).transpose(1, 2).reshape(b, l, d)
        h = x + F.dropout(self.out(y), p, t)
        return h + F.dropout(self.ff2(F.dropout(F.gelu(self.ff1(self.ln2(h))), p, t)), p, t)


class CausalTransformer(nn.Module):
    def __init__(self, d, layers, heads, dropout):
        super().__init__()
        self.blocks = nn.ModuleList(CausalBlock(d, heads, dropout) for _ in range(layers))
        self.final_ln = nn.LayerNorm(d)

    def forward(self, x, valid):
        l = valid.size(1)
        mask = torch.ones(l, l, dtype=torch.bool).tril().logical_and(valid.unsqueeze(1).unsqueeze(1))
        mask = mask.logical_or(torch.eye(l, dtype=torch.bool))
        keep = valid.to(x.dtype).unsqueeze(-1)
        h = x * keep
        for blk in self.blocks:
            h = blk(h, mask) * keep
        return self.final_ln(h) * keep


class StarLinear(nn.Module):
    """STAR: y = x (W ⊙ W_s)^T + b + b_s, one matmul per scenario present."""

    def __init__(self, d_in, d_out, scenarios):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.empty(d_out, d_in)), nn.Parameter(torch.empty(d_out))
        self.scenario_weight = nn.Parameter(torch.ones(scenarios, d_out, d_in))
        self.scenario_bias = nn.Parameter(torch.zeros(scenarios, d_out))
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            self.bias.uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in))

    def forward(self, x, scenario):
        ordered, perm = scenario.sort()
        ids, counts = torch.unique_consecutive(ordered, return_counts=True)
        ids, counts = ids.tolist(), counts.tolist()

        def layer(rows, s):
            return F.linear(rows, self.weight * self.scenario_weight[s], self.bias + self.scenario_bias[s])

        if len(ids) == 1:
            return layer(x, ids[0])
        y = torch.cat([layer(rows, s) for rows, s in zip(x.index_select(0, perm).split(counts), ids)])
        return torch.zeros_like(y).index_copy(0, perm, y)


class ScenarioLayer(nn.Module):
    def __init__(self, d_in, d_task, tasks, scenarios):
        super().__init__()
        self.star_input = StarLinear(d_in, d_in, scenarios)
        self.star_tasks = nn.ModuleList(StarLinear(d_task, d_task, scenarios) for _ in range(tasks))

    def forward(self, x, scenario):
        return x + torch.relu(self.star_input(x, scenario))

    def task(self, t, h, scenario):
        return h + torch.relu(self.star_tasks[t](h, scenario))


class Mmoe(nn.Module):
    def __init__(self, d_in, tasks, experts, hidden, dropout):
        super().__init__()

        def mlp():
            layers, w = [], d_in
            for h in hidden:
                layers += [nn.Linear(w, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
                w = h
            return nn.Sequential(*layers)

        self.shared = nn.ModuleList(mlp() for _ in range(experts))
        self.task_gates = nn.ModuleList(nn.Linear(d_in, experts) for _ in range(tasks))

    def forward(self, x):
        stacked = torch.stack([e(x) for e in self.shared], 1)
        return [torch.bmm(torch.softmax(g(x), -1).unsqueeze(1), stacked).squeeze(1) for g in self.task_gates]


class BiasedMF(nn.Module):
    """The rating head's tables, [factors | bias] per side."""

    def __init__(self, users, items, d, mean):
        super().__init__()
        self.d = d
        self.user_table, self.item_table = nn.Embedding(users, d + 1), nn.Embedding(items, d + 1)
        with torch.no_grad():
            for t in (self.user_table, self.item_table):
                t.weight[:, :d].normal_(0, 0.05)
                t.weight[:, d].zero_()
        self.register_buffer("global_mean", torch.full((1,), mean))

    def terms(self, users, items):
        P, Q, d = self.user_table(users), self.item_table(items), self.d
        return (P[:, :d] * Q[:, :d]).sum(1), P[:, d], Q[:, d], P.pow(2).sum(1) + Q.pow(2).sum(1)


class CtrFactors(nn.Module):
    def __init__(self, users, items, d):
        super().__init__()
        self.user, self.item, self.bias = nn.Embedding(users, d), nn.Embedding(items, d), nn.Embedding(items, 1)
        with torch.no_grad():
            self.user.weight.normal_(0, 0.05)
            self.item.weight.normal_(0, 0.05)
            self.bias.weight.zero_()


class UnifiedModel(nn.Module):
    def __init__(self, a):
        super().__init__()
        U, I, S, d, td = a.users, a.items, a.scenarios, 64, a.text_dim
        self.d, self.p, self.id_dropout, self.max_history, self.temperature = d, a.dropout, a.id_dropout, 20, 0.1
        self.text = TextEncoder(a.vocab, td, a.text_layers, a.text_heads, a.text_max_len, self.p)

        def table(n, w, std):
            e = nn.Embedding(n, w)
            with torch.no_grad():
                e.weight.normal_(0, std)
            return e

        self.user_emb, self.item_emb = table(U, d, 0.05), table(I, d, 0.05)
        self.rating_mf = BiasedMF(U, I, d, a.global_mean)
        sd = max(4, d // 4)
        self.scenario_emb, self.position_emb = table(S, sd, 0.05), table(self.max_history, d, 0.05)
        self.item_text_proj, self.user_text_proj = nn.Linear(td, d), nn.Linear(td, d)
        with torch.no_grad():
            for p in (self.item_text_proj, self.user_text_proj):
                p.weight.normal_(0, 0.05 / math.sqrt(td))
                p.bias.zero_()
        self.sequence = CausalTransformer(d, 1, 1, self.p)
        in_dim = 3 * d + sd
        self.experts = Mmoe(in_dim, 2, 4, [128, 64], self.p)
        self.scenario_layer = ScenarioLayer(in_dim, 64, 2, S)
        self.rating_out, self.ctr_out = nn.Linear(64, 1), nn.Linear(64, 3)
        self.ctr_factors = CtrFactors(U, I, d)
        self.next_proj = nn.Linear(d, d)
        self.match_user = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.match_item = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.scenario_out = nn.Linear(td, S)
        self.mlm = MlmHead(td, a.vocab)
        ids, mask = text_table(I, 15 + (torch.arange(I) * 7) % 13, 1009, 31, a.vocab, a.text_max_len)
        self.register_buffer("item_tokens", ids)
        self.register_buffer("item_token_mask", mask)
        lens = torch.tensor(PROFILE_LEN)[torch.arange(U) % 16]
        ids, mask = text_table(U, lens, 733, 37, a.vocab, a.text_max_len)
        self.register_buffer("user_tokens", ids)
        self.register_buffer("user_token_mask", mask)
        self.register_buffer("user_has_text", mask.any(1))
        self.register_buffer("item_seen", torch.ones(I, dtype=torch.bool))
        self.register_buffer("user_seen", torch.ones(U, dtype=torch.bool))
        with torch.no_grad():  # the item cache as a refresh fills it (eval mode)
            self.text.eval()
            self.register_buffer("item_text_cache", self.encode_texts(self.item_tokens, self.item_token_mask))
            self.text.train()

    def encode_texts(self, tokens, mask):
        """Pooled vectors in length-sorted chunks of 128, each trimmed to its longest text."""

        def encode(t, m):
            L = max(1, int(m.sum(1).max()))
            mm = m[:, :L].clone()
            mm[:, 0] = True
            return self.text(t[:, :L], mm)

        n = tokens.size(0)
        if n <= CHUNK:
            return encode(tokens, mask)
        order = mask.sum(1).sort(stable=True)[1]
        parts = [encode(tokens.index_select(0, rows), mask.index_select(0, rows)) for rows in order.split(CHUNK)]
        back = torch.empty_like(order).index_copy_(0, order, torch.arange(n))
        return torch.cat(parts, 0).index_select(0, back)

    def item_vectors(self):
        return self.item_emb.weight * self.item_seen.unsqueeze(1).float() + self.item_text_proj(self.item_text_cache)

    def dropped(self, n):
        return torch.bernoulli(torch.full((n,), 1 - self.id_dropout)) if self.id_dropout > 0 else torch.ones(n)

    def user_vec(self, users, history, table):
        known, uid = users >= 0, users.clamp_min(0)
        keep = (known & self.user_seen.index_select(0, uid)).float() * self.dropped(users.size(0))
        u = self.user_emb(uid) * keep.unsqueeze(1)
        uniq, inv = torch.unique(uid, sorted=True, return_inverse=True)
        with torch.no_grad():  # the batch's profiles, encoded as a refresh would encode them
            self.text.eval()
            pv = self.encode_texts(self.user_tokens.index_select(0, uniq), self.user_token_mask.index_select(0, uniq))
            self.text.train()
        has = (known & self.user_has_text.index_select(0, uid)).float()
        u = u + self.user_text_proj(pv).index_select(0, inv) * has.unsqueeze(1)
        h = history[:, -self.max_history:]
        uh, hinv = torch.unique(h, dim=0, return_inverse=True)  # one state per distinct history
        B, L = uh.shape
        valid = uh > 0
        full = torch.cat([torch.zeros(1, table.size(1)), table], 0)
        x = full.index_select(0, uh.reshape(-1)).view(B, L, table.size(1))
        x = (x + self.position_emb(torch.arange(L - 1, -1, -1)).unsqueeze(0)) * valid.unsqueeze(2).float()
        x = F.dropout(x, self.p, True)
        return u + self.sequence(x, valid).select(1, L - 1).index_select(0, hinv)

    def forward(self, b):
        users, items, scen = b["user"], b["item"], b["scenario"]
        out = {}
        table = self.item_vectors()
        keep = self.item_seen.index_select(0, items).float() * self.dropped(items.size(0))
        ivec = self.item_emb(items) * keep.unsqueeze(1)
        uniq, inv = torch.unique(items, sorted=True, return_inverse=True)
        fresh = self.encode_texts(self.item_tokens.index_select(0, uniq), self.item_token_mask.index_select(0, uniq))
        ivec = ivec + self.item_text_proj(fresh).index_select(0, inv)
        uvec = self.user_vec(users, b["history"], table)
        # Rating and CTR: STAR on the input, MMoE, STAR on each task's output, the heads' CF parts.
        x = torch.cat([uvec, ivec, uvec * ivec, self.scenario_emb(scen)], 1)
        x = self.scenario_layer(x, scen)
        h = [self.scenario_layer.task(t, e, scen) for t, e in enumerate(self.experts(x))]
        user_keep = self.user_seen.index_select(0, users).float() * self.dropped(users.size(0))
        bias_keep = torch.ones_like(keep)
        dot, ub, ib, l2 = self.rating_mf.terms(users, items)
        rating = self.rating_out(h[0]).squeeze(1) + self.rating_mf.global_mean + ub * bias_keep + ib
        out["rating"], out["rating_l2"] = rating + dot * user_keep * keep, l2
        f = self.ctr_factors
        cdot, cb = (f.user(users) * f.item(items)).sum(-1), f.bias(items).squeeze(-1)
        out["ctr_logit"] = self.ctr_out(h[1]) + (cdot * user_keep * keep + cb * keep).unsqueeze(1)
        idx = b["mask/next_item"].nonzero().squeeze(1)
        out["next_item/hidden"] = self.next_proj(uvec.index_select(0, idx))
        out["next_item/target"] = items.index_select(0, idx)
        out["next_item/table"] = table
        idx = b["mask/match"].nonzero().squeeze(1)
        mi, minv = torch.unique(items.index_select(0, idx), sorted=True, return_inverse=True)
        qu = F.normalize(self.match_user(uvec.index_select(0, idx)), dim=1)
        qi = F.normalize(self.match_item(table.index_select(0, mi)), dim=1)
        out["match/logits"], out["match/target"] = torch.matmul(qu, qi.t()) / self.temperature, minv
        idx = b["mask/scenario"].nonzero().squeeze(1)
        ids, m = b["context_ids"].index_select(0, idx), b["context_mask"].index_select(0, idx)
        uc, cinv = torch.unique(ids.masked_fill(m.logical_not(), PAD), dim=0, return_inverse=True)
        out["scenario/logits"] = self.scenario_out(self.encode_texts(uc, uc.ne(PAD))).index_select(0, cinv)
        out["scenario/target"] = scen.index_select(0, idx)
        hidden = self.text.encode(b["mlm/input_ids"], b["mlm/attention_mask"])
        sel = b["mlm/selected"]
        out["mlm/logits"] = self.mlm(hidden[sel], self.text.token_embedding.weight)
        out["mlm/targets"] = b["mlm/labels"][sel]
        return out


def masked_mean(v, mask):
    m = mask.to(v.dtype)
    return (v * m).sum() / m.sum().clamp_min(1)


def joint_losses(out, b, rating_l2=0.05):
    """rating, ctr, next_item, match, scenario, mlm (model/joint_tasks.cpp)."""
    mr = b["mask/rating"]
    rating = masked_mean((out["rating"] - b["rating"]).pow(2), mr) + rating_l2 * masked_mean(out["rating_l2"], mr)
    bce = F.binary_cross_entropy_with_logits(out["ctr_logit"], b["click"], reduction="none")
    ctr = masked_mean(bce.mean(1), b["mask/ctr"])
    nxt = F.cross_entropy(torch.matmul(out["next_item/hidden"], out["next_item/table"].t()), out["next_item/target"])
    match = F.cross_entropy(out["match/logits"], out["match/target"])
    scen = F.cross_entropy(out["scenario/logits"], out["scenario/target"])
    logits, targets = out["mlm/logits"], out["mlm/targets"]
    mlm = F.cross_entropy(logits, targets)
    logits.argmax(-1).eq(targets).to(torch.float64).mean().item()  # mlm_result's accuracy
    return [rating, ctr, nxt, match, scen, mlm]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--users", type=int, default=53424)
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--scenarios", type=int, default=3)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=595)
    ap.add_argument("--text-dim", type=int, default=64)
    ap.add_argument("--text-layers", type=int, default=2)
    ap.add_argument("--text-heads", type=int, default=2)
    ap.add_argument("--text-max-len", type=int, default=32)
    ap.add_argument("--mlm-texts", type=int, default=32)
    ap.add_argument("--global-mean", type=float, default=3.6)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--id-dropout", type=float, default=0.1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = UnifiedModel(a)
    model.train()
    batch = joint_batch(a)
    # The trainer's groups: everything at the lr, the text encoder ("text.") at 0.03x.
    text = [p for n, p in model.named_parameters() if n.startswith("text.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("text.")]
    lr = 2e-3
    opt = torch.optim.AdamW([{"params": rest}, {"params": text, "lr": lr * 0.03}], lr=lr, weight_decay=0.01)
    params = list(model.parameters())
    weights = [1.0, 1.0, 1.0, 1.0, 1.0, 0.1]
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)  # as the trainer's zero_grad
        losses = joint_losses(model(batch), batch)
        total = None
        for l, w in zip(losses, weights):
            term = l if w == 1.0 else l * w
            total = term if total is None else total + term
        torch.stack([l.detach() for l in losses] + [total.detach()]).to(torch.float64).tolist()
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        t1 = time.perf_counter()
        if s >= a.warmup:
            times.append((t1 - t0) * 1e3)
    print(json.dumps({"model": "joint", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "parameters": sum(p.numel() for p in params), "ms": times}))


if __name__ == "__main__":
    main()
