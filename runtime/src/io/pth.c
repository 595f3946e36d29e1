/* pth.c - PyTorch checkpoints: not readable yet (the safe reader is being written); an honest error until then. */
#include "tensor_file.h"
int dpl_pth_parse(dpl_tensor_file *f) {
  return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: reading PyTorch checkpoints is not implemented yet", f->path);
}
