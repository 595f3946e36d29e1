/* pth.c - PyTorch checkpoints of a state_dict, read without executing anything.
 *
 * Two containers, told apart by the first bytes (tensor_file.c):
 *  - zip (torch.save since 1.6): a zip archive of STORED members <archive>/data.pkl (the pickle), <archive>/data/<key>
 *    (one raw storage each), <archive>/version and, in recent versions, <archive>/byteorder ("little" or "big"). The
 *    central directory is authoritative (torch writes data descriptors, so local headers hold no sizes); zip64 extra
 *    fields are honoured. Compressed or encrypted members are refused.
 *  - legacy (torch.save before 1.6, or _use_new_zipfile_serialization=False): consecutive pickles - the magic number
 *    0x1950a86a20f9469cfc6c, the protocol version 1001, a sys_info dict (its little_endian flag is honoured), the
 *    object, the list of storage keys - then for each key in that order an 8-byte element count and the raw bytes.
 * Storages appear in the object pickle as persistent ids ('storage', torch.<T>Storage, key, location, numel[, view])
 * where view is None or (view_key, offset, size) in elements (storage views of very old files).
 *
 * The unpickler is a safe subset. Opcodes: PROTO FRAME STOP MARK POP POP_MARK DUP, NONE NEWTRUE NEWFALSE, BININT
 * BININT1 BININT2 LONG1 LONG4 BINFLOAT, BINSTRING SHORT_BINSTRING BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINBYTES
 * SHORT_BINBYTES BINBYTES8, EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3, EMPTY_LIST LIST APPEND APPENDS, EMPTY_DICT DICT
 * SETITEM SETITEMS, BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET, GLOBAL STACK_GLOBAL, REDUCE NEWOBJ BUILD BINPERSID.
 * Any other opcode (the text-mode protocol 0 ones, INST, OBJ, EXT*, sets, NEWOBJ_EX, ...) is an error. Globals: only
 * collections.OrderedDict (and PyTorch Lightning's AttributeDict, read as one), torch._utils._rebuild_tensor_v2 /
 * _rebuild_tensor / _rebuild_parameter / _rebuild_parameter_with_state and the storage types torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,
 * Bool}Storage; anything else is refused with an error naming it. REDUCE calls only the rebuild functions (with the
 * argument types PyTorch writes) and OrderedDict (empty, or from a list of pairs as Python 2 pickles it); NEWOBJ only
 * OrderedDict; a storage type can only be named by a persistent id. BUILD on a dict (the state_dict's _metadata) or
 * a tensor ignores the state; on anything else it is an error. Nothing is ever called: a "call" builds a value.
 * A checkpoint that also pickles other Python objects (an argparse.Namespace, numpy scalars, ...) is therefore refused
 * as a whole, naming the first such global.
 *
 * The top-level object must be a dict (or OrderedDict). Its tensors become the entries, in dict order; dicts nested
 * in it are flattened with dotted names ({'model': {'fc.w': t}, 'epoch': 3} -> "model.fc.w"; int keys in decimal);
 * other values (numbers, strings, lists, None) are skipped. A name that appears twice is an error.
 *
 * Limits, so that a hostile file cannot exhaust memory or time: every read is bounds-checked against the file (or the
 * zip member); a string is at most 64 MiB and never longer than the bytes left; the stack holds at most 1M items,
 * 64K marks; memo indices are below 16M and at most 256 past the memo's end; the unpickler's objects, arrays and memo
 * together stay under 1 GiB; nested dicts at most 32 deep; names at most 64 KiB (256 MiB in all); at most 1M tensors
 * and storages; flattening visits at most 16M dict items (shared dicts cannot multiply the work). Every loop is linear
 * in the input. */
#include "tensor_file.h"
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAX_STRING = 64 << 20,
  MAX_STACK = 1 << 20,
  MAX_MARKS = 1 << 16,
  MAX_MEMO = 1 << 24,
  MEMO_GAP = 256,
  MAX_GLOBAL_LINE = 256,
  MAX_DEPTH = 32,
  MAX_NAME = 1 << 16,
  MAX_ENTRIES = 1 << 20,
};
static const uint64_t MAX_BUDGET = 1ull << 30;
static const uint64_t MAX_VISITS = 1ull << 24;
static const uint64_t MAX_NAME_BYTES = 1ull << 28;   /* name bytes copied while flattening, and stored */

/* ---- a string -> int hash map (keys are borrowed, not copied) -------------------------------------------------- */
typedef struct smap_slot { const char *key; size_t len; uint64_t hash; int value; } smap_slot;
typedef struct smap { smap_slot *slots; size_t cap, count; } smap;

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static int smap_get(const smap *m, const char *key, size_t len) {
  if (!m->cap) return -1;
  uint64_t h = hash_bytes(key, len);
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    const smap_slot *s = &m->slots[i];
    if (!s->key) return -1;
    if (s->hash == h && s->len == len && !memcmp(s->key, key, len)) return s->value;
  }
}

/* Inserts key -> value; returns 0, 1 when the key was already there (value unchanged), -1 on out-of-memory. */
static int smap_put(smap *m, const char *key, size_t len, int value) {
  if (smap_get(m, key, len) >= 0) return 1;
  if (2 * (m->count + 1) > m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    smap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->slots[i].key) continue;
      size_t j = m->slots[i].hash & (cap - 1);
      while (slots[j].key) j = (j + 1) & (cap - 1);
      slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
  }
  uint64_t h = hash_bytes(key, len);
  size_t i = h & (m->cap - 1);
  while (m->slots[i].key) i = (i + 1) & (m->cap - 1);
  m->slots[i] = (smap_slot){key, len, h, value};
  m->count++;
  return 0;
}

static void smap_free(smap *m) { free(m->slots); memset(m, 0, sizeof *m); }

/* ---- reading the file ------------------------------------------------------------------------------------------ */
static int read_at(dpl_tensor_file *f, uint64_t off, void *dst, size_t n) {
  if (off > f->file_size || n > f->file_size - off || off > (uint64_t)LONG_MAX) return -1;
  if (fseek(f->file, (long)off, SEEK_SET) != 0) return -1;
  return fread(dst, 1, n, f->file) == n ? 0 : -1;
}

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* A buffered byte source over [pos, end) of the file: the pickle stream. */
typedef struct src {
  FILE *fp;
  uint64_t pos, end;
  uint64_t bstart;
  size_t blen;
  unsigned char buf[1 << 16];
} src;

