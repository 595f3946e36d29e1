/* dnnl_cpu.c - the CPU backend's bridge to oneDNN (Debian's libdnnl, the library PyTorch's own CPU convolutions run
 * on), when dpl is built with it (DPL_HAVE_DNNL; CMake finds libdnnl-dev): convolution forward, input gradient and
 * weight gradient, and the transcendental activations (sigmoid, SiLU, tanh) on contiguous tensors.
 *
 * Convolutions.
 * OpenBLAS-based convolution (im2col, batch fold) tops out at the speed of its sgemm on the thin products of
 * convolutions; oneDNN's direct kernels work on channel-blocked layouts (nChw16c and the like) and run AlexNet's
 * layers 1.5-2x faster. dpl's tensors stay N x C x H x W: each call reorders the tensors it reads (the input, the
 * output's gradient) into the layouts the primitive asks for and the one it writes back, while the weights in the
 * primitive's own layout are kept between calls by the kernel cache (cpu/kernel_cache.c), the way a frozen loss
 * network uses them. (PyTorch reorders the weights on every call.)
 *
 * A plan per problem shape (primitive descriptor, primitives, memory descriptors) is created once and kept, the least
 * recently used dropped first; a shape oneDNN cannot do is remembered as such and left to the other paths.
 *
 * Activations. GCC does not vectorise expf (errno), so a sigmoid or SiLU took ~3 ns per element: EfficientNet spent
 * more time in SiLU than in its convolutions. oneDNN's JIT-compiled eltwise kernels (its own exp polynomial, about
 * 1 ulp) run them over a contiguous buffer at memory speed.
 *
 * The plain C paths stay the reference: DPL_CPU_DNNL=0 turns all of this off, and the tests compare the two. */
#include "cpu.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DPL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

enum { PLANS = 64 };

typedef struct plan_key {
  int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups, has_bias;   /* no padding: compared with memcmp */
  int64_t kind;                  /* FORWARD (reads x, writes y), INPUT_GRAD (reads dy, writes dx) or WEIGHT_GRAD (reads x and
                                  * dy, writes dw) */
} plan_key;

enum { FORWARD = 0, INPUT_GRAD = 1, WEIGHT_GRAD = 2 };

typedef struct plan {
  plan_key key;
  bool used_slot, unsupported;
  uint64_t tick;
  dnnl_primitive_t conv, in_reorder, in2_reorder, out_reorder, wei_reorder;  /* reorders NULL when layouts agree */
  dnnl_memory_t in_plain, in_blk, in2_plain, in2_blk, wei_plain, wei_blk, bias, out_blk, out_plain;
  size_t in_blk_bytes, in2_blk_bytes, out_blk_bytes, wei_blk_bytes;
  uint64_t wei_layout;           /* a hash of the weights' layout: part of the kernel cache's key */
} plan;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static bool engine_failed;
static plan plans[PLANS];
static uint64_t ticks;
static int64_t convs_run;        /* convolutions oneDNN has run: dpl_device_stat(cpu, "dnnl_convs") */
static int64_t activations_run;  /* and activations: "dnnl_activations" */

bool dpl_cpu_dnnl_enabled(void) {
  return !dpl_env_is("DPL_CPU_DNNL", "0");   /* DPL_CPU_DNNL=0: dpl's own paths only (A/B timing, tests) */
}

static bool engine_ready(void) {
  if (engine) return true;
  if (engine_failed) return false;
  if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
      dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
    engine_failed = true;
    return false;
  }
  return true;
}

static void plan_destroy(plan *p) {
  dnnl_primitive_t prims[] = {p->conv, p->in_reorder, p->in2_reorder, p->out_reorder, p->wei_reorder};
  for (size_t i = 0; i < sizeof prims / sizeof *prims; i++)
    if (prims[i]) dnnl_primitive_destroy(prims[i]);
  dnnl_memory_t mems[] = {p->in_plain, p->in_blk, p->in2_plain, p->in2_blk, p->wei_plain, p->wei_blk, p->bias,
                          p->out_blk, p->out_plain};
  for (size_t i = 0; i < sizeof mems / sizeof *mems; i++)
    if (mems[i]) dnnl_memory_destroy(mems[i]);
  memset(p, 0, sizeof *p);
}

