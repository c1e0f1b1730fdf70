#!/usr/bin/python3
# Records the CNN reference fixtures for test/models/cnn-fixture.test.ts from PyTorch: conv2d forward
# and gradients (input, weight, bias) over stride/padding/dilation/groups/depthwise cases, max/avg/
# adaptive pooling forward and input gradients, batch_norm in training (output, gradients, updated
# running stats) and eval, the ResNet-50 stem at batch 1 (3x224x224) and a tiny two-stage ResNet with
# torchvision's parameter names; and conv_transpose2d forward and gradients for
# test/ops/conv-transpose.test.ts. Every loss is sum(y * r) with a fixed random r (cross-entropy for the
# ResNet), so the recorded gradients are dL/dinput = the vector-Jacobian product with r.
#
# Usage: /usr/bin/python3 scripts/make-cnn-fixtures.py   (Debian: apt-get install -y python3-torch)
# Writes test/fixtures/cnn/{ops,stem,resnet,resnet-model,convtranspose}.safetensors. Tests never run
# this; the outputs are committed. The math runs in float64 from float32 inputs and is stored as float32. The stem's input
# and r are too big to store (of y only the first 8 channels are kept): they come from an integer hash
# (hash_unit) that the test recomputes bit for bit.
import importlib.util
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'cnn')

# the safetensors writer of make-fixtures.py (the file name has a dash, so load it by path)
_spec = importlib.util.spec_from_file_location('make_fixtures', os.path.join(HERE, 'make-fixtures.py'))
_mf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mf)
save_safetensors = _mf.save_safetensors

# conv2d cases: input shape, weight shape, bias?, options (torch's keyword names)
CONV_CASES = {
    'basic': ((2, 3, 7, 6), (4, 3, 3, 3), True, dict(stride=1, padding=1, dilation=1, groups=1)),
    'stride_pad': ((2, 4, 9, 8), (6, 4, 3, 2), True, dict(stride=(2, 1), padding=(1, 0), dilation=1, groups=1)),
    'dilation': ((1, 3, 10, 9), (5, 3, 3, 3), True, dict(stride=1, padding=(2, 1), dilation=(2, 1), groups=1)),
    'groups': ((2, 6, 7, 7), (4, 3, 3, 3), False, dict(stride=2, padding=1, dilation=1, groups=2)),
    'depthwise': ((2, 5, 8, 8), (5, 1, 3, 3), True, dict(stride=1, padding=1, dilation=1, groups=5)),
    'pointwise': ((2, 8, 5, 5), (6, 8, 1, 1), True, dict(stride=2, padding=0, dilation=1, groups=1)),
    'big_kernel': ((1, 2, 11, 10), (3, 2, 5, 4), True, dict(stride=(3, 2), padding=(2, 3), dilation=1, groups=1)),
}

# pooling cases: op, input shape, options (tensorloom's camelCase names, mapped to torch's below)
POOL_CASES = {
    'max_k3s2p1': ('max', (2, 3, 9, 8), dict(kernelSize=3, stride=2, padding=1)),
    'max_ceil': ('max', (1, 2, 7, 7), dict(kernelSize=2, stride=2, ceilMode=True)),
    'max_dilated': ('max', (1, 2, 9, 9), dict(kernelSize=3, stride=1, padding=1, dilation=2)),
    'max_rect': ('max', (2, 2, 8, 7), dict(kernelSize=[3, 2], stride=[2, 1])),
    'avg_k3s2p1': ('avg', (2, 3, 9, 8), dict(kernelSize=3, stride=2, padding=1)),
    'avg_exclude_pad': ('avg', (2, 3, 9, 8), dict(kernelSize=3, stride=2, padding=1, countIncludePad=False)),
    'avg_ceil': ('avg', (1, 2, 7, 7), dict(kernelSize=2, stride=2, ceilMode=True)),
    'adaptive_3x4': ('adaptive', (2, 3, 7, 9), dict(outputSize=[3, 4])),
    'adaptive_1': ('adaptive', (2, 4, 5, 6), dict(outputSize=1)),
    'adaptive_up': ('adaptive', (1, 2, 3, 2), dict(outputSize=[5, 3])),
}

