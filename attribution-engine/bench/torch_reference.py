#!/usr/bin/env python3
"""PyTorch CPU reference for the attribution engine's two hot paths.

It rebuilds the Rust model of `src/model.rs` op for op (byte vocabulary of 257 tokens, token and
learned position embeddings, pre-LN blocks with one fused qkv Linear, causal softmax attention
scaled by 1/sqrt(d_head), exact-erf GELU MLP, final LayerNorm, Linear head with bias; LayerNorm
eps 1e-5) and times, on random byte windows of `context + 1` tokens:

* training: forward + backward + gradient clipping + Adam step on the batch-mean of per-example
  mean token NLL (as `src/training.rs`);
* indexing: batched, LoGra-projected per-example gradients of chosen linear layers (as
  `src/projection.rs`): one backward of the sum over examples of per-example mean NLL gives
  every layer's output gradient g [B,T,d_out]; with its input x [B,T,d_in] the projected
  per-example gradient is (g P_out)^T (x P_in) summed over positions, [B, k_out*k_in] per
  layer, copied into a NumPy array.

Prints one line of JSON on stdout. `--check` instead verifies on a tiny model that the batched
projection equals the projection of each example's own weight gradient (batch-of-one backward).
"""

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 257  # bytes + BOS (src/tokenizer.rs)
BOS = 256


class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, sdpa):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, eps=1e-5)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.attn_out = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model, eps=1e-5)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.n_heads = n_heads
        self.sdpa = sdpa

    def forward(self, x, index, tap):
        batch, seq, d_model = x.shape
        heads = self.n_heads
        d_head = d_model // heads
        name = "blocks.%d." % index

        qkv = tap(name + "qkv", self.qkv, self.ln1(x))
        q, k, v = (
            t.reshape(batch, seq, heads, d_head).transpose(1, 2)
            for t in qkv.split(d_model, dim=2)
        )
        if self.sdpa:
            mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = q @ k.transpose(2, 3) / math.sqrt(d_head)
            mask = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(1)
            attention = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=3)
            mixed = attention @ v
        mixed = mixed.transpose(1, 2).reshape(batch, seq, d_model)
        x = x + tap(name + "attn_out", self.attn_out, mixed)

        h = tap(name + "fc1", self.fc1, self.ln2(x))
        h = F.gelu(h)  # exact (erf)
        return x + tap(name + "fc2", self.fc2, h)


def plain(_name, linear, x):
    return linear(x)


class Lm(nn.Module):
    def __init__(self, d_model, n_layers, n_heads, d_ff, context, sdpa=False):
        super().__init__()
        assert d_model % n_heads == 0, "n_heads must divide d_model"
        self.token_embedding = nn.Embedding(VOCAB, d_model)
        self.position_embedding = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, sdpa) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model, eps=1e-5)
        self.head = nn.Linear(d_model, VOCAB)

    def forward(self, tokens, tap=plain):
        seq = tokens.shape[1]
        positions = torch.arange(seq, device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)[None]
        for index, block in enumerate(self.blocks):
            x = block(x, index, tap)
        return tap("head", self.head, self.ln_f(x))

    def linear(self, name):
        return self.get_submodule(name)


def layer_names(n_layers, which):
    if which == "mlp":
        return ["blocks.%d.%s" % (b, k) for b in range(n_layers) for k in ("fc1", "fc2")]
    if which == "all":
        kinds = ("qkv", "attn_out", "fc1", "fc2")
        return ["blocks.%d.%s" % (b, k) for b in range(n_layers) for k in kinds] + ["head"]
    return [n.strip() for n in which.split(",") if n.strip()]


def per_example_nll(logits, targets):
    """Mean token NLL of each example, [batch] (every window is full: weights 1/seq)."""
    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    )
    return nll.reshape(targets.shape).mean(dim=1)


def rademacher(generator, rows, cols):
    signs = torch.randint(0, 2, (rows, cols), generator=generator, dtype=torch.int8)
    return (signs.float() * 2 - 1) / math.sqrt(cols)


