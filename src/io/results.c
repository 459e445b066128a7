/* results.c - atomic results files with /meta (see results.h). */
#include "boundopt/results.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/version.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* "<dir>/.<base>.tmp.<pid>": same folder, so rename() is atomic. */
static void temp_name(const char *path, long id, char *tmp, size_t len)
{
  char a[PETSC_MAX_PATH_LEN], b[PETSC_MAX_PATH_LEN];
  snprintf(a, sizeof a, "%s", path);
  snprintf(b, sizeof b, "%s", path);
  snprintf(tmp, len, "%s/.%s.tmp.%ld", dirname(a), basename(b), id);
}

PetscErrorCode bo_results_create(bo_job *job, const char *path, bo_results *r)
{
  int err = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(r, sizeof *r));
  r->comm           = job->comm;
  r->file           = -1;
  r->rank_invariant = PETSC_TRUE;
  snprintf(r->path, sizeof r->path, "%s", path);
  if (!job->rank) {
    temp_name(path, (long)getpid(), r->tmp, sizeof r->tmp);
    int fd = open(r->tmp, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) err = errno;
    else close(fd);
  }
  PetscCallMPI(MPI_Bcast(&err, 1, MPI_INT, 0, job->comm));
  PetscCallMPI(MPI_Bcast(r->tmp, sizeof r->tmp, MPI_CHAR, 0, job->comm));
  PetscCheck(!err, job->comm, PETSC_ERR_FILE_OPEN, "%s: cannot create the output (%s); expected a writable output folder", path, strerror(err));
  bo_error_register_tempfile(r->tmp);
  PetscCall(bo_h5_create(job->comm, r->tmp, &r->file));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_results_options_text(char **text)
{
  PetscFunctionBeginUser;
  PetscCall(PetscOptionsGetAll(NULL, text));
  PetscFunctionReturn(0);
}

static PetscErrorCode write_meta(bo_results *r, const bo_job *job)
{
  char      *options, created[64];
  time_t     now = time(NULL);
  struct tm  tm;
  int64_t    nranks = job->size, schema = BO_SCHEMA_VERSION, invariant = r->rank_invariant;
  double     t[BO_NPHASES];

  PetscFunctionBeginUser;
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
  PetscCallMPI(MPI_Bcast(created, sizeof created, MPI_CHAR, 0, r->comm));
  PetscCall(bo_results_options_text(&options));
  PetscCall(bo_h5_write_string(r->file, "/meta/options", options));
  PetscCall(PetscFree(options));
  PetscCall(bo_h5_write_string(r->file, "/meta/version", bo_version()));
  PetscCall(bo_h5_write_string(r->file, "/meta/git_revision", bo_git_revision()));
  PetscCall(bo_h5_write_string(r->file, "/meta/created", created));
  PetscCall(bo_h5_write_string(r->file, "/meta/task", job->task));
  PetscCall(bo_h5_write_array(r->file, "/meta/schema_version", H5T_NATIVE_INT64, H5T_STD_I64LE, 0, NULL, &schema));
  PetscCall(bo_h5_write_array(r->file, "/meta/nranks", H5T_NATIVE_INT64, H5T_STD_I64LE, 0, NULL, &nranks));
  PetscCall(bo_h5_write_array(r->file, "/meta/rank_invariant", H5T_NATIVE_INT64, H5T_STD_I64LE, 0, NULL, &invariant));
  PetscCallMPI(MPI_Allreduce(job->timings, t, BO_NPHASES, MPI_DOUBLE, MPI_MAX, r->comm));
  for (int p = 0; p < BO_NPHASES; p++) {
    char name[64];
    if (!job->phase_used[p]) continue;
    snprintf(name, sizeof name, "/meta/timings/%s", bo_phase_names[p]);
    PetscCall(bo_h5_write_array(r->file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 0, NULL, &t[p]));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_results_commit(bo_results *r, const bo_job *job)
{
  PetscFunctionBeginUser;
  PetscCall(write_meta(r, job));
  PetscCall(bo_h5_close_and_rename(r->comm, &r->file, r->tmp, r->path, "results"));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_results_discard(bo_results *r)
{
  int rank;

  PetscFunctionBeginUser;
  if (r->file >= 0) PetscCall(bo_h5_close(&r->file));
  PetscCallMPI(MPI_Barrier(r->comm));
  PetscCallMPI(MPI_Comm_rank(r->comm, &rank));
  if (!rank) unlink(r->tmp);
  bo_error_unregister_tempfile(r->tmp);
  PetscFunctionReturn(0);
}
