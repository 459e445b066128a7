/* checkpoint.c - atomic, rank-count portable checkpoints (see checkpoint.h). */
#include "boundopt/checkpoint.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Options that say how to run, not what to compute: exact names, and families by prefix. */
static const char *const volatile_names[]    = {"restart", "log", "log_view", "log_summary", "log_trace", "log_all", "help", "info", "output", "memory_limit", "malloc", "malloc_debug", "malloc_dump", "malloc_view", "memory_view", NULL};
static const char *const volatile_prefixes[] = {"checkpoint_", "log_view_", "options_", "debug_", "on_error_", "viewer_", "malloc_", NULL};

PetscBool bo_checkpoint_option_is_volatile(const char *name)
{
  size_t len = strlen(name);
  if (len >= 8 && !strcmp(name + len - 8, "_monitor")) return PETSC_TRUE;
  for (int i = 0; volatile_names[i]; i++)
    if (!strcmp(name, volatile_names[i])) return PETSC_TRUE;
  for (int i = 0; volatile_prefixes[i]; i++)
    if (!strncmp(name, volatile_prefixes[i], strlen(volatile_prefixes[i]))) return PETSC_TRUE;
  return PETSC_FALSE;
}

uint64_t bo_hash_bytes(uint64_t h, const void *data, size_t len)
{
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL; /* FNV-1a */
  return h;
}