class Projector:
    def __init__(self, model, names, k_in, k_out, seed):
        generator = torch.Generator().manual_seed(seed)
        self.names = names
        self.specs = []
        self.matrices = []
        for name in names:
            linear = model.linear(name)
            d_in, d_out = linear.in_features, linear.out_features
            ki, ko = min(k_in, d_in), min(k_out, d_out)
            self.specs.append((name, d_in, d_out, ki, ko))
            self.matrices.append(
                (rademacher(generator, d_in, ki), rademacher(generator, d_out, ko))
            )
        self.dim = sum(ki * ko for (_, _, _, ki, ko) in self.specs)

    def project(self, model, inputs, targets, param_grads=False):
        """Projected per-example gradients [batch, dim] (a tensor) and per-example losses."""
        inputs_of, outputs_of = {}, {}
        chosen = set(self.names)

        def tap(name, linear, x):
            y = linear(x)
            if name in chosen:
                inputs_of[name] = x.detach()
                outputs_of[name] = y
            return y

        per_example = per_example_nll(model(inputs, tap), targets)
        # Summed, not averaged: each example's gradient is independent of its batch.
        loss = per_example.sum()
        outputs = [outputs_of[n] for n in self.names]
        if param_grads:
            # Also compute every weight gradient, as a backward over a model whose parameters
            # all require grad does.
            params = [p for p in model.parameters() if p.requires_grad]
            grads = torch.autograd.grad(loss, outputs + params)[: len(outputs)]
        else:
            grads = torch.autograd.grad(loss, outputs)
        n, seq = inputs.shape
        parts = []
        with torch.no_grad():
            for (name, d_in, d_out, ki, ko), (p_in, p_out), g in zip(
                self.specs, self.matrices, grads
            ):
                x = (inputs_of[name].reshape(n * seq, d_in) @ p_in).reshape(n, seq, ki)
                g = (g.reshape(n * seq, d_out) @ p_out).reshape(n, seq, ko)
                parts.append(torch.bmm(g.transpose(1, 2), x).reshape(n, ko * ki))
            projected = torch.cat(parts, dim=1)
        return projected, per_example.detach()

    def project_weight_gradient(self, i, weight_grad):
        """Projects an explicit weight gradient ([d_out, d_in], PyTorch's layout) of layer i."""
        p_in, p_out = self.matrices[i]
        return (p_out.T @ weight_grad @ p_in).reshape(-1)


def random_windows(generator, n, context):
    """n windows of context+1 random tokens, inputs/targets [n, context]."""
    tokens = torch.randint(0, VOCAB, (n, context + 1), generator=generator)
    tokens[:, 0] = BOS
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def check(args):
    """Batched projected gradient == projection of each example's own gradient."""
    worst = 0.0
    for sdpa in (False, True):
        torch.manual_seed(7)
        model = Lm(d_model=16, n_layers=2, n_heads=2, d_ff=32, context=12, sdpa=sdpa)
        names = layer_names(2, "all")
        projector = Projector(model, names, k_in=8, k_out=6, seed=99)
        generator = torch.Generator().manual_seed(3)
        inputs, targets = random_windows(generator, 3, 12)
        batched, losses = projector.project(model, inputs, targets)
        batched_all, _ = projector.project(model, inputs, targets, param_grads=True)
        assert torch.equal(batched, batched_all) or torch.allclose(batched, batched_all)
        for e in range(inputs.shape[0]):
            model.zero_grad(set_to_none=True)
            loss = per_example_nll(model(inputs[e : e + 1]), targets[e : e + 1]).sum()
            assert abs(loss.item() - losses[e].item()) < 1e-5
            loss.backward()
            explicit = torch.cat(
                [
                    projector.project_weight_gradient(i, model.linear(n).weight.grad)
                    for i, n in enumerate(names)
                ]
            )
            diff = (batched[e] - explicit).norm().item()
            norm = explicit.norm().item()
            if norm == 0.0:
                print("check: example %d has a zero gradient" % e, file=sys.stderr)
                return 1
            rel = diff / norm
            worst = max(worst, rel)
            print(
                "check: attention=%s example %d: relative error %.3e"
                % ("sdpa" if sdpa else "explicit", e, rel),
                file=sys.stderr,
            )
    ok = worst < 1e-4
    print(json.dumps({"check": "ok" if ok else "failed", "max_relative_error": worst}))
    return 0 if ok else 1