static uint64_t fnv1a(const void *data, size_t n) {
  const unsigned char *b = data;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* a reorder from `from` to `to`, or NULL (and success) when the two layouts are the same */
static dnnl_status_t make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *r) {
  *r = NULL;
  if (dnnl_memory_desc_equal(from, to)) return dnnl_success;
  dnnl_primitive_desc_t pd;
  dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL);
  if (s != dnnl_success) return s;
  s = dnnl_primitive_create(r, pd);
  dnnl_primitive_desc_destroy(pd);
  return s;
}

/* memory objects are created without data (DNNL_MEMORY_NONE) and pointed at each call's buffers */
static dnnl_status_t make_memory(const dnnl_memory_desc_t *md, dnnl_memory_t *m) {
  return dnnl_memory_create(m, md, engine, DNNL_MEMORY_NONE);
}

#define TRY(x) do { if ((x) != dnnl_success) goto fail; } while (0)

/* oneDNN's reference implementations ("ref:any") are correct but far slower than dpl's own paths (an 11x11 AlexNet
 * layer took 5.7 s): a plan that would get one is left to those paths */
static bool optimised(dnnl_primitive_desc_t pd) {
  const char *impl = NULL;
  return dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
         strncmp(impl, "ref", 3) != 0;
}

static void plan_build(plan *p) {
  const plan_key *k = &p->key;
  dnnl_memory_desc_t src, dst, wei, bias, src_any, dst_any, wei_any;
  dnnl_dims_t sd = {k->n, k->c, k->h, k->w};
  dnnl_dims_t dd = {k->n, k->o, (k->h + 2 * k->ph - k->dh * (k->kh - 1) - 1) / k->sh + 1,
                    (k->w + 2 * k->pw - k->dw * (k->kw - 1) - 1) / k->sw + 1};
  dnnl_dims_t bd = {k->o};
  dnnl_dims_t strides = {k->sh, k->sw}, dil = {k->dh - 1, k->dw - 1}, pad = {k->ph, k->pw};
  dnnl_primitive_desc_t fwd = NULL, bwd = NULL;
  TRY(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_nchw));
  TRY(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nchw));
  TRY(dnnl_memory_desc_init_by_tag(&src_any, 4, sd, dnnl_f32, dnnl_format_tag_any));
  TRY(dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
  TRY(dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x));
  if (k->groups == 1) {
    dnnl_dims_t wd = {k->o, k->c, k->kh, k->kw};
    TRY(dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_oihw));
    TRY(dnnl_memory_desc_init_by_tag(&wei_any, 4, wd, dnnl_f32, dnnl_format_tag_any));
  } else {
    dnnl_dims_t wd = {k->groups, k->o / k->groups, k->c / k->groups, k->kh, k->kw};
    TRY(dnnl_memory_desc_init_by_tag(&wei, 5, wd, dnnl_f32, dnnl_goihw));
    TRY(dnnl_memory_desc_init_by_tag(&wei_any, 5, wd, dnnl_f32, dnnl_format_tag_any));
  }
  dnnl_convolution_desc_t cd;
  /* forward_training, as PyTorch asks: oneDNN 2.6 then picks its jit:avx512_core kernels (plain input for few
   * channels, nChw16c otherwise), which ran these networks 5-23% faster than the brgconv kernels it picks for
   * forward_inference (AlexNet, ResNet, GoogLeNet, EfficientNet, DenseNet, SqueezeNet) */
  TRY(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src_any,
                                                 &wei_any, k->has_bias ? &bias : NULL, &dst_any, strides, dil, pad,
                                                 pad));
  TRY(dnnl_primitive_desc_create(&fwd, &cd, NULL, engine, NULL));
  const dnnl_memory_desc_t *in_blk, *in2_blk = NULL, *out_blk, *wei_blk, *in_plain = &src, *out_plain = &dst;
  dnnl_primitive_desc_t pd = fwd;
  if (k->kind == FORWARD) {
    in_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    out_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    wei_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  } else if (k->kind == INPUT_GRAD) {   /* a primitive of its own, planned with the forward one as its hint */
    dnnl_convolution_desc_t bd_;
    TRY(dnnl_dilated_convolution_backward_data_desc_init(&bd_, dnnl_convolution_direct, &src_any, &wei_any, &dst_any,
                                                         strides, dil, pad, pad));
    TRY(dnnl_primitive_desc_create(&bwd, &bd_, NULL, engine, fwd));
    pd = bwd;
    in_plain = &dst;
    out_plain = &src;
    in_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
    out_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_src_md, 0);
    wei_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  } else {                              /* the weight gradient: reads x and dy, writes dw in the plain layout */
    dnnl_convolution_desc_t bd_;
    TRY(dnnl_dilated_convolution_backward_weights_desc_init(&bd_, dnnl_convolution_direct, &src_any, &wei_any, NULL,
                                                            &dst_any, strides, dil, pad, pad));
    TRY(dnnl_primitive_desc_create(&bwd, &bd_, NULL, engine, fwd));
    pd = bwd;
    out_plain = &wei;
    in_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    in2_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
    out_blk = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0);
    wei_blk = out_blk;
  }
  if (!optimised(pd)) goto fail;
  TRY(dnnl_primitive_create(&p->conv, pd));
  TRY(make_reorder(in_plain, in_blk, &p->in_reorder));
  TRY(make_reorder(out_blk, out_plain, &p->out_reorder));
  TRY(make_memory(in_plain, &p->in_plain));
  TRY(make_memory(in_blk, &p->in_blk));
  if (in2_blk) {
    TRY(make_reorder(&dst, in2_blk, &p->in2_reorder));
    TRY(make_memory(&dst, &p->in2_plain));
    TRY(make_memory(in2_blk, &p->in2_blk));
    p->in2_blk_bytes = dnnl_memory_desc_get_size(in2_blk);
  } else {
    TRY(make_reorder(&wei, wei_blk, &p->wei_reorder));
    TRY(make_memory(&wei, &p->wei_plain));
    TRY(make_memory(wei_blk, &p->wei_blk));
  }
  if (k->has_bias) TRY(make_memory(&bias, &p->bias));
  TRY(make_memory(out_blk, &p->out_blk));
  TRY(make_memory(out_plain, &p->out_plain));
  p->in_blk_bytes = dnnl_memory_desc_get_size(in_blk);
  p->out_blk_bytes = dnnl_memory_desc_get_size(out_blk);
  p->wei_blk_bytes = dnnl_memory_desc_get_size(wei_blk);
  p->wei_layout = fnv1a(wei_blk, sizeof *wei_blk);
  if (bwd) dnnl_primitive_desc_destroy(bwd);
  dnnl_primitive_desc_destroy(fwd);
  return;