static int src_read(src *s, void *dst, size_t n) {
  if (n > s->end - s->pos) return -1;
  unsigned char *d = dst;
  while (n) {
    if (s->pos < s->bstart || s->pos >= s->bstart + s->blen) {
      uint64_t want = s->end - s->pos;
      if (want > sizeof s->buf) want = sizeof s->buf;
      if (s->pos > (uint64_t)LONG_MAX || fseek(s->fp, (long)s->pos, SEEK_SET) != 0) return -1;
      size_t got = fread(s->buf, 1, (size_t)want, s->fp);
      if (got == 0) return -1;
      s->bstart = s->pos;
      s->blen = got;
    }
    size_t off = (size_t)(s->pos - s->bstart), k = s->blen - off;
    if (k > n) k = n;
    memcpy(d, s->buf + off, k);
    d += k;
    n -= k;
    s->pos += k;
  }
  return 0;
}

/* ---- pickle values --------------------------------------------------------------------------------------------- */
typedef enum otype {
  O_NONE, O_BOOL, O_INT, O_BIGINT, O_FLOAT, O_STR, O_TUPLE, O_LIST, O_DICT, O_GLOBAL, O_STORAGE, O_TENSOR
} otype;
static const char *otype_name[] = {"None", "bool", "int", "int", "float", "str", "tuple", "list", "dict", "global",
                                   "storage", "tensor"};

enum { G_ODICT, G_REBUILD_V2, G_REBUILD, G_PARAM, G_PARAM_STATE, G_STORAGE /* + tf_dtype */ };

typedef struct tensor_val {
  struct obj *storage;
  int64_t offset;
  int ndim;
  int64_t shape[DPL_MAX_DIMS], stride[DPL_MAX_DIMS];
} tensor_val;

typedef struct obj {
  otype t;
  int g;                                                       /* O_GLOBAL */
  union {
    int64_t i;                                                 /* O_INT, O_BOOL */
    double d;                                                  /* O_FLOAT */
    struct { char *s; size_t len; } str;                       /* O_STR; O_BIGINT: little-endian bytes */
    struct { struct obj **it; size_t n, cap; } seq;            /* O_TUPLE, O_LIST; O_DICT: key, value, key, ... */
    struct { int st; tf_dtype dtype; int64_t off, numel; } sto; /* O_STORAGE: table index, type, view (numel -1: all) */
    tensor_val *ten;                                           /* O_TENSOR */
  };
} obj;

typedef struct storage_rec {
  const char *key;             /* borrowed from the pickle's string */
  size_t klen;
  tf_dtype dtype;              /* of its first reference (the legacy format sizes its data with it) */
  int64_t numel;
  int located;
  uint64_t data_offset, data_bytes;
  int member;                  /* zip: the member holding the data (its CRC-32 is checked when read); legacy: -1 */
  uint32_t crc;
} storage_rec;

typedef struct up {
  dpl_tensor_file *f;
  const char *path;
  src *in;
  uint64_t budget;
  obj **objs;
  size_t nobjs, capobjs;
  obj **stack;
  size_t sp, scap;
  size_t *marks;
  size_t nmarks, mcap;
  obj **memo;
  size_t nmemo, memocap, memo_count;
  storage_rec *st;
  size_t nst, capst;
  smap stmap;
  uint64_t visits, name_bytes;
  uint64_t op_pos;
} up;