def benchmark(args):
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed + 1)
    model = Lm(args.d_model, args.n_layers, args.n_heads, args.d_ff, args.context, args.sdpa)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-5)
    batch, context = args.batch, args.context

    warmup = args.warmup
    data = [random_windows(generator, batch, context) for _ in range(warmup + args.train_steps)]

    def train_step(inputs, targets):
        loss = per_example_nll(model(inputs), targets).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad_norm)
        optimizer.step()
        return loss

    for inputs, targets in data[:warmup]:
        train_step(inputs, targets)
    started = time.perf_counter()
    for inputs, targets in data[warmup:]:
        loss = train_step(inputs, targets)
    loss = loss.item()
    train_seconds = time.perf_counter() - started
    train_tokens_per_s = batch * context * args.train_steps / train_seconds

    names = layer_names(args.n_layers, args.layers)
    projector = Projector(model, names, args.k_in, args.k_out, args.seed + 2)
    index_batch = args.index_batch or batch
    inputs, targets = random_windows(generator, args.index_examples, context)
    warm_inputs, warm_targets = random_windows(generator, index_batch, context)
    for _ in range(max(1, warmup // 2)):
        projector.project(model, warm_inputs, warm_targets, args.index_param_grads)
    out = np.empty((args.index_examples, projector.dim), dtype=np.float32)
    losses = np.empty(args.index_examples, dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, args.index_examples, index_batch):
        stop = min(start + index_batch, args.index_examples)
        projected, per_example = projector.project(
            model, inputs[start:stop], targets[start:stop], args.index_param_grads
        )
        out[start:stop] = projected.numpy()
        losses[start:stop] = per_example.numpy()
    index_seconds = time.perf_counter() - started
    if not np.isfinite(out).all():
        print("non-finite projected gradients", file=sys.stderr)
        return 1

    result = {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_tokens_per_s": round(train_tokens_per_s, 1),
        "index_examples_per_s": round(args.index_examples / index_seconds, 2),
        "index_tokens_per_s": round(args.index_examples * context / index_seconds, 1),
        "train_seconds": round(train_seconds, 4),
        "index_seconds": round(index_seconds, 4),
        "final_train_loss": round(loss, 4),
        "config": {
            "vocab_size": VOCAB,
            "d_model": args.d_model,
            "n_layers": args.n_layers,
            "n_heads": args.n_heads,
            "d_ff": args.d_ff,
            "context": context,
            "batch": batch,
            "train_steps": args.train_steps,
            "warmup": warmup,
            "lr": args.lr,
            "clip_grad_norm": args.clip_grad_norm,
            "index_examples": args.index_examples,
            "index_batch": index_batch,
            "k_in": args.k_in,
            "k_out": args.k_out,
            "layers": args.layers,
            "layer_names": names,
            "projected_dim": projector.dim,
            "attention": "sdpa" if args.sdpa else "explicit",
            "index_param_grads": args.index_param_grads,
            "seed": args.seed,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
    }
    print(json.dumps(result))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=256)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--train-steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--clip-grad-norm", type=float, default=1.0,
        help="gradient-norm clipping, as src/training.rs (0 disables)",
    )
    p.add_argument("--index-examples", type=int, default=2048)
    p.add_argument("--index-batch", type=int, default=0, help="default: --batch")
    p.add_argument("--k-in", type=int, default=32)
    p.add_argument("--k-out", type=int, default=32)
    p.add_argument(
        "--layers", default="mlp",
        help="mlp (every block's fc1, fc2), all (every linear incl. head), or names "
        "such as blocks.0.fc1,head",
    )
    p.add_argument(
        "--sdpa", action="store_true",
        help="fused F.scaled_dot_product_attention instead of explicit matmul/mask/softmax",
    )
    p.add_argument(
        "--index-param-grads", action="store_true",
        help="indexing also computes every parameter gradient (as a full backward does)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--check", action="store_true", help="verify the projection and exit")
    args = p.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
    if args.check:
        return check(args)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