fail:
  if (bwd) dnnl_primitive_desc_destroy(bwd);
  if (fwd) dnnl_primitive_desc_destroy(fwd);
  plan_key key = p->key;
  plan_destroy(p);
  p->key = key;
  p->unsupported = true;
}

/* the plan for these arguments (built on first use); caller holds the lock */
static plan *plan_for(const dpl_conv2d_args *a, int kind) {
  const plan_key k = {a->n, a->c, a->h, a->w, a->o, a->kh, a->kw, a->stride_h, a->stride_w, a->pad_h, a->pad_w,
                      a->dil_h, a->dil_w, a->groups, kind == FORWARD && a->bias != NULL, kind};
  plan *p = NULL, *lru = NULL;
  for (int i = 0; i < PLANS && !p; i++) {
    if (plans[i].used_slot && !memcmp(&plans[i].key, &k, sizeof k)) p = &plans[i];
    else if (!lru || !plans[i].used_slot || (lru->used_slot && plans[i].tick < lru->tick)) lru = &plans[i];
  }
  if (!p) {
    p = lru;
    if (p->used_slot) plan_destroy(p);
    p->key = k;
    p->used_slot = true;
    plan_build(p);
  }
  p->tick = ++ticks;
  return p;
}

static bool exec2(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  return dnnl_primitive_execute(r, stream, 2, args) == dnnl_success;
}

/* the weights in the primitive's layout, from W */
typedef struct dnnl_call { plan *p; const dpl_conv2d_args *a; float *in, *out; bool ok; } dnnl_call;