static int fail(up *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(up *u, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return dpl_fail(DPL_ERR_IO, "%s: %s", u->path, msg);
}

static int corrupt(up *u, const char *what) {
  return fail(u, "corrupt pickle at byte %llu: %s", (unsigned long long)u->op_pos, what);
}

/* Grows an array to hold `need` elements, counting the growth against the budget. */
static int grow(up *u, void **p, size_t *cap, size_t need, size_t elsize) {
  if (need <= *cap) return DPL_OK;
  size_t cap2 = *cap ? *cap : 8;
  while (cap2 < need) cap2 *= 2;
  uint64_t add = (uint64_t)(cap2 - *cap) * elsize;
  if (u->budget + add > MAX_BUDGET) return fail(u, "the pickle needs more than %llu MiB (too many objects)",
                                                (unsigned long long)(MAX_BUDGET >> 20));
  void *q = realloc(*p, cap2 * elsize);
  if (!q) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", u->path);
  u->budget += add;
  *p = q;
  *cap = cap2;
  return DPL_OK;
}

static obj *new_obj(up *u, otype t) {
  if (grow(u, (void **)&u->objs, &u->capobjs, u->nobjs + 1, sizeof(obj *))) return NULL;
  if (u->budget + sizeof(obj) > MAX_BUDGET) {
    fail(u, "the pickle needs more than %llu MiB (too many objects)", (unsigned long long)(MAX_BUDGET >> 20));
    return NULL;
  }
  obj *o = calloc(1, sizeof *o);
  if (!o) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", u->path); return NULL; }
  u->budget += sizeof *o;
  o->t = t;
  u->objs[u->nobjs++] = o;
  return o;
}

static void free_objs(up *u) {
  for (size_t i = 0; i < u->nobjs; i++) {
    obj *o = u->objs[i];
    if (o->t == O_STR || o->t == O_BIGINT) free(o->str.s);
    else if (o->t == O_TUPLE || o->t == O_LIST || o->t == O_DICT) free(o->seq.it);
    else if (o->t == O_TENSOR) free(o->ten);
    free(o);
  }
  free(u->objs);
  u->objs = NULL;
  u->nobjs = u->capobjs = 0;
}

static obj *new_int(up *u, int64_t v) {
  obj *o = new_obj(u, O_INT);
  if (o) o->i = v;
  return o;
}

static int seq_append(up *u, obj *s, obj *v) {
  if (grow(u, (void **)&s->seq.it, &s->seq.cap, s->seq.n + 1, sizeof(obj *))) return -1;
  s->seq.it[s->seq.n++] = v;
  return 0;
}

static obj *new_seq(up *u, otype t, obj *const *items, size_t n) {
  obj *o = new_obj(u, t);
  if (!o) return NULL;
  if (n && grow(u, (void **)&o->seq.it, &o->seq.cap, n, sizeof(obj *))) return NULL;
  if (n) memcpy(o->seq.it, items, n * sizeof(obj *));
  o->seq.n = n;
  return o;
}

/* ---- the stack ------------------------------------------------------------------------------------------------- */
static size_t stack_base(const up *u) { return u->nmarks ? u->marks[u->nmarks - 1] : 0; }

static int push(up *u, obj *o) {
  if (!o) return -1;
  if (u->sp >= MAX_STACK) return corrupt(u, "stack too deep");
  if (grow(u, (void **)&u->stack, &u->scap, u->sp + 1, sizeof(obj *))) return -1;
  u->stack[u->sp++] = o;
  return 0;
}

static obj *pop(up *u) {
  if (u->sp <= stack_base(u)) { corrupt(u, "stack underflow"); return NULL; }
  return u->stack[--u->sp];
}

static obj *top(up *u) {
  if (u->sp <= stack_base(u)) { corrupt(u, "stack underflow"); return NULL; }
  return u->stack[u->sp - 1];
}

/* Pops back to the last MARK; the items above it are stack[*from .. sp) until the next push. */
static int pop_mark(up *u, size_t *from) {
  if (!u->nmarks) return corrupt(u, "no MARK on the stack");
  *from = u->marks[--u->nmarks];
  return 0;
}

/* ---- reading pickle operands ----------------------------------------------------------------------------------- */
static int rd(up *u, void *dst, size_t n) {
  if (src_read(u->in, dst, n)) return fail(u, "truncated pickle (ends inside the opcode at byte %llu)",
                                           (unsigned long long)u->op_pos);
  return 0;
}

static int rd_u(up *u, int n, uint64_t *v) {
  unsigned char b[8];
  if (rd(u, b, (size_t)n)) return -1;
  *v = 0;
  for (int i = n - 1; i >= 0; i--) *v = *v << 8 | b[i];
  return 0;
}

static obj *read_string(up *u, uint64_t len, otype t) {
  if (len > MAX_STRING) { corrupt(u, "a string or integer longer than 64 MiB"); return NULL; }
  if (len > u->in->end - u->in->pos) {
    fail(u, "truncated pickle (a string at byte %llu runs past the end)", (unsigned long long)u->op_pos);
    return NULL;
  }
  if (u->budget + len + 1 > MAX_BUDGET) {
    fail(u, "the pickle needs more than %llu MiB (strings too long)", (unsigned long long)(MAX_BUDGET >> 20));
    return NULL;
  }
  obj *o = new_obj(u, t);
  if (!o) return NULL;
  o->str.s = malloc((size_t)len + 1);
  if (!o->str.s) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", u->path); return NULL; }
  u->budget += len + 1;
  if (rd(u, o->str.s, (size_t)len)) return NULL;
  o->str.s[len] = 0;
  o->str.len = (size_t)len;
  return o;
}

/* bytes of the file (a name, a key) quoted for a message: see dpl_quote */
typedef struct quoted { char s[DPL_QUOTE_CAP]; } quoted;
static quoted q(const char *s, size_t len) {
  quoted r;
  dpl_quote(r.s, sizeof r.s, s, len);
  return r;
}
#define QS(str) (q((str), strlen(str)).s)

static obj *find_global(up *u, const char *module, size_t mlen, const char *name, size_t nlen) {
  static const struct { const char *module, *name; int g; } allowed[] = {
    {"collections", "OrderedDict", G_ODICT},
    /* PyTorch Lightning's hyper-parameters (a dict subclass, pickled as NEWOBJ + SETITEMS): read as a dict */
    {"pytorch_lightning.utilities.parsing", "AttributeDict", G_ODICT},
    {"lightning_fabric.utilities.data", "AttributeDict", G_ODICT},
    {"lightning.fabric.utilities.data", "AttributeDict", G_ODICT},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2},
    {"torch._utils", "_rebuild_tensor", G_REBUILD},
    {"torch._utils", "_rebuild_parameter", G_PARAM},
    {"torch._utils", "_rebuild_parameter_with_state", G_PARAM_STATE},
    {"torch", "FloatStorage", G_STORAGE + TF_F32},
    {"torch", "DoubleStorage", G_STORAGE + TF_F64},
    {"torch", "HalfStorage", G_STORAGE + TF_F16},
    {"torch", "BFloat16Storage", G_STORAGE + TF_BF16},
    {"torch", "LongStorage", G_STORAGE + TF_I64},
    {"torch", "IntStorage", G_STORAGE + TF_I32},
    {"torch", "ShortStorage", G_STORAGE + TF_I16},
    {"torch", "CharStorage", G_STORAGE + TF_I8},
    {"torch", "ByteStorage", G_STORAGE + TF_U8},
    {"torch", "BoolStorage", G_STORAGE + TF_BOOL},
  };
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
    if (strlen(allowed[i].module) == mlen && !memcmp(allowed[i].module, module, mlen) &&
        strlen(allowed[i].name) == nlen && !memcmp(allowed[i].name, name, nlen)) {
      obj *o = new_obj(u, O_GLOBAL);
      if (o) o->g = allowed[i].g;
      return o;
    }
  }
  fail(u, "refusing to load: the pickle asks for global '%s.%s' (only state_dict contents are allowed)",
       q(module, mlen).s, q(name, nlen).s);
  return NULL;
}

static int read_line(up *u, char *buf, size_t *len) {
  for (size_t n = 0; n < MAX_GLOBAL_LINE; n++) {
    if (rd(u, buf + n, 1)) return -1;
    if (buf[n] == '\n') { buf[n] = 0; *len = n; return 0; }
  }
  return corrupt(u, "GLOBAL name too long");
}

/* ---- building values ------------------------------------------------------------------------------------------- */
static int is_int(const obj *o) { return o->t == O_INT || o->t == O_BOOL; }

/* ('storage', torch.<T>Storage, key, location, numel[, view]) -> a storage value */
static obj *persistent_load(up *u, obj *pid) {
  if (pid->t != O_TUPLE || (pid->seq.n != 5 && pid->seq.n != 6)) {
    corrupt(u, "unsupported persistent id (not a storage)");
    return NULL;
  }
  obj **a = pid->seq.it;
  if (a[0]->t != O_STR || strcmp(a[0]->str.s, "storage")) {
    corrupt(u, "unsupported persistent id (not a storage)");
    return NULL;
  }
  if (a[1]->t != O_GLOBAL || a[1]->g < G_STORAGE) { corrupt(u, "persistent id without a storage type"); return NULL; }
  if (a[2]->t != O_STR || a[3]->t != O_STR || !is_int(a[4]) || a[4]->i < 0) {
    corrupt(u, "malformed storage persistent id");
    return NULL;
  }
  tf_dtype dtype = (tf_dtype)(a[1]->g - G_STORAGE);
  int64_t off = 0, numel = -1;
  if (pid->seq.n == 6 && a[5]->t != O_NONE) {
    obj *v = a[5];
    if (v->t != O_TUPLE || v->seq.n != 3 || v->seq.it[0]->t != O_STR || !is_int(v->seq.it[1]) ||
        !is_int(v->seq.it[2]) || v->seq.it[1]->i < 0 || v->seq.it[2]->i < 0) {
      corrupt(u, "malformed storage view in a persistent id");
      return NULL;
    }
    off = v->seq.it[1]->i;
    numel = v->seq.it[2]->i;
  }
  if (off > (1ll << 50) || numel > (1ll << 50) || a[4]->i > (1ll << 50)) {
    corrupt(u, "storage too large");
    return NULL;
  }
  int idx = smap_get(&u->stmap, a[2]->str.s, a[2]->str.len);
  if (idx < 0) {
    if (u->nst >= MAX_ENTRIES) { corrupt(u, "too many storages"); return NULL; }
    if (grow(u, (void **)&u->st, &u->capst, u->nst + 1, sizeof *u->st)) return NULL;
    idx = (int)u->nst;
    u->st[u->nst++] = (storage_rec){a[2]->str.s, a[2]->str.len, dtype, a[4]->i, 0, 0, 0, -1, 0};
    if (smap_put(&u->stmap, a[2]->str.s, a[2]->str.len, idx) < 0) {
      dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", u->path);
      return NULL;
    }
  }
  obj *o = new_obj(u, O_STORAGE);
  if (!o) return NULL;
  o->sto.st = idx;
  o->sto.dtype = dtype;
  o->sto.off = off;
  o->sto.numel = numel;
  return o;
}

