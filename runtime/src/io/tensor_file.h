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
} tf_entry;

struct dpl_tensor_file {
  const char *format;
  char *path;
  FILE *file;
  uint64_t file_size;
  tf_entry *entries;
  int n, cap;
  char **meta_keys, **meta_values;
  int nmeta;
};

int tf_element_size(tf_dtype t);
const char *tf_dtype_name(tf_dtype t);
/* Appends an entry (name copied); returns it, or NULL on out-of-memory. */
tf_entry *tf_add(dpl_tensor_file *f, const char *name);
/* Checks that an entry's view lies inside its storage bytes; error names the file and tensor. */
int tf_check_entry(dpl_tensor_file *f, const tf_entry *e);

/* format parsers: each returns DPL_OK or an error naming f->path */
int dpl_safetensors_parse(dpl_tensor_file *f);
int dpl_pth_parse(dpl_tensor_file *f);    /* zip or legacy, decided by the first bytes */

#endif