static void derive_weights(const float *W, float *out, void *ctx) {
  dnnl_call *c = ctx;
  plan *p = c->p;
  if (!p->wei_reorder) {
    memcpy(out, W, p->wei_blk_bytes);
    return;
  }
  c->ok = dnnl_memory_set_data_handle(p->wei_plain, (void *)W) == dnnl_success &&
          dnnl_memory_set_data_handle(p->wei_blk, out) == dnnl_success &&
          exec2(p->wei_reorder, p->wei_plain, p->wei_blk) && dnnl_stream_wait(stream) == dnnl_success;
}

static int run_conv(const float *wblk, void *ctx) {
  dnnl_call *c = ctx;
  plan *p = c->p;
  if (!c->ok) return DPL_OK;
  const dpl_conv2d_args *a = c->a;
  dnnl_exec_arg_t fwd_args[4] = {{DNNL_ARG_SRC, p->in_blk}, {DNNL_ARG_WEIGHTS, p->wei_blk}, {DNNL_ARG_DST, p->out_blk},
                                 {DNNL_ARG_BIAS, p->bias}};
  dnnl_exec_arg_t bwd_args[3] = {{DNNL_ARG_DIFF_DST, p->in_blk}, {DNNL_ARG_WEIGHTS, p->wei_blk},
                                 {DNNL_ARG_DIFF_SRC, p->out_blk}};
  c->ok = dnnl_memory_set_data_handle(p->wei_blk, (void *)wblk) == dnnl_success &&
          (!p->bias || dnnl_memory_set_data_handle(p->bias, a->bias->storage->host + a->bias->offset) == dnnl_success) &&
          (p->key.kind == INPUT_GRAD ? dnnl_primitive_execute(p->conv, stream, 3, bwd_args)
                           : dnnl_primitive_execute(p->conv, stream, p->bias ? 4 : 3, fwd_args)) == dnnl_success &&
          (!p->out_reorder || exec2(p->out_reorder, p->out_blk, p->out_plain)) &&
          dnnl_stream_wait(stream) == dnnl_success;
  return DPL_OK;
}

/* the weight gradient's primitive, on the blocked tensors; then dw back to the plain layout */
static bool run_weight_grad(plan *p, float *x_blk, float *dy_blk) {
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->in_blk}, {DNNL_ARG_DIFF_DST, p->in2_blk},
                             {DNNL_ARG_DIFF_WEIGHTS, p->out_blk}};
  return dnnl_memory_set_data_handle(p->in_blk, x_blk) == dnnl_success &&
         dnnl_memory_set_data_handle(p->in2_blk, dy_blk) == dnnl_success &&
         dnnl_primitive_execute(p->conv, stream, 3, args) == dnnl_success &&
         (!p->out_reorder || exec2(p->out_reorder, p->out_blk, p->out_plain)) &&
         dnnl_stream_wait(stream) == dnnl_success;
}

/* forward: reads a->input, writes a->output; input gradient: reads a->output (dy), writes a->input (dx); weight
 * gradient: reads a->input (x) and a->output (dy), writes a->weight (dw) */