static int int_tuple(const obj *o, int64_t *out, int *n) {
  if (o->t != O_TUPLE || o->seq.n > DPL_MAX_DIMS) return -1;
  for (size_t i = 0; i < o->seq.n; i++) {
    if (!is_int(o->seq.it[i])) return -1;
    out[i] = o->seq.it[i]->i;
  }
  *n = (int)o->seq.n;
  return 0;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) or
 * _rebuild_tensor(storage, storage_offset, size, stride) */
static obj *make_tensor(up *u, obj *args) {
  obj **a = args->seq.it;
  if (a[0]->t != O_STORAGE || !is_int(a[1]) || a[2]->t != O_TUPLE || a[3]->t != O_TUPLE) {
    corrupt(u, "malformed tensor (expected storage, offset, size, stride)");
    return NULL;
  }
  if (a[2]->seq.n > DPL_MAX_DIMS) {
    fail(u, "a tensor has %zu dims (at most %d are supported)", a[2]->seq.n, (int)DPL_MAX_DIMS);
    return NULL;
  }
  tensor_val tv = {.storage = a[0], .offset = a[1]->i};
  int nd, ns;
  if (int_tuple(a[2], tv.shape, &nd) || int_tuple(a[3], tv.stride, &ns) || nd != ns) {
    corrupt(u, "malformed tensor size or stride");
    return NULL;
  }
  tv.ndim = nd;
  obj *o = new_obj(u, O_TENSOR);
  if (!o) return NULL;
  o->ten = malloc(sizeof *o->ten);
  if (!o->ten) { o->t = O_NONE; dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", u->path); return NULL; }
  *o->ten = tv;
  u->budget += sizeof tv;
  return o;
}

/* OrderedDict() or OrderedDict([[k, v], ...]) */
static obj *make_odict(up *u, obj *args) {
  obj *d = new_obj(u, O_DICT);
  if (!d) return NULL;
  if (args->seq.n == 0) return d;
  obj *items = args->seq.it[0];
  if (args->seq.n != 1 || (items->t != O_LIST && items->t != O_TUPLE)) {
    corrupt(u, "OrderedDict called with unsupported arguments");
    return NULL;
  }
  for (size_t i = 0; i < items->seq.n; i++) {
    obj *p = items->seq.it[i];
    if ((p->t != O_LIST && p->t != O_TUPLE) || p->seq.n != 2) {
      corrupt(u, "OrderedDict item is not a pair");
      return NULL;
    }
    if (seq_append(u, d, p->seq.it[0]) || seq_append(u, d, p->seq.it[1])) return NULL;
  }
  return d;
}

static obj *call(up *u, obj *fn, obj *args, int newobj) {
  if (fn->t != O_GLOBAL) {
    char what[64];
    snprintf(what, sizeof what, "%s a %s", newobj ? "NEWOBJ on" : "REDUCE calls", otype_name[fn->t]);
    corrupt(u, what);
    return NULL;
  }
  if (args->t != O_TUPLE) { corrupt(u, "call arguments are not a tuple"); return NULL; }
  size_t n = args->seq.n;
  if (fn->g == G_ODICT) return make_odict(u, args);
  if (newobj) { corrupt(u, "NEWOBJ on a class other than OrderedDict"); return NULL; }
  switch (fn->g) {
  case G_REBUILD_V2:
    if (n < 6 || n > 7) break;
    return make_tensor(u, args);
  case G_REBUILD:
    if (n != 4) break;
    return make_tensor(u, args);
  case G_PARAM:
  case G_PARAM_STATE:
    if (n != (fn->g == G_PARAM ? 3u : 4u) || args->seq.it[0]->t != O_TENSOR) break;
    return args->seq.it[0];
  default:
    corrupt(u, "a storage type can only appear in a persistent id");
    return NULL;
  }
  corrupt(u, "a tensor rebuild function called with unexpected arguments");
  return NULL;
}

/* ---- the unpickler --------------------------------------------------------------------------------------------- */
static int memo_put(up *u, uint64_t idx) {
  obj *o = top(u);
  if (!o) return -1;
  if (idx >= MAX_MEMO || idx > u->nmemo + MEMO_GAP) return corrupt(u, "memo index out of range");
  if (idx >= u->nmemo) {
    if (grow(u, (void **)&u->memo, &u->memocap, (size_t)idx + 1, sizeof(obj *))) return -1;
    for (size_t i = u->nmemo; i <= idx; i++) u->memo[i] = NULL;
    u->nmemo = (size_t)idx + 1;
  }
  if (!u->memo[idx]) u->memo_count++;
  u->memo[idx] = o;
  return 0;
}

static int memo_get(up *u, uint64_t idx) {
  if (idx >= u->nmemo || !u->memo[idx]) return corrupt(u, "memo index not defined");
  return push(u, u->memo[idx]);
}

/* Reads one pickle from u->in (up to its STOP) into *out. Objects live until free_objs. */
static int unpickle(up *u, obj **out) {
  u->sp = 0;
  u->nmarks = 0;
  u->nmemo = u->memo_count = 0;
  for (;;) {
    unsigned char op;
    uint64_t v;
    u->op_pos = u->in->pos;
    if (src_read(u->in, &op, 1))
      return fail(u, "truncated pickle (no STOP before byte %llu)", (unsigned long long)u->op_pos);
    switch (op) {
    case 0x80: /* PROTO */
      if (rd_u(u, 1, &v)) return -1;
      if (v > 5) return corrupt(u, "unsupported pickle protocol");
      break;
    case 0x95: /* FRAME */
      if (rd_u(u, 8, &v)) return -1;
      break;
    case '.': { /* STOP */
      obj *o = pop(u);
      if (!o) return -1;
      *out = o;
      return 0;
    }
    case '(': /* MARK */
      if (u->nmarks >= MAX_MARKS) return corrupt(u, "too many MARKs");
      if (grow(u, (void **)&u->marks, &u->mcap, u->nmarks + 1, sizeof(size_t))) return -1;
      u->marks[u->nmarks++] = u->sp;
      break;
    case '0': /* POP */
      if (u->sp > stack_base(u)) u->sp--;
      else { size_t from = 0; if (pop_mark(u, &from)) return -1; u->sp = from; }
      break;
    case '1': { /* POP_MARK */
      size_t from = 0;
      if (pop_mark(u, &from)) return -1;
      u->sp = from;
      break;
    }
    case '2': { /* DUP */
      obj *o = top(u);
      if (!o || push(u, o)) return -1;
      break;
    }
    case 'N': if (push(u, new_obj(u, O_NONE))) return -1; break;
    case 0x88: case 0x89: { /* NEWTRUE, NEWFALSE */
      obj *o = new_obj(u, O_BOOL);
      if (o) o->i = op == 0x88;
      if (push(u, o)) return -1;
      break;
    }
    case 'J': /* BININT */
      if (rd_u(u, 4, &v) || push(u, new_int(u, (int32_t)(uint32_t)v))) return -1;
      break;
    case 'K': if (rd_u(u, 1, &v) || push(u, new_int(u, (int64_t)v))) return -1; break;
    case 'M': if (rd_u(u, 2, &v) || push(u, new_int(u, (int64_t)v))) return -1; break;
    case 0x8a: case 0x8b: { /* LONG1, LONG4: little-endian two's complement */
      uint64_t n;
      if (rd_u(u, op == 0x8a ? 1 : 4, &n)) return -1;
      if (op == 0x8b && (n & 0x80000000u)) return corrupt(u, "negative LONG4 length");
      if (n <= 8) {
        unsigned char b[8] = {0};
        if (rd(u, b, (size_t)n)) return -1;
        uint64_t x = 0;
        for (int i = (int)n - 1; i >= 0; i--) x = x << 8 | b[i];
        if (n && n < 8 && (b[n - 1] & 0x80)) x |= ~0ull << (8 * n);
        if (push(u, new_int(u, (int64_t)x))) return -1;
      } else if (push(u, read_string(u, n, O_BIGINT))) return -1;
      break;
    }
    case 'G': { /* BINFLOAT, big-endian */
      unsigned char b[8];
      if (rd(u, b, 8)) return -1;
      uint64_t x = 0;
      for (int i = 0; i < 8; i++) x = x << 8 | b[i];
      obj *o = new_obj(u, O_FLOAT);
      if (o) memcpy(&o->d, &x, 8);
      if (push(u, o)) return -1;
      break;
    }
    case 'X': case 'B': /* BINUNICODE, BINBYTES */
      if (rd_u(u, 4, &v) || push(u, read_string(u, v, O_STR))) return -1;
      break;
    case 'T': /* BINSTRING: signed length */
      if (rd_u(u, 4, &v)) return -1;
      if (v & 0x80000000u) return corrupt(u, "negative string length");
      if (push(u, read_string(u, v, O_STR))) return -1;
      break;
    case 'U': case 0x8c: case 'C': /* SHORT_BINSTRING, SHORT_BINUNICODE, SHORT_BINBYTES */
      if (rd_u(u, 1, &v) || push(u, read_string(u, v, O_STR))) return -1;
      break;
    case 0x8d: case 0x8e: /* BINUNICODE8, BINBYTES8 */
      if (rd_u(u, 8, &v) || push(u, read_string(u, v, O_STR))) return -1;
      break;
    case ')': if (push(u, new_seq(u, O_TUPLE, NULL, 0))) return -1; break;
    case ']': if (push(u, new_seq(u, O_LIST, NULL, 0))) return -1; break;
    case '}': if (push(u, new_seq(u, O_DICT, NULL, 0))) return -1; break;
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
      size_t n = (size_t)(op - 0x84);
      if (u->sp < stack_base(u) + n) return corrupt(u, "stack underflow");
      u->sp -= n;
      if (push(u, new_seq(u, O_TUPLE, u->stack + u->sp, n))) return -1;
      break;
    }
    case 't': case 'l': case 'd': { /* TUPLE, LIST, DICT */
      size_t from = 0;
      if (pop_mark(u, &from)) return -1;
      size_t n = u->sp - from;
      if (op == 'd' && n % 2) return corrupt(u, "DICT with an odd number of items");
      obj *o = new_seq(u, op == 't' ? O_TUPLE : op == 'l' ? O_LIST : O_DICT, n ? u->stack + from : NULL, n);
      u->sp = from;
      if (push(u, o)) return -1;
      break;
    }
    case 'a': { /* APPEND */
      obj *x = pop(u), *l = x ? top(u) : NULL;
      if (!l) return -1;
      if (l->t != O_LIST) return corrupt(u, "APPEND to something other than a list");
      if (seq_append(u, l, x)) return -1;
      break;
    }
    case 'e': case 'u': { /* APPENDS, SETITEMS */
      size_t from = 0;
      if (pop_mark(u, &from)) return -1;
      size_t n = u->sp - from;
      u->sp = from;
      obj *c = top(u);
      if (!c) return -1;
      if (op == 'e' && c->t != O_LIST) return corrupt(u, "APPENDS to something other than a list");
      if (op == 'u' && c->t != O_DICT) return corrupt(u, "SETITEMS on something other than a dict");
      if (op == 'u' && n % 2) return corrupt(u, "SETITEMS with an odd number of items");
      if (grow(u, (void **)&c->seq.it, &c->seq.cap, c->seq.n + n, sizeof(obj *))) return -1;
      /* the popped items are still in the stack array above sp */
      if (n) memcpy(c->seq.it + c->seq.n, u->stack + from, n * sizeof(obj *));
      c->seq.n += n;
      break;
    }
    case 's': { /* SETITEM */
      obj *val = pop(u), *key = val ? pop(u) : NULL, *d = key ? top(u) : NULL;
      if (!d) return -1;
      if (d->t != O_DICT) return corrupt(u, "SETITEM on something other than a dict");
      if (seq_append(u, d, key) || seq_append(u, d, val)) return -1;
      break;
    }
    case 'q': if (rd_u(u, 1, &v) || memo_put(u, v)) return -1; break;
    case 'r': if (rd_u(u, 4, &v) || memo_put(u, v)) return -1; break;
    case 0x94: if (memo_put(u, u->memo_count)) return -1; break; /* MEMOIZE */
    case 'h': if (rd_u(u, 1, &v) || memo_get(u, v)) return -1; break;
    case 'j': if (rd_u(u, 4, &v) || memo_get(u, v)) return -1; break;
    case 'c': { /* GLOBAL "module\nname\n" */
      char module[MAX_GLOBAL_LINE], name[MAX_GLOBAL_LINE];
      size_t ml = 0, nl = 0;
      if (read_line(u, module, &ml) || read_line(u, name, &nl)) return -1;
      if (push(u, find_global(u, module, ml, name, nl))) return -1;
      break;
    }
    case 0x93: { /* STACK_GLOBAL */
      obj *name = pop(u), *module = name ? pop(u) : NULL;
      if (!module) return -1;
      if (name->t != O_STR || module->t != O_STR) return corrupt(u, "STACK_GLOBAL without strings");
      if (push(u, find_global(u, module->str.s, module->str.len, name->str.s, name->str.len))) return -1;
      break;
    }
    case 'R': case 0x81: { /* REDUCE, NEWOBJ */
      obj *args = pop(u), *fn = args ? pop(u) : NULL;
      if (!fn || push(u, call(u, fn, args, op == 0x81))) return -1;
      break;
    }
    case 'b': { /* BUILD: state ignored on dicts (_metadata) and tensors */
      obj *state = pop(u), *o = state ? top(u) : NULL;
      if (!o) return -1;
      if (o->t != O_DICT && o->t != O_TENSOR) return corrupt(u, "BUILD on an object that is not a dict or a tensor");
      break;
    }
    case 'Q': { /* BINPERSID */
      obj *pid = pop(u);
      if (!pid || push(u, persistent_load(u, pid))) return -1;
      break;
    }
    default: {
      char what[80];
      if (op >= 32 && op < 127) snprintf(what, sizeof what, "unsupported pickle opcode 0x%02x ('%c')", op, op);
      else snprintf(what, sizeof what, "unsupported pickle opcode 0x%02x", op);
      return corrupt(u, what);
    }
    }
  }
}

