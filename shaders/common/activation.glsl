// activation.glsl - the activations fused into convolution epilogues. The codes are dpl_activation in
// runtime/include/dpl.h (0 none, 1 ReLU).
float activate(float x, uint act) {
  if (act == 1u) return x > 0.0 ? x : 0.0;   // as the relu op: NaN gives 0
  return x;
}
