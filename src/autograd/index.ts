// The autograd layer: gradient rules, backward(), and the Tensor.backward / retainGrad methods.
import { Tensor } from '../tensor/index.js';
import { backward, retainGrad, type BackwardOptions } from './backward.js';

declare module '../tensor/tensor.js' {
  interface Tensor {
    /** Backpropagates from this tensor (a one-element tensor, or pass the gradient explicitly). */
    backward(grad?: Tensor, opts?: BackwardOptions): void;
    /** Also store this non-leaf tensor's gradient in `.grad` during backward. */
    retainGrad(): void;
  }
}

Tensor.prototype.backward = function (this: Tensor, grad?: Tensor, opts?: BackwardOptions) {
  backward(this, grad, opts);
};
Tensor.prototype.retainGrad = function (this: Tensor) {
  retainGrad(this);
};

export { backward, retainGrad, type BackwardOptions } from './backward.js';
export { GRAD_RULES, unbroadcast, type GradRule, type GradContext } from './rules.js';
export { noGrad, enableGrad, isGradEnabled } from '../tensor/index.js';