/* ---- from the unpickled dict to the index ---------------------------------------------------------------------- */
static int add_tensor(up *u, const char *name, const obj *t, smap *names) {
  dpl_tensor_file *f = u->f;
  const tensor_val *tv = t->ten;
  const obj *so = tv->storage;
  const storage_rec *sr = &u->st[so->sto.st];
  if (f->n >= MAX_ENTRIES) return fail(u, "more than %d tensors", (int)MAX_ENTRIES);
  if (!sr->located) return fail(u, "storage '%s' of tensor '%s' has no data", q(sr->key, sr->klen).s, QS(name));
  tf_entry *e = tf_add(f, name);
  if (!e) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", u->path);
  int r = smap_put(names, e->name, strlen(e->name), f->n - 1);
  if (r < 0) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", u->path);
  if (r > 0) return fail(u, "tensor name '%s' appears twice", QS(name));
  uint64_t es = (uint64_t)tf_element_size(so->sto.dtype);
  uint64_t off = (uint64_t)so->sto.off * es;  /* both bounded in persistent_load */
  if (off > sr->data_bytes) return fail(u, "tensor '%s': storage view outside its storage", QS(name));
  e->dtype = so->sto.dtype;
  e->ndim = tv->ndim;
  for (int d = 0; d < tv->ndim; d++) { e->shape[d] = tv->shape[d]; e->stride[d] = tv->stride[d]; }
  e->storage_offset = tv->offset;
  e->group = (int64_t)so->sto.st * TF_DTYPE_COUNT + so->sto.dtype;   /* one storage read as one dtype */
  e->group_offset = sr->data_offset;
  e->group_bytes = sr->data_bytes;
  e->crc_member = sr->member;
  e->crc = sr->crc;
  e->data_offset = sr->data_offset + off;
  e->data_bytes = sr->data_bytes - off;
  if (so->sto.numel >= 0 && (uint64_t)so->sto.numel * es < e->data_bytes) e->data_bytes = (uint64_t)so->sto.numel * es;
  return tf_check_entry(f, e);
}

