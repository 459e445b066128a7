/* job.h - what every task gets from main: the common options, the phases and the option check.
 *
 * Contract
 *   main reads the common keys (task, input, output, seed, checkpoint_file, checkpoint_every,
 *   restart, memory_limit) into a bo_job and calls the task registered under `task`.  A task
 *     1. reads its own options (PetscOptionsBegin with its prefix, so -help lists them),
 *     2. calls bo_job_setup_done(): every option given must have been read by now, else the job
 *        stops with "option -x: not used by task y; expected ..." (a typo never passes silently);
 *        with -help it tells the task to return at once,
 *     3. runs its phases between bo_job_phase_begin/end (one PETSc log stage each, and the wall
 *        time recorded for /meta/timings/<phase>).
 *   -debug_fail_rank r -debug_fail_at read|compute|write makes rank r fail (exit 2) as that phase
 *   begins: the test of "one rank fails, the job ends with one line and no hang".
 *   All functions are collective on job->comm.
 */
#ifndef BOUNDOPT_JOB_H
#define BOUNDOPT_JOB_H
#include <petscsys.h>
#include <stdint.h>

typedef enum { BO_PHASE_READ, BO_PHASE_COMPUTE, BO_PHASE_WRITE, BO_NPHASES } bo_phase;
extern const char *const bo_phase_names[BO_NPHASES];

typedef struct {
  MPI_Comm    comm;
  PetscMPIInt rank, size;
  char        task[64];
  char        input[PETSC_MAX_PATH_LEN];
  char        output[PETSC_MAX_PATH_LEN];
  PetscInt64  seed;
  char        checkpoint_file[PETSC_MAX_PATH_LEN];
  PetscInt    checkpoint_every;
  PetscBool   restart;
  double      memory_limit;            /* bytes per rank; 0: from the node's available memory */
  PetscBool   help;
  PetscBool   setup_done;
  PetscLogStage stage[BO_NPHASES];
  double      phase_start[BO_NPHASES];
  double      timings[BO_NPHASES];     /* seconds, accumulated */
  PetscBool   phase_used[BO_NPHASES];
  PetscMPIInt debug_fail_rank;         /* -debug_fail_rank r -debug_fail_at phase: a failure on purpose */
  char        debug_fail_at[16];
  PetscInt    debug_signal_at;         /* -debug_signal_at i: the last rank raises SIGUSR1 after iteration i */
  int         exit_status;             /* BO_EXIT_CHECKPOINTED when a task stopped on a signal */
} bo_job;

PetscErrorCode bo_job_create(MPI_Comm comm, bo_job *job);
PetscErrorCode bo_job_setup_done(bo_job *job, PetscBool *stop);
PetscErrorCode bo_job_phase_begin(bo_job *job, bo_phase phase);
PetscErrorCode bo_job_phase_end(bo_job *job, bo_phase phase);
/* Requires a non-empty option value: "option -input: missing; expected a features file (...)". */
PetscErrorCode bo_job_require(bo_job *job, const char *option, const char *value, const char *expected);
/* Parses label ids like "5-9" or "0,2,4-6" (option names the option in messages); at most max. */
PetscErrorCode bo_job_parse_ids(bo_job *job, const char *option, const char *text, int max, int32_t *ids, int *count);
/* Parses a comma (or space) separated list of names, each one of names[0 .. nnames-1] and each at
 * most once, at least one: index[i] is the position in names of the i-th word (at most max).
 * "option -fewshot_method: 'foo'; expected simpleshot, ... or tim-adm". */
PetscErrorCode bo_job_parse_names(bo_job *job, const char *option, const char *text, int nnames, const char *const *names, int max, int *index, int *count);
/* Parses a comma (or space) separated list of finite numbers >= min (-INFINITY: any), at least one
 * and at most max, into v.  Further checks (ranges, duplicates) are the caller's. */
PetscErrorCode bo_job_parse_reals(bo_job *job, const char *option, const char *text, double min, int max, double *v, int *count);
#endif