static int conv_dnnl(const dpl_conv2d_args *a, int kind) {
  if (!dpl_cpu_dnnl_enabled()) return DPL_CPU_NOT_HANDLED;
  pthread_mutex_lock(&lock);
  if (!engine_ready()) {
    pthread_mutex_unlock(&lock);
    return DPL_CPU_NOT_HANDLED;
  }
  plan *p = plan_for(a, kind);
  if (p->unsupported) {
    pthread_mutex_unlock(&lock);
    return DPL_CPU_NOT_HANDLED;
  }
  float *X = a->input->storage->host + a->input->offset, *Y = a->output->storage->host + a->output->offset;
  float *in = kind == INPUT_GRAD ? Y : X, *in2 = kind == WEIGHT_GRAD ? Y : NULL;
  float *out = kind == FORWARD ? Y : kind == INPUT_GRAD ? X : a->weight->storage->host + a->weight->offset;
  dnnl_call c = {p, a, NULL, NULL, true};
  /* the blocked tensors: buffers from the host cache (cpu/host_cache.c), or the tensors themselves */
  c.in = p->in_reorder ? dpl_host_alloc(p->in_blk_bytes) : in;
  c.out = p->out_reorder ? dpl_host_alloc(p->out_blk_bytes) : out;
  float *in2_blk = in2 && p->in2_reorder ? dpl_host_alloc(p->in2_blk_bytes) : in2;
  int rc = DPL_OK;
  if (!c.in || !c.out || (in2 && !in2_blk)) {
    rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "conv2d: out of host memory for oneDNN's blocked buffers");
    goto done;
  }
  c.ok = dnnl_memory_set_data_handle(p->in_plain, in) == dnnl_success &&
         dnnl_memory_set_data_handle(p->in_blk, c.in) == dnnl_success &&
         dnnl_memory_set_data_handle(p->out_blk, c.out) == dnnl_success &&
         dnnl_memory_set_data_handle(p->out_plain, out) == dnnl_success &&
         (!p->in_reorder || exec2(p->in_reorder, p->in_plain, p->in_blk));
  if (c.ok && in2)
    c.ok = dnnl_memory_set_data_handle(p->in2_plain, in2) == dnnl_success &&
           dnnl_memory_set_data_handle(p->in2_blk, in2_blk) == dnnl_success &&
           (!p->in2_reorder || exec2(p->in2_reorder, p->in2_plain, p->in2_blk));
  if (c.ok && kind == WEIGHT_GRAD)
    c.ok = run_weight_grad(p, c.in, in2_blk);
  else if (c.ok)
    rc = dpl_cpu_with_derived(a->weight, DPL_DERIVED_DNNL, p->wei_layout, p->wei_blk_bytes / sizeof(float),
                              derive_weights, run_conv, &c);
  if (!rc && !c.ok) rc = dpl_fail(DPL_ERR_DEVICE, "conv2d: oneDNN failed to run a convolution it had planned");
  if (!rc) convs_run++;
done:
  if (p->in_reorder && c.in) dpl_host_free(c.in, p->in_blk_bytes);
  if (p->out_reorder && c.out) dpl_host_free(c.out, p->out_blk_bytes);
  if (in2 && p->in2_reorder && in2_blk) dpl_host_free(in2_blk, p->in2_blk_bytes);
  pthread_mutex_unlock(&lock);
  return rc;
}

int dpl_cpu_conv_dnnl_forward(const dpl_conv2d_args *a) { return conv_dnnl(a, FORWARD); }
int dpl_cpu_conv_dnnl_backward_input(const dpl_conv2d_args *a) { return conv_dnnl(a, INPUT_GRAD); }
int dpl_cpu_conv_dnnl_backward_weight(const dpl_conv2d_args *a) { return conv_dnnl(a, WEIGHT_GRAD); }

/* ---- activations ------------------------------------------------------------------------------------------- */
enum { ELT_PLANS = 128, ELT_MIN = 4096 };   /* below ELT_MIN elements the plain loop is as fast */

typedef struct elt_plan {
  int64_t n;
  int alg;                        /* 0: a free slot */
  bool unsupported;
  uint64_t tick;
  dnnl_primitive_t prim;
  dnnl_memory_t src, dst;
} elt_plan;

static elt_plan elt_plans[ELT_PLANS];

static void elt_destroy(elt_plan *p) {
  if (p->prim) dnnl_primitive_destroy(p->prim);
  if (p->src) dnnl_memory_destroy(p->src);
  if (p->dst) dnnl_memory_destroy(p->dst);
  memset(p, 0, sizeof *p);
}

static void elt_build(elt_plan *p, float alpha) {
  dnnl_memory_desc_t md;
  dnnl_dims_t dims = {p->n};
  dnnl_eltwise_desc_t ed;
  dnnl_primitive_desc_t pd = NULL;
  TRY(dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_f32, dnnl_x));
  TRY(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, (dnnl_alg_kind_t)p->alg, &md, alpha, 0.0f));
  TRY(dnnl_primitive_desc_create(&pd, &ed, NULL, engine, NULL));
  if (!optimised(pd)) goto fail;
  TRY(dnnl_primitive_create(&p->prim, pd));
  TRY(make_memory(&md, &p->src));
  TRY(make_memory(&md, &p->dst));
  dnnl_primitive_desc_destroy(pd);
  return;
fail:
  if (pd) dnnl_primitive_desc_destroy(pd);
  int64_t n = p->n;
  int alg = p->alg;
  elt_destroy(p);
  p->n = n;
  p->alg = alg;
  p->unsupported = true;
}