static int flatten(up *u, const obj *d, char *name, size_t nlen, int depth, smap *names) {
  for (size_t i = 0; i + 1 < d->seq.n; i += 2) {
    const obj *k = d->seq.it[i], *val = d->seq.it[i + 1];
    if (++u->visits > MAX_VISITS) return fail(u, "too many dict items to walk (shared or cyclic dicts?)");
    if (val->t != O_TENSOR && val->t != O_DICT) continue;
    char kbuf[32];
    const char *ks;
    size_t kl;
    if (k->t == O_STR) {
      ks = k->str.s;
      kl = k->str.len;
      if (memchr(ks, 0, kl)) return fail(u, "a tensor name contains a NUL byte ('%s')", q(ks, kl).s);
    }
    else if (k->t == O_INT) { snprintf(kbuf, sizeof kbuf, "%lld", (long long)k->i); ks = kbuf; kl = strlen(kbuf); }
    else continue;
    size_t n = nlen;
    if (depth > 0) {
      if (n + 1 > MAX_NAME) return fail(u, "a tensor name is longer than %d bytes", (int)MAX_NAME);
      name[n++] = '.';
    }
    if (kl > MAX_NAME - n) return fail(u, "a tensor name is longer than %d bytes", (int)MAX_NAME);
    u->name_bytes += kl + (val->t == O_TENSOR ? n + kl : 0);
    if (u->name_bytes > MAX_NAME_BYTES) return fail(u, "the tensor names are too long in total (shared dicts?)");
    memcpy(name + n, ks, kl);
    n += kl;
    name[n] = 0;
    if (val->t == O_DICT) {
      if (depth + 1 >= MAX_DEPTH) return fail(u, "dicts nested more than %d deep (at '%s')", (int)MAX_DEPTH, QS(name));
      if (flatten(u, val, name, n, depth + 1, names)) return -1;
    } else if (add_tensor(u, name, val, names)) return -1;
  }
  return 0;
}

static int build_index(up *u, const obj *root) {
  if (root->t != O_DICT)
    return fail(u, "the checkpoint holds a %s, not a dict of tensors (a state_dict)", otype_name[root->t]);
  char *name = malloc(MAX_NAME + 1);
  if (!name) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", u->path);
  smap names = {0};
  name[0] = 0;
  int rc = flatten(u, root, name, 0, 0, &names);
  smap_free(&names);
  free(name);
  return rc ? dpl_last_status() : DPL_OK;
}

/* ---- zip ------------------------------------------------------------------------------------------------------- */
typedef struct zmember {
  char *name;
  size_t nlen;
  int method, flags;
  uint32_t crc;
  uint64_t csize, usize, lho;
} zmember;

