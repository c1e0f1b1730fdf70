#!/usr/bin/python3
# Records the GPT-2 reference fixtures for test/models/gpt2-fixture.test.ts: a small random-weight
# GPT-2 in plain torch (HF GPT-2 names and Conv1D (in, out) layout), its logits, loss and every
# parameter gradient for one batch, and the losses of the first 10 AdamW steps.
#
# Usage: /usr/bin/python3 scripts/make-fixtures.py   (Debian: apt-get install -y python3-torch)
# Writes test/fixtures/gpt2-tiny/{config.json, model.safetensors, fixture.safetensors}. Tests never
# run this; the outputs are committed. The math runs in float64 from float32 weights, so the recorded
# values are the exact answer for the stored weights, and tensorloom's float32 is compared to them.
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'gpt2-tiny')
CONFIG = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=64, n_positions=16, n_ctx=16,
              layer_norm_epsilon=1e-5, activation_function='gelu_new', model_type='gpt2',
              architectures=['GPT2LMHeadModel'])
B, T = 2, 8
# AdamW as the test runs it: decay on 2-D tensors (weights, embeddings) only, none on biases/LayerNorm.
ADAMW = dict(lr=1e-2, betas=[0.9, 0.95], eps=1e-8, weight_decay=0.1, steps=10, decay='2d')


def make_params(gen):
    """HF GPT-2 tensors (float32), random: weights N(0, 0.1), LayerNorm 1 + N(0, 0.1), biases N(0, 0.05)."""
    C, V, P = CONFIG['n_embd'], CONFIG['vocab_size'], CONFIG['n_positions']
    rn = lambda *s, std: (torch.randn(*s, generator=gen) * std).float()
    p = {'transformer.wte.weight': rn(V, C, std=0.1), 'transformer.wpe.weight': rn(P, C, std=0.1)}
    for i in range(CONFIG['n_layer']):
        h = f'transformer.h.{i}.'
        for ln in ('ln_1', 'ln_2'):
            p[h + ln + '.weight'] = 1 + rn(C, std=0.1)
            p[h + ln + '.bias'] = rn(C, std=0.05)
        for name, (fan_in, fan_out) in {'attn.c_attn': (C, 3 * C), 'attn.c_proj': (C, C),
                                        'mlp.c_fc': (C, 4 * C), 'mlp.c_proj': (4 * C, C)}.items():
            p[h + name + '.weight'] = rn(fan_in, fan_out, std=0.1)  # Conv1D: (in, out)
            p[h + name + '.bias'] = rn(fan_out, std=0.05)
    p['transformer.ln_f.weight'] = 1 + rn(C, std=0.1)
    p['transformer.ln_f.bias'] = rn(C, std=0.05)
    return p


def forward(p, idx):
    """GPT-2 forward (nanoGPT order) on HF-named tensors -> logits (B, T, V)."""
    nh, C, eps = CONFIG['n_head'], CONFIG['n_embd'], CONFIG['layer_norm_epsilon']
    Bq, Tq = idx.shape
    ln = lambda x, n: F.layer_norm(x, (C,), p[n + '.weight'], p[n + '.bias'], eps)
    conv1d = lambda x, n: x @ p[n + '.weight'] + p[n + '.bias']
    x = p['transformer.wte.weight'][idx] + p['transformer.wpe.weight'][torch.arange(Tq)]  # (B, T, C)
    mask = torch.tril(torch.ones(Tq, Tq, dtype=torch.bool))
    for i in range(CONFIG['n_layer']):
        h = f'transformer.h.{i}.'
        q, k, v = conv1d(ln(x, h + 'ln_1'), h + 'attn.c_attn').split(C, dim=2)
        q, k, v = (t.view(Bq, Tq, nh, C // nh).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // nh)  # (B, nh, T, T)
        att = att.masked_fill(~mask, float('-inf')).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(Bq, Tq, C)  # (B, T, C)
        x = x + conv1d(y, h + 'attn.c_proj')
        m = F.gelu(conv1d(ln(x, h + 'ln_2'), h + 'mlp.c_fc'), approximate='tanh')
        x = x + conv1d(m, h + 'mlp.c_proj')
    x = ln(x, 'transformer.ln_f')
    return x @ p['transformer.wte.weight'].t()  # tied lm_head


def loss_of(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


DTYPES = {torch.float32: 'F32', torch.int32: 'I32'}


def save_safetensors(path, tensors, metadata=None):
    """A plain safetensors writer (no dependency): sorted names, 8-byte padded header."""
    header, blobs, off = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        b = t.numpy().tobytes()
        header[name] = dict(dtype=DTYPES[t.dtype], shape=list(t.shape), data_offsets=[off, off + len(b)])
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    params32 = make_params(gen)
    V = CONFIG['vocab_size']
    idx = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)

    p = {k: v.double().requires_grad_() for k, v in params32.items()}
    logits = forward(p, idx)
    loss = loss_of(logits, targets)
    loss.backward()
    fixture = {'idx': idx.int(), 'targets': targets.int(), 'logits': logits.detach().float(),
               'loss': loss.detach().float().reshape(1)}
    for k, v in p.items():
        fixture['grad.' + k] = v.grad.float()

    # AdamW: losses[i] is the loss before step i+1
    q = {k: v.double().requires_grad_() for k, v in params32.items()}
    decay = [v for v in q.values() if v.dim() == 2]
    no_decay = [v for v in q.values() if v.dim() != 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': ADAMW['weight_decay']},
                             {'params': no_decay, 'weight_decay': 0.0}],
                            lr=ADAMW['lr'], betas=tuple(ADAMW['betas']), eps=ADAMW['eps'])
    losses = []
    for _ in range(ADAMW['steps']):
        opt.zero_grad()
        l = loss_of(forward(q, idx), targets)
        losses.append(l.item())
        l.backward()
        opt.step()
    fixture['adamw_losses'] = torch.tensor(losses, dtype=torch.float32)

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'config.json'), 'w') as f:
        json.dump(CONFIG, f, indent=2, sort_keys=True)
        f.write('\n')
    save_safetensors(os.path.join(OUT, 'model.safetensors'), params32, {'format': 'pt'})
    meta = {'adamw': json.dumps(ADAMW), 'torch': torch.__version__, 'compute': 'float64'}
    save_safetensors(os.path.join(OUT, 'fixture.safetensors'), fixture, meta)
    print('loss', loss.item(), 'adamw', [round(x, 5) for x in losses])


if __name__ == '__main__':
    main()