# conv_transpose2d cases: input shape, weight shape (Cin, Cout/groups, KH, KW), bias?, options (torch's
# names). Own generator and file (convtranspose.safetensors), so the other fixtures stay byte-identical.
CONVT_SEED = 2025
CONVT_CASES = {
    'basic': ((2, 3, 5, 4), (3, 4, 3, 3), True, dict(stride=1, padding=1, output_padding=0, dilation=1, groups=1)),
    'stride2_outpad': ((2, 4, 4, 5), (4, 3, 3, 3), True,
                       dict(stride=2, padding=1, output_padding=1, dilation=1, groups=1)),
    'rect_stride': ((1, 3, 5, 4), (3, 5, 3, 2), False,
                    dict(stride=(3, 2), padding=(1, 0), output_padding=(2, 1), dilation=1, groups=1)),
    'groups': ((2, 6, 4, 4), (6, 2, 3, 3), True, dict(stride=2, padding=0, output_padding=0, dilation=1, groups=3)),
    'dilation': ((1, 2, 5, 6), (2, 3, 3, 2), True,
                 dict(stride=2, padding=(2, 1), output_padding=(1, 0), dilation=(2, 3), groups=1)),
    'depthwise': ((2, 4, 3, 3), (4, 1, 4, 4), True, dict(stride=2, padding=1, output_padding=0, dilation=1, groups=4)),
    # output_padding >= stride (allowed as it is < dilation): rows past the adjoint's reach
    'outpad_dilation': ((2, 2, 4, 3), (2, 3, 3, 2), True,
                        dict(stride=1, padding=1, output_padding=(1, 2), dilation=(2, 3), groups=1)),
}

BN = dict(shape=(4, 3, 5, 6), momentum=0.1, eps=1e-5)
STEM = dict(batch=1, size=224, seed_x=1, seed_r=2, eps=1e-5, momentum=0.1)
RESNET = dict(widths=[4, 8], blocks=[1, 1], num_classes=5, batch=4, size=8, in_channels=3)


def pool(kind, x, o):
    """Runs a pooling case in torch from tensorloom's option names."""
    if kind == 'max':
        return F.max_pool2d(x, o['kernelSize'], o.get('stride'), o.get('padding', 0), o.get('dilation', 1),
                            ceil_mode=o.get('ceilMode', False))
    if kind == 'avg':
        return F.avg_pool2d(x, o['kernelSize'], o.get('stride'), o.get('padding', 0),
                            ceil_mode=o.get('ceilMode', False), count_include_pad=o.get('countIncludePad', True))
    return F.adaptive_avg_pool2d(x, o['outputSize'])


def hash_unit(n, seed):
    """n floats in [-1, 1) from an integer hash of (index, seed): exact in float32, so the TS test
    recomputes them bit for bit (the same arithmetic mod 2^32 with Math.imul)."""
    m = np.uint64(0xFFFFFFFF)
    u = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761) + np.uint64(seed * 40503)) & m
    u ^= u >> np.uint64(15)
    u = (u * np.uint64(0x2C1B3C6D)) & m
    u ^= u >> np.uint64(12)
    u = (u * np.uint64(0x297A2D39)) & m
    u ^= u >> np.uint64(15)
    k = (u >> np.uint64(8)).astype(np.float64)  # 24 bits
    return torch.from_numpy((k * 2.0 ** -23 - 1.0).astype(np.float32))


def rnd(gen, *shape, std=1.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * std).float()


def grads_of(fn, inputs, r):
    """y = fn(*inputs) and the gradients of sum(y * r) w.r.t. each input, all in float64."""
    xs = [t.double().requires_grad_() for t in inputs]
    y = fn(*xs)
    (y * r.double()).sum().backward()
    return y.detach().float(), [t.grad.float() for t in xs]


def conv_fixtures(gen):
    out, meta = {}, {}
    for name, (xs, ws, has_bias, o) in CONV_CASES.items():
        x, w = rnd(gen, *xs), rnd(gen, *ws, std=0.5)
        b = rnd(gen, ws[0], std=0.5) if has_bias else None
        y0 = F.conv2d(x.double(), w.double(), None, **o)
        r = rnd(gen, *y0.shape)
        ins = [x, w] + ([b] if has_bias else [])
        y, gs = grads_of(lambda *t: F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None, **o), ins, r)
        p = f'conv.{name}.'
        out.update({p + 'x': x, p + 'w': w, p + 'r': r, p + 'y': y, p + 'gx': gs[0], p + 'gw': gs[1]})
        if has_bias:
            out.update({p + 'b': b, p + 'gb': gs[2]})
        meta[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in o.items()}
    return out, meta


def convt_fixtures():
    """conv_transpose2d forward and gradients of sum(y * r) for input, weight and bias."""
    gen = torch.Generator().manual_seed(CONVT_SEED)
    out, meta = {}, {}
    for name, (xs, ws, has_bias, o) in CONVT_CASES.items():
        x, w = rnd(gen, *xs), rnd(gen, *ws, std=0.5)
        b = rnd(gen, ws[1] * o['groups'], std=0.5) if has_bias else None
        y0 = F.conv_transpose2d(x.double(), w.double(), None, **o)
        r = rnd(gen, *y0.shape)
        ins = [x, w] + ([b] if has_bias else [])
        y, gs = grads_of(lambda *t: F.conv_transpose2d(t[0], t[1], t[2] if len(t) > 2 else None, **o), ins, r)
        p = f'convt.{name}.'
        out.update({p + 'x': x, p + 'w': w, p + 'r': r, p + 'y': y, p + 'gx': gs[0], p + 'gw': gs[1]})
        if has_bias:
            out.update({p + 'b': b, p + 'gb': gs[2]})
        meta[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in o.items()}
    return out, meta