typedef struct zdir {
  zmember *m;
  size_t n;
  smap map;
} zdir;

static void zdir_free(zdir *z) {
  for (size_t i = 0; i < z->n; i++) free(z->m[i].name);
  free(z->m);
  smap_free(&z->map);
}

static int zip_bad(dpl_tensor_file *f, const char *what) {
  return dpl_fail(DPL_ERR_IO, "%s: corrupt zip archive (%s)", f->path, what);
}

static int zip_read_dir(dpl_tensor_file *f, zdir *z) {
  if (f->file_size < 22) return zip_bad(f, "too short");
  uint64_t tail = f->file_size < 22 + 65535 ? f->file_size : 22 + 65535;
  unsigned char *t = malloc((size_t)tail);
  if (!t) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
  if (read_at(f, f->file_size - tail, t, (size_t)tail)) { free(t); return zip_bad(f, "unreadable end"); }
  int64_t at = -1;
  for (int64_t i = (int64_t)tail - 22; i >= 0; i--)
    if (le32(t + i) == 0x06054b50u && (uint64_t)i + 22 + le16(t + i + 20) <= tail) { at = i; break; }
  if (at < 0) { free(t); return zip_bad(f, "no end of central directory; truncated?"); }
  uint64_t eocd = f->file_size - tail + (uint64_t)at;
  uint64_t entries = le16(t + at + 10), cd_size = le32(t + at + 12), cd_off = le32(t + at + 16), cd_end = eocd;
  free(t);
  if (entries == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
    unsigned char loc[20], z64[56];
    if (eocd < 20 || read_at(f, eocd - 20, loc, 20) || le32(loc) != 0x07064b50u)
      return zip_bad(f, "missing zip64 locator");
    uint64_t z64_off = le64(loc + 8);
    if (z64_off > eocd - 20 || read_at(f, z64_off, z64, 56) || le32(z64) != 0x06064b50u)
      return zip_bad(f, "bad zip64 end of central directory");
    entries = le64(z64 + 32);
    cd_size = le64(z64 + 40);
    cd_off = le64(z64 + 48);
    cd_end = z64_off;
  }
  if (cd_off > cd_end || cd_size > cd_end - cd_off) return zip_bad(f, "central directory outside the file");
  if (entries > cd_size / 46) return zip_bad(f, "entry count does not fit the central directory");
  unsigned char *cd = malloc(cd_size ? (size_t)cd_size : 1);
  if (!cd) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
  if (read_at(f, cd_off, cd, (size_t)cd_size)) { free(cd); return zip_bad(f, "unreadable central directory"); }
  z->m = calloc(entries ? (size_t)entries : 1, sizeof *z->m);
  if (!z->m) { free(cd); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path); }
  uint64_t p = 0;
  int rc = DPL_OK;
  for (uint64_t k = 0; k < entries; k++) {
    if (cd_size - p < 46 || le32(cd + p) != 0x02014b50u) { rc = zip_bad(f, "bad central directory entry"); break; }
    const unsigned char *h = cd + p;
    size_t nl = le16(h + 28), xl = le16(h + 30), cl = le16(h + 32);
    if (cd_size - p - 46 < (uint64_t)nl + xl + cl) { rc = zip_bad(f, "central directory entry overruns"); break; }
    zmember *m = &z->m[z->n];
    m->flags = le16(h + 8);
    m->method = le16(h + 10);
    m->crc = le32(h + 16);
    m->csize = le32(h + 20);
    m->usize = le32(h + 24);
    m->lho = le32(h + 42);
    m->name = malloc(nl + 1);
    if (!m->name) { rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path); break; }
    memcpy(m->name, h + 46, nl);
    m->name[nl] = 0;
    m->nlen = nl;
    z->n++;
    /* zip64 extra: the 64-bit values of the fields that hold 0xffffffff, in the order usize, csize, offset */
    const unsigned char *x = h + 46 + nl, *xe = x + xl;
    while (xe - x >= 4) {
      unsigned id = le16(x), sz = le16(x + 2);
      if ((size_t)(xe - x - 4) < sz) break;
      if (id == 1) {
        const unsigned char *q = x + 4, *qe = q + sz;
        uint64_t *fields[3] = {&m->usize, &m->csize, &m->lho};
        for (int i = 0; i < 3; i++) {
          if (*fields[i] != 0xffffffffu) continue;
          if (qe - q < 8) { rc = zip_bad(f, "short zip64 extra field"); break; }
          *fields[i] = le64(q);
          q += 8;
        }
      }
      if (rc) break;
      x += 4 + sz;
    }
    if (rc) break;
    int r = smap_put(&z->map, m->name, nl, (int)(z->n - 1));
    if (r < 0) { rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path); break; }
    p += 46 + (uint64_t)nl + xl + cl;
  }
  free(cd);
  return rc;
}

/* The absolute offset and size of a member's data; only stored (uncompressed, unencrypted) members. */
static int zip_member_data(dpl_tensor_file *f, const zmember *m, uint64_t *off, uint64_t *size) {
  if (m->flags & 1) return dpl_fail(DPL_ERR_IO, "%s: zip member '%s' is encrypted", f->path, q(m->name, m->nlen).s);
  if (m->method != 0)
    return dpl_fail(DPL_ERR_IO, "%s: zip member '%s' is compressed (method %d); only stored (uncompressed) members "
                    "are supported, as torch.save writes them", f->path, q(m->name, m->nlen).s, m->method);
  if (m->csize != m->usize) return zip_bad(f, "stored member with different sizes");
  unsigned char h[30];
  if (read_at(f, m->lho, h, 30) || le32(h) != 0x04034b50u) return zip_bad(f, "bad local header");
  uint64_t d = m->lho + 30 + le16(h + 26) + le16(h + 28);
  if (d > f->file_size || m->usize > f->file_size - d) return zip_bad(f, "member data outside the file");
  *off = d;
  *size = m->usize;
  return DPL_OK;
}

static const zmember *zip_find(const zdir *z, const char *name) {
  int i = smap_get(&z->map, name, strlen(name));
  return i >= 0 ? &z->m[i] : NULL;
}

