// Residual convolutional networks with torchvision's module names (conv1, bn1, layer1.0.conv1, ...,
// fc), so state dicts line up with PyTorch: the basic block, a ResNet whose stem suits small images
// (or torchvision's ImageNet stem), and the ResNet-50 stem on its own (the conv benchmark's workload).
import { OpError } from '../core/errors.js';
import {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  Conv2d,
  Linear,
  MaxPool2d,
  Module,
  ReLU,
  Sequential,
  type FactoryOptions,
} from '../nn/index.js';
import { tidy, type Tensor } from '../tensor/index.js';

/**
 * torchvision's BasicBlock: conv3x3(stride) - BN - ReLU - conv3x3 - BN, plus the identity or, when the
 * stride or width changes, a 1x1 conv(stride) - BN `downsample` branch; ReLU after the sum.
 */
export class BasicBlock extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1, opts: FactoryOptions = {}) {
    super();
    const where = { device: opts.device, dtype: opts.dtype };
    this.conv1 = new Conv2d(inPlanes, planes, 3, { ...opts, stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(planes, where);
    this.conv2 = new Conv2d(planes, planes, 3, { ...opts, padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes, where);
    this.downsample =
      stride !== 1 || inPlanes !== planes
        ? new Sequential(
            new Conv2d(inPlanes, planes, 1, { ...opts, stride, bias: false }),
            new BatchNorm2d(planes, where),
          )
        : null;
  }

  /**
   * (N, inPlanes, H, W) -> (N, planes, H/stride, W/stride). The ReLUs and the shortcut sum run inside
   * the batch-norm kernels (bn1 + relu, bn2 + shortcut + relu): three forward dispatches fewer.
   */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const identity = this.downsample ? this.downsample.forward(x) : x;
      const h = this.bn1.forward(this.conv1.forward(x), { relu: true });
      return this.bn2.forward(this.conv2.forward(h), { residual: identity, relu: true });
    });
  }
}

/** The shape of a ResNet. */
export interface ResNetConfig {
  /** Channels of each stage (stage i > 0 halves the resolution). */
  widths: readonly number[];
  /** Basic blocks per stage (same length as widths). */
  blocks: readonly number[];
  numClasses: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /**
   * 'small' (default): a 3x3 stride-1 conv1 and no max pool, for images of ~16-64 pixels;
   * 'imagenet': torchvision's 7x7 stride-2 conv1 and 3x3 stride-2 max pool (widths [64, 128, 256,
   * 512] with blocks [2, 2, 2, 2] is resnet18, parameter for parameter).
   */
  stem?: 'small' | 'imagenet';
}

/**
 * A ResNet of basic blocks: stem (conv1, bn1, relu[, maxpool]), stages layer1..layerK, global average
 * pool and a linear classifier `fc`. Its stateDict() names are torchvision's.
 */
export class ResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  maxpool: MaxPool2d | null;
  /** The stages, named layer1, layer2, ... in the module tree (torchvision's names). */
  private readonly stages: Sequential[] = [];
  avgpool = new AdaptiveAvgPool2d(1);
  fc: Linear;

  constructor(
    readonly config: ResNetConfig,
    opts: FactoryOptions = {},
  ) {
    super();
    const { widths, blocks, numClasses } = config;
    const inChannels = config.inChannels ?? 3;
    if (widths.length === 0 || widths.length !== blocks.length)
      throw new OpError(
        'ResNet',
        `widths [${widths.join(', ')}] and blocks [${blocks.join(', ')}] must be non-empty and of equal length`,
      );
    for (const [what, xs] of [
      ['widths', widths],
      ['blocks', blocks],
    ] as const) {
      if (xs.some((v) => !Number.isInteger(v) || v < 1))
        throw new OpError('ResNet', `${what} must be positive integers, got [${xs.join(', ')}]`);
    }
    if (!Number.isInteger(numClasses) || numClasses < 1)
      throw new OpError('ResNet', `numClasses must be a positive integer, got ${numClasses}`);
    const where = { device: opts.device, dtype: opts.dtype };
    const imagenet = config.stem === 'imagenet';
    const w0 = widths[0]!;
    this.conv1 = imagenet
      ? new Conv2d(inChannels, w0, 7, { ...opts, stride: 2, padding: 3, bias: false })
      : new Conv2d(inChannels, w0, 3, { ...opts, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(w0, where);
    this.maxpool = imagenet ? new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }) : null;
    let inPlanes = w0;
    widths.forEach((planes, i) => {
      const stage = new Sequential(
        ...Array.from({ length: blocks[i]! }, (_, j) => {
          const block = new BasicBlock(inPlanes, planes, i > 0 && j === 0 ? 2 : 1, opts);
          inPlanes = planes;
          return block;
        }),
      );
      this.stages.push(stage);
    });
    this.fc = new Linear(inPlanes, numClasses, opts);
  }

  /** The stages, layer1 first. */
  get layers(): readonly Sequential[] {
    return this.stages;
  }

  /** The fields in torchvision's order, with the stages named layer1, layer2, ... before avgpool. */
  protected override ownEntries(): [string, unknown][] {
    const entries = super.ownEntries().filter(([k]) => k !== 'stages');
    const at = entries.findIndex(([k]) => k === 'avgpool');
    entries.splice(at, 0, ...this.stages.map((s, i): [string, unknown] => [`layer${i + 1}`, s]));
    return entries;
  }

  /** (N, inChannels, H, W) -> logits (N, numClasses). */
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.bn1.forward(this.conv1.forward(x), { relu: true }); // relu fused into bn1's kernel
      if (this.maxpool) h = this.maxpool.forward(h);
      for (const stage of this.stages) h = stage.forward(h);
      h = this.avgpool.forward(h).flatten(1); // (N, C)
      return this.fc.forward(h); // (N, numClasses)
    });
  }
}

/**
 * The first layers of torchvision's ResNet-50 (and 18/34/101/152): conv1 7x7 stride 2 padding 3 without
 * bias (inChannels -> 64), bn1, ReLU, 3x3 stride-2 max pool with padding 1: (N, 3, 224, 224) -> (N, 64, 56, 56).
 */
export class ResNet50Stem extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  maxpool = new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 });

  constructor(inChannels = 3, opts: FactoryOptions = {}) {
    super();
    this.conv1 = new Conv2d(inChannels, 64, 7, { ...opts, stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(64, { device: opts.device, dtype: opts.dtype });
  }

  /** (N, inChannels, H, W) -> (N, 64, ~H/4, ~W/4). */
  forward(x: Tensor): Tensor {
    return tidy(() => this.maxpool.forward(this.bn1.forward(this.conv1.forward(x), { relu: true })));
  }
}