uint64_t bo_file_identity(const char *path, const int64_t *shape, int nshape)
{
  struct stat st;
  char        real[PETSC_MAX_PATH_LEN];
  uint64_t    h = BO_HASH_SEED;
  if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
  h = bo_hash_bytes(h, real, strlen(real));
  if (!stat(path, &st)) {
    int64_t facts[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
    h = bo_hash_bytes(h, facts, sizeof facts);
  }
  return bo_hash_bytes(h, shape, (size_t)nshape * sizeof *shape);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* PetscOptionsGetAll gives "-name value -name2 -name3 value": split into "name=value" items. */
PetscErrorCode bo_checkpoint_job_hash(uint64_t input_identity, uint64_t *hash)
{
  char    *all, **items;
  int      n = 0;
  uint64_t h = BO_HASH_SEED;

  PetscFunctionBeginUser;
  PetscCall(PetscOptionsGetAll(NULL, &all));
  size_t len = strlen(all);
  PetscCall(PetscMalloc1(len / 2 + 2, &items));
  for (char *p = all; *p;) {
    while (*p == ' ') p++;
    if (*p != '-') { if (*p) p++; continue; }
    char *name = ++p;
    while (*p && *p != ' ') p++;
    if (*p) *p++ = 0;
    /* The value runs to the next " -<letter>": values may hold spaces and negative numbers. */
    char *value = p, *end;
    while (*p && !(p[0] == '-' && isalpha((unsigned char)p[1]) && (p == value || p[-1] == ' '))) p++;
    for (end = p; end > value && end[-1] == ' '; end--) {}
    if (end > value) *end = 0;
    else value = (char *)"";
    if (bo_checkpoint_option_is_volatile(name)) continue;
    char *item;
    PetscCall(PetscMalloc1(strlen(name) + strlen(value) + 2, &item));
    sprintf(item, "%s=%s", name, value);
    items[n++] = item;
  }
  qsort(items, (size_t)n, sizeof *items, by_name);
  for (int i = 0; i < n; i++) {
    h = bo_hash_bytes(h, items[i], strlen(items[i]) + 1);
    PetscCall(PetscFree(items[i]));
  }
  PetscCall(PetscFree(items));
  PetscCall(PetscFree(all));
  h = bo_hash_bytes(h, &input_identity, sizeof input_identity);
  *hash = h & 0x7fffffffffffffffULL; /* stored as int64 */
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_begin_write(MPI_Comm comm, const char *path, uint64_t job_hash, bo_checkpoint *ck)
{
  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(ck, sizeof *ck));
  ck->comm    = comm;
  ck->writing = PETSC_TRUE;
  snprintf(ck->path, sizeof ck->path, "%s", path);
  snprintf(ck->tmp, sizeof ck->tmp, "%s.tmp", path);
  bo_error_register_tempfile(ck->tmp);
  PetscCall(bo_h5_create(comm, ck->tmp, &ck->file));
  PetscCall(bo_h5_attr_write_int64(ck->file, "/", "version", BO_CHECKPOINT_VERSION));
  PetscCall(bo_h5_attr_write_int64(ck->file, "/", "job_hash", (int64_t)job_hash));
  PetscFunctionReturn(0);
}

static void full_name(char *buf, size_t len, const char *group, const char *name) { snprintf(buf, len, "/%s/%s", group, name); }

PetscErrorCode bo_checkpoint_put_rows(bo_checkpoint *ck, const char *name, hid_t memtype, int64_t n, int64_t ncols, int64_t lo, int64_t hi, const void *data)
{
  char full[256];

  PetscFunctionBeginUser;
  full_name(full, sizeof full, "rows", name);
  PetscCall(bo_h5_write_rows(ck->file, full, memtype, memtype, n, ncols, lo, hi, data));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_put_doubles(bo_checkpoint *ck, const char *name, int64_t count, const double *values)
{
  char    full[256];
  hsize_t dims[1] = {(hsize_t)count};

  PetscFunctionBeginUser;
  full_name(full, sizeof full, "scalars", name);
  PetscCall(bo_h5_write_array(ck->file, full, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, values));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_put_double(bo_checkpoint *ck, const char *name, double value) { return bo_checkpoint_put_doubles(ck, name, 1, &value); }

PetscErrorCode bo_checkpoint_put_int64(bo_checkpoint *ck, const char *name, int64_t value)
{
  char    full[256];
  hsize_t dims[1] = {1};

  PetscFunctionBeginUser;
  full_name(full, sizeof full, "scalars", name);
  PetscCall(bo_h5_write_array(ck->file, full, H5T_NATIVE_INT64, H5T_STD_I64LE, 1, dims, &value));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_end_write(bo_checkpoint *ck)
{
  PetscFunctionBeginUser;
  PetscCall(bo_h5_close_and_rename(ck->comm, &ck->file, ck->tmp, ck->path, "checkpoint"));
  ck->writing = PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_open(MPI_Comm comm, const char *path, uint64_t job_hash, bo_checkpoint *ck, PetscBool *exists)
{
  int       present = 0, rank;
  int64_t   version = 0, hash = 0;
  PetscBool found_v, found_h;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(ck, sizeof *ck));
  ck->comm = comm;
  ck->file = -1;
  snprintf(ck->path, sizeof ck->path, "%s", path);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank) present = access(path, F_OK) == 0;
  PetscCallMPI(MPI_Bcast(&present, 1, MPI_INT, 0, comm));
  *exists = present ? PETSC_TRUE : PETSC_FALSE;
  if (!present) PetscFunctionReturn(0);
  PetscCall(bo_h5_open_read(comm, path, &ck->file));
  PetscCall(bo_h5_attr_read_int64(ck->file, "/", "version", &version, &found_v));
  PetscCall(bo_h5_attr_read_int64(ck->file, "/", "job_hash", &hash, &found_h));
  /* A refused file is closed here, so the caller has nothing to clean up. */
  const char *problem = !(found_v && found_h) ? "not a boundopt checkpoint (no version or job_hash); expected a checkpoint written by boundopt"
                      : version != BO_CHECKPOINT_VERSION ? "checkpoint of another boundopt version; expected a checkpoint written by this version"
                      : (uint64_t)hash != job_hash ? "checkpoint of another job (options or input differ); expected a checkpoint written by this job (remove it to start afresh)"
                      : NULL;
  if (problem) PetscCall(bo_h5_close(&ck->file));
  PetscCheck(!problem, comm, BO_ERR_INPUT, "%s: %s", path, problem);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_get_rows(bo_checkpoint *ck, const char *name, hid_t memtype, int64_t ncols, int64_t lo, int64_t hi, void *data)
{
  char full[256];

  PetscFunctionBeginUser;
  full_name(full, sizeof full, "rows", name);
  PetscCall(bo_h5_read_rows(ck->file, full, memtype, ncols, lo, hi, data));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_get_doubles(bo_checkpoint *ck, const char *name, int64_t count, double *values)
{
  char       full[256];
  bo_h5_info info;

  PetscFunctionBeginUser;
  full_name(full, sizeof full, "scalars", name);
  PetscCall(bo_h5_dataset_info(ck->file, ck->path, full, &info));
  PetscCheck(info.rank == 1 && (int64_t)info.dims[0] == count, ck->comm, BO_ERR_INPUT, "%s: %s has %lld values; expected %lld", ck->path, full, (long long)info.dims[0], (long long)count);
  PetscCall(bo_h5_read_array(ck->file, full, H5T_NATIVE_DOUBLE, values));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_get_double(bo_checkpoint *ck, const char *name, double *value) { return bo_checkpoint_get_doubles(ck, name, 1, value); }

PetscErrorCode bo_checkpoint_get_int64(bo_checkpoint *ck, const char *name, int64_t *value)
{
  char       full[256];
  bo_h5_info info;

  PetscFunctionBeginUser;
  full_name(full, sizeof full, "scalars", name);
  PetscCall(bo_h5_dataset_info(ck->file, ck->path, full, &info));
  PetscCheck(info.rank == 1 && info.dims[0] == 1, ck->comm, BO_ERR_INPUT, "%s: %s is not one integer; expected a checkpoint written by this boundopt", ck->path, full);
  PetscCall(bo_h5_read_array(ck->file, full, H5T_NATIVE_INT64, value));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_checkpoint_close(bo_checkpoint *ck)
{
  PetscFunctionBeginUser;
  if (ck->file >= 0) PetscCall(bo_h5_close(&ck->file));
  PetscFunctionReturn(0);
}
