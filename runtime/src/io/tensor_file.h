/* tensor_file.h - the index of a tensor file, shared by the format parsers (safetensors.c, pth.c) and the common
 * loader (tensor_file.c). A parser fills one entry per tensor: where its storage bytes are in the file, the element
 * type, and the view (shape, strides in elements, storage offset in elements) as PyTorch describes it. */
#ifndef DPL_TENSOR_FILE_H
#define DPL_TENSOR_FILE_H

#include "internal.h"
#include <stdio.h>

typedef enum tf_dtype {
  TF_F32, TF_F64, TF_F16, TF_BF16, TF_I64, TF_I32, TF_I16, TF_I8, TF_U8, TF_BOOL, TF_DTYPE_COUNT
} tf_dtype;

typedef struct tf_entry {
  char *name;
  tf_dtype dtype;
  int ndim;
  int64_t shape[DPL_MAX_DIMS];
  int64_t stride[DPL_MAX_DIMS];   /* elements */
  int64_t storage_offset;         /* elements, from data_offset */
  uint64_t data_offset;           /* absolute byte offset in the file of the storage's first element */
  uint64_t data_bytes;            /* bytes of storage available from data_offset */
  int big_endian;
  /* Storage sharing (views of one storage, as PyTorch saves tied or sliced tensors): entries with the same group id
   * read the same stored bytes with the same dtype, which start at group_offset (group_bytes long) in the file. -1:
   * the entry has its bytes to itself. Set by the parser; tf_finish turns it into `shared`. */
  int64_t group;
  uint64_t group_offset, group_bytes;
  int shared;                     /* index into the file's shared storages, or -1 (set by tf_finish) */
  /* zip checkpoints: the member holding the storage bytes [group_offset, + group_bytes) and its CRC-32, checked the
   * first time any entry of that member is read; -1: nothing to check */
  int crc_member;
  uint32_t crc;
} tf_entry;

/* A storage that several entries view: loaded once per file and device, the entries come back as views of it. */
typedef struct tf_shared {
  dpl_device *dev;
  dpl_tensor *storage;            /* 1-D float32, group_bytes / element size long; NULL until first needed */
} tf_shared;

struct dpl_tensor_file {
  const char *format;
  char *path;
  FILE *file;
  uint64_t file_size;
  tf_entry *entries;
  int n, cap;
  char **meta_keys, **meta_values;
  int nmeta;
  tf_shared *shared;
  int nshared;
  int nmembers;                   /* zip members, for crc_checked */
  unsigned char *crc_checked;     /* nmembers flags, allocated by tf_finish */
};

int tf_element_size(tf_dtype t);
const char *tf_dtype_name(tf_dtype t);
/* Appends an entry (name copied); returns it, or NULL on out-of-memory. */
tf_entry *tf_add(dpl_tensor_file *f, const char *name);
/* After parsing: finds the storages that more than one entry views (entries' group ids). */
int tf_finish(dpl_tensor_file *f);
/* Checks the CRC-32 of bytes [off, off + size) of the file against `expected`; the error names the file and `what`
 * (a zip member). */
int tf_check_crc(dpl_tensor_file *f, uint64_t off, uint64_t size, uint32_t expected, const char *what);
/* Checks that an entry's view lies inside its storage bytes; error names the file and tensor. */
int tf_check_entry(dpl_tensor_file *f, const tf_entry *e);

/* format parsers: each returns DPL_OK or an error naming f->path */
int dpl_safetensors_parse(dpl_tensor_file *f);
int dpl_pth_parse(dpl_tensor_file *f);    /* zip or legacy, decided by the first bytes */

#endif