def pool_fixtures(gen):
    out, meta = {}, {}
    for name, (kind, xs, o) in POOL_CASES.items():
        x = rnd(gen, *xs)
        y0 = pool(kind, x.double(), o)
        r = rnd(gen, *y0.shape)
        y, (gx,) = grads_of(lambda t: pool(kind, t, o), [x], r)
        p = f'pool.{name}.'
        out.update({p + 'x': x, p + 'r': r, p + 'y': y, p + 'gx': gx})
        meta[name] = dict(kind=kind, **o)
    return out, meta


def bn_fixtures(gen):
    C = BN['shape'][1]
    x = rnd(gen, *BN['shape'], std=2.0) + 0.5
    w, b = 1 + rnd(gen, C, std=0.3), rnd(gen, C, std=0.3)
    rm, rv = rnd(gen, C, std=0.5), 1 + rnd(gen, C, std=0.2).abs()
    r = rnd(gen, *BN['shape'])
    out = {'bn.x': x, 'bn.w': w, 'bn.b': b, 'bn.rm': rm, 'bn.rv': rv, 'bn.r': r}
    for mode, training in (('train', True), ('eval', False)):
        rm64, rv64 = rm.double().clone(), rv.double().clone()
        y, (gx, gw, gb) = grads_of(
            lambda x_, w_, b_: F.batch_norm(x_, rm64, rv64, w_, b_, training, BN['momentum'], BN['eps']),
            [x, w, b], r)
        p = f'bn.{mode}.'
        out.update({p + 'y': y, p + 'gx': gx, p + 'gw': gw, p + 'gb': gb,
                    p + 'rm': rm64.float(), p + 'rv': rv64.float()})
    return out


def stem_fixtures(gen):
    """ResNet-50 stem in training mode: conv1 7x7/2 (no bias) - bn1 - relu - maxpool 3x3/2 pad 1."""
    n, s = STEM['batch'], STEM['size']
    x = hash_unit(n * 3 * s * s, STEM['seed_x']).reshape(n, 3, s, s)
    w = rnd(gen, 64, 3, 7, 7, std=0.1)
    g, b = 1 + rnd(gen, 64, std=0.2), rnd(gen, 64, std=0.2)
    rm, rv = torch.zeros(64), torch.ones(64)

    def stem(x_, w_, g_, b_):
        h = F.conv2d(x_, w_, None, stride=2, padding=3)
        h = F.batch_norm(h, rm64, rv64, g_, b_, True, STEM['momentum'], STEM['eps'])
        return F.max_pool2d(F.relu(h), 3, 2, 1)

    rm64, rv64 = rm.double().clone(), rv.double().clone()
    with torch.no_grad():
        shape = stem(x.double(), w.double(), g.double(), b.double()).shape
    rm64, rv64 = rm.double().clone(), rv.double().clone()
    r = hash_unit(shape.numel(), STEM['seed_r']).reshape(shape)
    y, (gx, gw, gg, gb) = grads_of(stem, [x, w, g, b], r)
    return {
        'stem.conv1.weight': w, 'stem.bn1.weight': g, 'stem.bn1.bias': b,
        'stem.y_head': y[:, :8].clone(),
        'stem.grad.conv1.weight': gw, 'stem.grad.bn1.weight': gg, 'stem.grad.bn1.bias': gb,
        'stem.after.bn1.running_mean': rm64.float(), 'stem.after.bn1.running_var': rv64.float(),
        # the first 8 output channels (the parameter gradients depend on all 64), x's first values (to
        # check that the test regenerated it exactly) and the start of the input gradient
        'stem.x_head': x.reshape(-1)[:64].clone(), 'stem.gx_head': gx.reshape(-1)[:4096].clone(),
    }


