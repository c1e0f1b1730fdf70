#!/usr/bin/python3
"""PyTorch anchor for `loom bench`: the same matmul shapes, GPT train-step configs and conv2d cases, timed the same way
(warmup runs, then timed runs; median/min/max), written in the same JSON schema, so that tensorloom's
figures can be read as ratios to PyTorch measured on the same machine at the same time.

Needs Debian's python3-torch with OpenBLAS (without libopenblas0-pthread Debian's torch uses the reference
BLAS and is ~100x slower, which is no anchor):  apt-get install python3-torch libopenblas0-pthread
Usage: /usr/bin/python3 bench/torch_bench.py <matmul|train-step|conv2d|all> [--threads 2] [--json FILE] [--quick]
"""
import argparse
import json
import math
import os
import platform
import re
import sys
import time

# Thread counts must be set before torch (and OpenBLAS) start their pools.
_threads = "2"
for i, a in enumerate(sys.argv):
    if a == "--threads" and i + 1 < len(sys.argv):
        _threads = sys.argv[i + 1]
    elif a.startswith("--threads="):
        _threads = a.split("=", 1)[1]
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, _threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The same cases as src/cli/benchsuites.ts and src/cli/benchtrain.ts.
MATMUL_SHAPES = [
    (256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
    (512, 2304, 768), (512, 768, 768), (512, 3072, 768), (512, 768, 3072), (512, 50257, 768),
]
MATMUL_QUICK = [(64, 64, 64), (96, 80, 72)]
# src/cli/benchconv.ts: the ResNet-50 stem convolution (name, input NCHW, weight OIHW, stride, padding).
CONV_CASES = [
    ("resnet50-stem-b1", (1, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    ("resnet50-stem-b8", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3),
]
CONV_QUICK = [("stem-like-b1-32px", (1, 3, 32, 32), (8, 3, 7, 7), 2, 3)]
TRAIN_CONFIGS = {
    "small": dict(vocab=50257, block=128, layers=4, heads=4, width=256, batch=8, seq=128),
    "gpt2-124m": dict(vocab=50257, block=1024, layers=12, heads=12, width=768, batch=4, seq=64),
    "tiny": dict(vocab=256, block=16, layers=1, heads=2, width=32, batch=2, seq=16),
}


def timed(run, warmup, reps):
    """Warmup runs, then `reps` samples; fast cases repeat `inner` times per sample (~2 ms)."""
    for _ in range(warmup):
        run()
    t0 = time.perf_counter()
    run()
    once = (time.perf_counter() - t0) * 1000
    inner = 1 if once >= 2 else min(10000, math.ceil(2 / max(once, 1e-3)))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            run()
        samples.append((time.perf_counter() - t0) * 1000 / inner)
    samples.sort()
    mid = len(samples) // 2
    median = samples[mid] if len(samples) % 2 else (samples[mid - 1] + samples[mid]) / 2
    return median, samples[0], samples[-1]


def rnd(x, digits=4):
    return float(f"{x:.{digits}g}")


def result(suite, name, shape, t, **extra):
    r = dict(suite=suite, name=name, shape=list(shape), dtype="float32",
             median_ms=rnd(t[0], 5), min_ms=rnd(t[1], 5), max_ms=rnd(t[2], 5))
    r.update(extra)
    return r


def bench_matmul(args):
    out = []
    for m, n, k in (MATMUL_QUICK if args.quick else MATMUL_SHAPES):
        a = torch.randn(m, k)
        b = torch.randn(k, n)
        flops = 2 * m * n * k
        big = flops > 2e10
        t = timed(lambda: torch.matmul(a, b), args.warmup if args.warmup is not None else (1 if big else 2),
                  args.reps if args.reps is not None else (3 if big else 10))
        r = result("matmul", f"{m}x{n}x{k}", (m, n, k), t, gflops=rnd(flops / t[0] / 1e6))
        print(f"  matmul {r['name']}: {r['median_ms']} ms, {r['gflops']} GFLOP/s", flush=True)
        out.append(r)
    return out


class Block(nn.Module):
    """nanoGPT's block: pre-LayerNorm causal self-attention and a tanh-GELU MLP, as in models/gpt.ts."""

    def __init__(self, c):
        super().__init__()
        w = c["width"]
        self.heads = c["heads"]
        self.ln_1 = nn.LayerNorm(w)
        self.c_attn = nn.Linear(w, 3 * w)
        self.c_proj = nn.Linear(w, w)
        self.ln_2 = nn.LayerNorm(w)
        self.c_fc = nn.Linear(w, 4 * w)
        self.mlp_proj = nn.Linear(4 * w, w)
        self.register_buffer("mask", torch.tril(torch.ones(c["block"], c["block"])).view(1, 1, c["block"], c["block"]))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        hs = C // self.heads
        q = q.view(B, T, self.heads, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.heads, hs).transpose(1, 2)
        v = v.view(B, T, self.heads, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, T)
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab"], c["width"])
        self.wpe = nn.Embedding(c["block"], c["width"])
        self.h = nn.ModuleList([Block(c) for _ in range(c["layers"])])
        self.ln_f = nn.LayerNorm(c["width"])
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                std = 0.02 / math.sqrt(2 * c["layers"]) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def loss(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied head, (B, T, V)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def bench_train_step(args):
    out = []
    for name in (["tiny"] if args.quick else ["small", "gpt2-124m"]):
        c = TRAIN_CONFIGS[name]
        torch.manual_seed(1337)
        model = GPT(c)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
        n = c["batch"] * c["seq"]
        x = (torch.arange(1, n + 1, dtype=torch.int64) * 2654435761 % c["vocab"]).view(c["batch"], c["seq"])
        y = (torch.arange(1, n + 1, dtype=torch.int64) * 2654435762 % c["vocab"]).view(c["batch"], c["seq"])

        def step():
            loss = model.loss(x, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            v = loss.item()
            if not math.isfinite(v):
                raise RuntimeError(f"train-step {name}: loss is {v}")

        t = timed(step, args.warmup if args.warmup is not None else 1, args.reps if args.reps is not None else 3)
        r = result("train-step", name, (c["batch"], c["seq"], c["layers"], c["width"]), t,
                   tokens_per_s=rnd(n / t[0] * 1000))
        print(f"  train-step {name}: {r['median_ms']} ms/step, {r['tokens_per_s']} tokens/s", flush=True)
        out.append(r)
    return out


def bench_conv2d(args):
    """F.conv2d of the stem: forward, and forward + backward for input and weight (FLOPs 3x forward)."""
    out = []
    for name, xs, ws, stride, pad in (CONV_QUICK if args.quick else CONV_CASES):
        n, cin, h, w = xs
        cout, _, kh, kw = ws
        oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        flops = 2 * n * cout * oh * ow * cin * kh * kw
        for backward in (False, True):
            x = torch.randn(*xs, requires_grad=backward)
            wt = (torch.randn(*ws) * 0.1).requires_grad_(backward)
            gy = torch.randn(n, cout, oh, ow)

            def run():
                y = F.conv2d(x, wt, None, stride, pad)
                if backward:
                    y.backward(gy)
                    x.grad = wt.grad = None

            reps = args.reps if args.reps is not None else (5 if n > 1 else 10)
            t = timed(run, args.warmup if args.warmup is not None else 2, reps)
            f = flops * (3 if backward else 1)
            r = result("conv2d", f"{name} {'fwd+bwd' if backward else 'fwd'}", (*xs, cout, kh, kw), t,
                       gflops=rnd(f / t[0] / 1e6))
            print(f"  conv2d {r['name']}: {r['median_ms']} ms, {r['gflops']} GFLOP/s", flush=True)
            out.append(r)
    return out


def machine():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1) if m else cpu
    except OSError:
        pass
    cap = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    return dict(cpu=cpu, cores=os.cpu_count(), simd=[cap.group(1).lower()] if cap else [])


def blas():
    """The BLAS torch's generic build loads (Debian: the libblas.so.3 alternative)."""
    try:
        with open("/proc/self/maps") as f:
            libs = set(re.findall(r"(\S*(?:openblas|blis|mkl|libblas)\S*\.so[.\d]*)", f.read()))
        return sorted(os.path.basename(os.path.realpath(p)) + " (" + os.path.realpath(p) + ")" for p in libs)
    except OSError:
        return []


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("suite", choices=["matmul", "train-step", "conv2d", "all"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    p.add_argument("--reps", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(True)
    with open(os.path.join(ROOT, "package.json")) as f:
        version = json.load(f)["version"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(default)')}", flush=True)
    results = []
    if args.suite in ("matmul", "all"):
        with torch.no_grad():
            results += bench_matmul(args)
    if args.suite in ("train-step", "all"):
        results += bench_train_step(args)
    if args.suite in ("conv2d", "all"):
        results += bench_conv2d(args)
    report = dict(
        tensorloom=version,
        machine=machine(),
        device="cpu",
        adapter=dict(framework="pytorch", version=torch.__version__, threads=torch.get_num_threads(),
                     omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), blas=blas()),
        results=results,
    )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