int dpl_cpu_dnnl_unary(int op, int64_t n, float *out, const float *in) {
  int alg;
  float alpha = 0.0f;
  switch (op) {
  case DPL_SIGMOID: alg = dnnl_eltwise_logistic; break;
  case DPL_SILU: alg = dnnl_eltwise_swish; alpha = 1.0f; break;   /* x * sigmoid(alpha x) */
  case DPL_TANH: alg = dnnl_eltwise_tanh; break;
  default: return DPL_CPU_NOT_HANDLED;      /* not exp: oneDNN 2.6's gives inf for NaN */
  }
  if (n < ELT_MIN || !dpl_cpu_dnnl_enabled()) return DPL_CPU_NOT_HANDLED;
  pthread_mutex_lock(&lock);
  int rc = DPL_CPU_NOT_HANDLED;
  if (!engine_ready()) goto done;
  elt_plan *p = NULL, *lru = NULL;
  for (int i = 0; i < ELT_PLANS && !p; i++) {
    if (elt_plans[i].alg == alg && elt_plans[i].n == n) p = &elt_plans[i];
    else if (!lru || !elt_plans[i].alg || (lru->alg && elt_plans[i].tick < lru->tick)) lru = &elt_plans[i];
  }
  if (!p) {
    p = lru;
    if (p->alg) elt_destroy(p);
    p->n = n;
    p->alg = alg;
    elt_build(p, alpha);
  }
  p->tick = ++ticks;
  if (p->unsupported) goto done;
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DST, p->dst}};
  if (dnnl_memory_set_data_handle(p->src, (void *)in) == dnnl_success &&
      dnnl_memory_set_data_handle(p->dst, out) == dnnl_success &&
      dnnl_primitive_execute(p->prim, stream, 2, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success) {
    rc = DPL_OK;
    activations_run++;
  }
  else
    rc = dpl_fail(DPL_ERR_DEVICE, "oneDNN failed to run an activation it had planned");
done:
  pthread_mutex_unlock(&lock);
  return rc;
}

int64_t dpl_cpu_dnnl_count(bool activations) {
  pthread_mutex_lock(&lock);
  int64_t n = activations ? activations_run : convs_run;
  pthread_mutex_unlock(&lock);
  return n;
}

void dpl_cpu_dnnl_describe(char *out, size_t size) {
  const dnnl_version_t *v = dnnl_version();
  snprintf(out, size, "oneDNN %d.%d.%d convolutions and activations", v->major, v->minor, v->patch);
}

void dpl_cpu_dnnl_release(void) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < PLANS; i++)
    if (plans[i].used_slot) plan_destroy(&plans[i]);
  for (int i = 0; i < ELT_PLANS; i++)
    if (elt_plans[i].alg) elt_destroy(&elt_plans[i]);
  if (stream) dnnl_stream_destroy(stream);
  if (engine) dnnl_engine_destroy(engine);
  stream = NULL;
  engine = NULL;
  pthread_mutex_unlock(&lock);
}

#else  /* built without oneDNN */

bool dpl_cpu_dnnl_enabled(void) { return false; }
int64_t dpl_cpu_dnnl_count(bool activations) {
  DPL_UNUSED(activations);
  return -1;
}
int dpl_cpu_dnnl_unary(int op, int64_t n, float *out, const float *in) {
  DPL_UNUSED(op), DPL_UNUSED(n), DPL_UNUSED(out), DPL_UNUSED(in);
  return DPL_CPU_NOT_HANDLED;
}
void dpl_cpu_dnnl_describe(char *out, size_t size) { snprintf(out, size, "no oneDNN"); }
void dpl_cpu_dnnl_release(void) {}
int dpl_cpu_conv_dnnl_forward(const dpl_conv2d_args *a) {
  DPL_UNUSED(a);
  return DPL_CPU_NOT_HANDLED;
}
int dpl_cpu_conv_dnnl_backward_input(const dpl_conv2d_args *a) {
  DPL_UNUSED(a);
  return DPL_CPU_NOT_HANDLED;
}
int dpl_cpu_conv_dnnl_backward_weight(const dpl_conv2d_args *a) {
  DPL_UNUSED(a);
  return DPL_CPU_NOT_HANDLED;
}

#endif