class TinyResNet(torch.nn.Module):
    """torchvision's BasicBlock ResNet with the small-image stem (3x3 conv1, no max pool), plain torch."""

    def __init__(self, c, gen):
        super().__init__()
        self.c = c
        w = c['widths']
        self.p = {}
        self._conv('conv1', c['in_channels'], w[0], 3, gen)
        self._bn('bn1', w[0], gen)
        cin = w[0]
        for i, (planes, nb) in enumerate(zip(w, c['blocks'])):
            for j in range(nb):
                pre = f'layer{i + 1}.{j}.'
                stride = 2 if i > 0 and j == 0 else 1
                self._conv(pre + 'conv1', cin, planes, 3, gen)
                self._bn(pre + 'bn1', planes, gen)
                self._conv(pre + 'conv2', planes, planes, 3, gen)
                self._bn(pre + 'bn2', planes, gen)
                if stride != 1 or cin != planes:
                    self._conv(pre + 'downsample.0', cin, planes, 1, gen)
                    self._bn(pre + 'downsample.1', planes, gen)
                cin = planes
        bound = 1 / cin ** 0.5
        self.p['fc.weight'] = (torch.rand(c['num_classes'], cin, generator=gen) * 2 - 1) * bound
        self.p['fc.bias'] = (torch.rand(c['num_classes'], generator=gen) * 2 - 1) * bound

    def _conv(self, name, cin, cout, k, gen):
        bound = 1 / (cin * k * k) ** 0.5
        self.p[name + '.weight'] = (torch.rand(cout, cin, k, k, generator=gen) * 2 - 1) * bound

    def _bn(self, name, c, gen):
        self.p[name + '.weight'] = 1 + 0.1 * torch.randn(c, generator=gen)
        self.p[name + '.bias'] = 0.1 * torch.randn(c, generator=gen)
        self.p[name + '.running_mean'] = torch.zeros(c)
        self.p[name + '.running_var'] = torch.ones(c)
        self.p[name + '.num_batches_tracked'] = torch.zeros((), dtype=torch.int32)

    def run(self, q, x):
        """Training-mode forward with the float64 tensors q (running stats updated in place)."""
        def bn(h, n):
            return F.batch_norm(h, q[n + '.running_mean'], q[n + '.running_var'], q[n + '.weight'], q[n + '.bias'],
                                True, 0.1, 1e-5)

        h = F.relu(bn(F.conv2d(x, q['conv1.weight'], padding=1), 'bn1'))
        cin = self.c['widths'][0]
        for i, (planes, nb) in enumerate(zip(self.c['widths'], self.c['blocks'])):
            for j in range(nb):
                pre = f'layer{i + 1}.{j}.'
                stride = 2 if i > 0 and j == 0 else 1
                o = F.relu(bn(F.conv2d(h, q[pre + 'conv1.weight'], stride=stride, padding=1), pre + 'bn1'))
                o = bn(F.conv2d(o, q[pre + 'conv2.weight'], padding=1), pre + 'bn2')
                idn = h
                if stride != 1 or cin != planes:
                    idn = bn(F.conv2d(h, q[pre + 'downsample.0.weight'], stride=stride), pre + 'downsample.1')
                h = F.relu(o + idn)
                cin = planes
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        return h @ q['fc.weight'].t() + q['fc.bias']


def resnet_fixtures(gen):
    c = RESNET
    net = TinyResNet(c, gen)
    x = rnd(gen, c['batch'], c['in_channels'], c['size'], c['size'])
    labels = torch.randint(0, c['num_classes'], (c['batch'],), generator=gen)
    q = {k: (v.double().requires_grad_() if v.is_floating_point() and 'running' not in k else v.double())
         for k, v in net.p.items() if 'num_batches' not in k}
    logits = net.run(q, x.double())
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out = {'x': x, 'labels': labels.int(), 'logits': logits.detach().float(), 'loss': loss.detach().float().reshape(1)}
    for k, v in q.items():
        if v.grad is not None:
            out['grad.' + k] = v.grad.float()
        elif 'running' in k:
            out['after.' + k] = v.float()
    return net.p, out


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(2024)
    conv, conv_meta = conv_fixtures(gen)
    pools, pool_meta = pool_fixtures(gen)
    ops = {**conv, **pools, **bn_fixtures(gen)}
    meta = {'conv': json.dumps(conv_meta), 'pool': json.dumps(pool_meta), 'bn': json.dumps(BN),
            'torch': torch.__version__, 'compute': 'float64'}
    save_safetensors(os.path.join(OUT, 'ops.safetensors'), ops, meta)
    save_safetensors(os.path.join(OUT, 'stem.safetensors'), stem_fixtures(gen),
                     {'stem': json.dumps(STEM), 'torch': torch.__version__, 'compute': 'float64'})
    params, fx = resnet_fixtures(gen)
    save_safetensors(os.path.join(OUT, 'resnet-model.safetensors'), params, {'format': 'pt'})
    save_safetensors(os.path.join(OUT, 'resnet.safetensors'), fx,
                     {'resnet': json.dumps(RESNET), 'torch': torch.__version__, 'compute': 'float64'})
    convt, convt_meta = convt_fixtures()
    save_safetensors(os.path.join(OUT, 'convtranspose.safetensors'), convt,
                     {'convt': json.dumps(convt_meta), 'torch': torch.__version__, 'compute': 'float64'})
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)), 'bytes')


if __name__ == '__main__':
    main()