static int parse_zip(up *u) {
  dpl_tensor_file *f = u->f;
  zdir z = {0};
  char *name = NULL;
  int rc = zip_read_dir(f, &z);
  if (rc) goto done;
  const zmember *pkl = NULL;
  for (size_t i = 0; i < z.n && !pkl; i++) {
    const char *s = z.m[i].name, *slash = strchr(s, '/');
    if (slash && slash > s && !strcmp(slash, "/data.pkl")) pkl = &z.m[i];
  }
  if (!pkl) { rc = fail(u, "a zip archive without <archive>/data.pkl (not a PyTorch checkpoint)"); goto done; }
  size_t plen = (size_t)(strchr(pkl->name, '/') - pkl->name);
  uint64_t off, size;
  if ((rc = zip_member_data(f, pkl, &off, &size))) goto done;
  if ((rc = tf_check_crc(f, off, size, pkl->crc, pkl->name))) goto done;
  name = malloc(plen + 64);
  if (!name) { rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path); goto done; }
  memcpy(name, pkl->name, plen);
  int big_endian = 0;
  strcpy(name + plen, "/byteorder");
  const zmember *bo = zip_find(&z, name);
  if (bo) {
    uint64_t boff, bsize;
    char b[17] = {0};
    if ((rc = zip_member_data(f, bo, &boff, &bsize))) goto done;
    if (bsize > 16 || read_at(f, boff, b, (size_t)bsize)) { rc = zip_bad(f, "bad byteorder member"); goto done; }
    if ((rc = tf_check_crc(f, boff, bsize, bo->crc, bo->name))) goto done;
    if (!strcmp(b, "big")) big_endian = 1;
    else if (strcmp(b, "little")) { rc = fail(u, "unknown byte order '%s'", q(b, (size_t)bsize).s); goto done; }
  }
  u->in->pos = off;
  u->in->end = off + size;
  obj *root;
  if ((rc = unpickle(u, &root))) goto done;
  for (size_t i = 0; i < u->nst; i++) {
    storage_rec *s = &u->st[i];
    if (s->klen > 4096) { rc = fail(u, "storage key too long"); goto done; }
    char *full = realloc(name, plen + s->klen + 8);
    if (!full) { rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path); goto done; }
    name = full;
    memcpy(name + plen, "/data/", 6);
    memcpy(name + plen + 6, s->key, s->klen);
    name[plen + 6 + s->klen] = 0;
    const zmember *m = zip_find(&z, name);
    if (!m) { rc = fail(u, "storage '%s' is missing from the archive", q(name, plen + 6 + s->klen).s); goto done; }
    if ((rc = zip_member_data(f, m, &s->data_offset, &s->data_bytes))) goto done;
    s->located = 1;
    s->member = (int)(m - z.m);
    s->crc = m->crc;
  }
  if ((rc = build_index(u, root))) goto done;
  for (int i = 0; i < f->n; i++) f->entries[i].big_endian = big_endian;
  f->nmembers = (int)z.n;
  f->format = "pth-zip";
done:
  free(name);
  zdir_free(&z);
  return rc;
}

/* ---- legacy ---------------------------------------------------------------------------------------------------- */
static const obj *dict_get(const obj *d, const char *key) {
  for (size_t i = 0; i + 1 < d->seq.n; i += 2)
    if (d->seq.it[i]->t == O_STR && !strcmp(d->seq.it[i]->str.s, key)) return d->seq.it[i + 1];
  return NULL;
}

static int parse_legacy(up *u) {
  dpl_tensor_file *f = u->f;
  static const unsigned char magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  obj *o, *root, *keys;
  u->in->pos = 0;
  u->in->end = f->file_size;
  if (unpickle(u, &o)) return -1;
  if (o->t != O_BIGINT || o->str.len != 10 || memcmp(o->str.s, magic, 10))
    return fail(u, "not a PyTorch checkpoint (a pickle without the torch.save magic number)");
  if (unpickle(u, &o)) return -1;
  if (o->t != O_INT || o->i != 1001) return fail(u, "unsupported legacy checkpoint protocol version");
  if (unpickle(u, &o)) return -1;
  if (o->t != O_DICT) return fail(u, "corrupt checkpoint (sys_info is not a dict)");
  const obj *le = dict_get(o, "little_endian");
  int big_endian = le && is_int(le) && le->i == 0;
  if (unpickle(u, &root) || unpickle(u, &keys)) return -1;
  if (keys->t != O_LIST) return fail(u, "corrupt checkpoint (the storage key list is not a list)");
  uint64_t pos = u->in->pos;
  for (size_t i = 0; i < keys->seq.n; i++) {
    const obj *k = keys->seq.it[i];
    if (k->t != O_STR) return fail(u, "corrupt checkpoint (a storage key is not a string)");
    int si = smap_get(&u->stmap, k->str.s, k->str.len);
    if (si < 0) return fail(u, "corrupt checkpoint (storage '%s' is listed but never used)", q(k->str.s, k->str.len).s);
    storage_rec *s = &u->st[si];
    if (s->located) return fail(u, "corrupt checkpoint (storage '%s' is listed twice)", q(k->str.s, k->str.len).s);
    unsigned char b[8];
    if (read_at(f, pos, b, 8)) return fail(u, "truncated: the data of storage '%s' is missing", q(k->str.s, k->str.len).s);
    uint64_t count = 0;
    for (int j = 0; j < 8; j++) count = big_endian ? count << 8 | b[j] : count | (uint64_t)b[j] << (8 * j);
    uint64_t es = (uint64_t)tf_element_size(s->dtype), left = f->file_size - pos - 8;
    if (count != (uint64_t)s->numel)
      return fail(u, "corrupt checkpoint (storage '%s' holds %llu elements, expected %lld)", q(k->str.s, k->str.len).s,
                  (unsigned long long)count, (long long)s->numel);
    if (count > left / es)
      return fail(u, "truncated: the data of storage '%s' ends past the end of the file", q(k->str.s, k->str.len).s);
    s->data_offset = pos + 8;
    s->data_bytes = count * es;
    s->located = 1;
    pos += 8 + count * es;
  }
  if (build_index(u, root)) return -1;
  for (int i = 0; i < f->n; i++) f->entries[i].big_endian = big_endian;
  f->format = "pth-legacy";
  return DPL_OK;
}

int dpl_pth_parse(dpl_tensor_file *f) {
  up *u = calloc(1, sizeof *u);
  src *in = malloc(sizeof *in);
  if (!u || !in) { free(u); free(in); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path); }
  memset(in, 0, offsetof(src, buf));
  in->fp = f->file;
  u->f = f;
  u->path = f->path;
  u->in = in;
  unsigned char head[4] = {0};
  int rc;
  if (read_at(f, 0, head, 4) == 0 && !memcmp(head, "PK\x03\x04", 4)) rc = parse_zip(u);
  else rc = parse_legacy(u);
  if (rc) rc = dpl_last_status() ? dpl_last_status() : DPL_ERR_IO;
  free_objs(u);
  free(u->stack);
  free(u->marks);
  free(u->memo);
  free(u->st);
  smap_free(&u->stmap);
  free(u);
  free(in);
  return rc;
}
