/* dir.c - directory listings for the dataset code (LuaJIT has no portable way to read a directory). */
#define _DEFAULT_SOURCE
#include "internal.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int64_t dpl_dir_list(const char *path, char *buf, int64_t cap) {
  if (!path) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_dir_list: NULL path"), -1;
  DIR *d = opendir(path);
  if (!d) return dpl_fail(DPL_ERR_IO, "%s: cannot list directory (%s)", path, strerror(errno)), -1;
  char **names = NULL;
  size_t n = 0, capn = 0;
  int64_t need = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    size_t len = strlen(e->d_name);
    if (memchr(e->d_name, '\n', len)) continue;         /* cannot be represented in the listing */
    int is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {   /* ask stat (follows symlinks) */
      size_t pl = strlen(path) + len + 2;
      char *full = malloc(pl);
      struct stat st;
      if (full) {
        snprintf(full, pl, "%s/%s", path, e->d_name);
        is_dir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
        free(full);
      }
    }
    if (n == capn) {
      capn = capn ? 2 * capn : 256;
      char **grown = realloc(names, capn * sizeof *names);
      if (!grown) goto oom;
      names = grown;
    }
    char *copy = malloc(len + 2);
    if (!copy) goto oom;
    memcpy(copy, e->d_name, len);
    if (is_dir) copy[len++] = '/';
    copy[len] = 0;
    names[n++] = copy;
    need += (int64_t)len + 1;
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_names);
  if (buf && cap >= need) {
    char *p = buf;
    for (size_t i = 0; i < n; i++) {
      size_t len = strlen(names[i]);
      memcpy(p, names[i], len);
      p[len] = '\n';
      p += len + 1;
    }
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return need;
oom:
  closedir(d);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory listing the directory", path), -1;
}
