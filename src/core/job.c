/* job.c - common options, phases and the unused-option check (see job.h). */
#include "boundopt/job.h"
#include "boundopt/error.h"
#include "boundopt/memory.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const bo_phase_names[BO_NPHASES] = {"read", "compute", "write"};

/* Options PETSc itself reads at PetscInitialize or PetscFinalize (so no task ever "uses" them),
 * and boundopt's debugging switches: exact names, and families by prefix. */
static const char *const petsc_options[] = {
  "help", "version", "info", "log_view", "log_summary", "log_trace", "log_all", "log_exclude", "fp_trap",
  "no_signal_handler", "debugger", "start_in_debugger", "stop_for_debugger", "display", "memory_view",
  "check_pointer_intensity", "history", "skip_petscrc", "use_gpu_aware_mpi", "checkstack", "on_error_abort",
  "on_error_attach_debugger", "on_error_emacs", "error_output_stdout", "malloc", NULL};
static const char *const petsc_prefixes[] = {"log_view_", "options_", "malloc_", "viewer_", "objects_", "debug_", "device_", "saws_", "mpi_", NULL};

static PetscBool is_petsc_option(const char *name)
{
  for (int i = 0; petsc_options[i]; i++)
    if (!strcmp(name, petsc_options[i])) return PETSC_TRUE;
  for (int i = 0; petsc_prefixes[i]; i++)
    if (!strncmp(name, petsc_prefixes[i], strlen(petsc_prefixes[i]))) return PETSC_TRUE;
  return PETSC_FALSE;
}

PetscErrorCode bo_job_create(MPI_Comm comm, bo_job *job)
{
  char limit[64] = "", seed[32] = "42", *end;

  PetscFunctionBeginUser;
  PetscCall(PetscMemzero(job, sizeof *job));
  job->comm = comm;
  PetscCallMPI(MPI_Comm_rank(comm, &job->rank));
  PetscCallMPI(MPI_Comm_size(comm, &job->size));
  PetscOptionsBegin(comm, NULL, "Common job options (any task)", "boundopt");
  PetscCall(PetscOptionsString("-task", "Task to run: import, info, preprocess, ...", "", job->task, job->task, sizeof job->task, NULL));
  PetscCall(PetscOptionsString("-input", "Input file (HDF5 features for most tasks)", "", job->input, job->input, sizeof job->input, NULL));
  PetscCall(PetscOptionsString("-output", "Results file (HDF5), written atomically", "", job->output, job->output, sizeof job->output, NULL));
  PetscCall(PetscOptionsString("-seed", "Seed of every random stream (0 .. 2^63-1)", "", seed, seed, sizeof seed, NULL));
  PetscCall(PetscOptionsString("-checkpoint_file", "Checkpoint file (tasks that iterate)", "", job->checkpoint_file, job->checkpoint_file, sizeof job->checkpoint_file, NULL));
  PetscCall(PetscOptionsInt("-checkpoint_every", "Checkpoint every n outer iterations (0: only on a signal)", "", job->checkpoint_every, &job->checkpoint_every, NULL));
  job->restart = PETSC_TRUE;
  PetscCall(PetscOptionsBool("-restart", "Resume from checkpoint_file when it holds this job's checkpoint (false: start afresh)", "", job->restart, &job->restart, NULL));
  PetscCall(PetscOptionsString("-memory_limit", "Memory per rank for the pre-flight check, e.g. 2G (default: the node's available memory / ranks on the node)", "", limit, limit, sizeof limit, NULL));
  job->debug_fail_rank = -1;
  PetscCall(PetscOptionsInt("-debug_fail_rank", "Testing: this rank fails on purpose (with -debug_fail_at)", "", job->debug_fail_rank, &job->debug_fail_rank, NULL));
  PetscCall(PetscOptionsString("-debug_fail_at", "Testing: the phase at which -debug_fail_rank fails: read, compute or write", "", job->debug_fail_at, job->debug_fail_at, sizeof job->debug_fail_at, NULL));
  job->debug_signal_at = -1;
  PetscCall(PetscOptionsInt("-debug_signal_at", "Testing: the last rank raises SIGUSR1 to itself after this iteration of an iterative task", "", job->debug_signal_at, &job->debug_signal_at, NULL));
  PetscOptionsEnd();
  errno     = 0;
  job->seed = strtoll(seed, &end, 0);
  PetscCheck(!errno && end != seed && !*end && job->seed >= 0, comm, BO_ERR_INPUT, "option -seed: '%s'; expected an integer from 0 to 2^63-1", seed);
  if (limit[0]) {
    job->memory_limit = bo_memory_parse(limit);
    PetscCheck(job->memory_limit > 0, comm, BO_ERR_INPUT, "option -memory_limit: '%s' is not a size; expected bytes with an optional K, M, G or T suffix", limit);
  }
  PetscCall(PetscOptionsHasHelp(NULL, &job->help));
  for (int p = 0; p < BO_NPHASES; p++) {
    char name[32];
    snprintf(name, sizeof name, "%c%s", bo_phase_names[p][0] - 'a' + 'A', bo_phase_names[p] + 1);
    PetscCall(PetscLogStageRegister(name, &job->stage[p]));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_job_setup_done(bo_job *job, PetscBool *stop)
{
  PetscInt n;
  char   **names, **values;
  char     first[256] = "";

  PetscFunctionBeginUser;
  job->setup_done = PETSC_TRUE;
  *stop           = job->help;
  if (job->help) PetscFunctionReturn(0);
  PetscCall(PetscOptionsLeftGet(NULL, &n, &names, &values));
  for (PetscInt i = 0; i < n && !first[0]; i++)
    if (!is_petsc_option(names[i])) snprintf(first, sizeof first, "%s", names[i]);
  PetscCall(PetscOptionsLeftRestore(NULL, &n, &names, &values));
  PetscCheck(!first[0], job->comm, BO_ERR_INPUT, "option -%s: not used by task %s; expected only options of this task (see -help)", first, job->task);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_job_phase_begin(bo_job *job, bo_phase phase)
{
  PetscFunctionBeginUser;
  PetscCheck(job->rank != job->debug_fail_rank || strcmp(job->debug_fail_at, bo_phase_names[phase]), PETSC_COMM_SELF, BO_ERR_RUNTIME, "debug: rank %d fails on purpose as phase %s begins; expected no -debug_fail_rank outside tests", job->rank, bo_phase_names[phase]);
  PetscCall(PetscLogStagePush(job->stage[phase]));
  job->phase_start[phase] = MPI_Wtime();
  job->phase_used[phase]  = PETSC_TRUE;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_job_phase_end(bo_job *job, bo_phase phase)
{
  PetscFunctionBeginUser;
  job->timings[phase] += MPI_Wtime() - job->phase_start[phase];
  PetscCall(PetscLogStagePop());
  PetscFunctionReturn(0);
}

PetscErrorCode bo_job_require(bo_job *job, const char *option, const char *value, const char *expected)
{
  PetscFunctionBeginUser;
  PetscCheck(value && value[0], job->comm, BO_ERR_INPUT, "option -%s: missing; expected %s", option, expected);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_job_parse_ids(bo_job *job, const char *option, const char *text, int max, int32_t *ids, int *count)
{
  char  buf[1024], *save, *tok;

  PetscFunctionBeginUser;
  *count = 0;
  snprintf(buf, sizeof buf, "%s", text);
  for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    char *end;
    long  a = strtol(tok, &end, 10), b = a;
    if (*end == '-') b = strtol(end + 1, &end, 10);
    PetscCheck(!*end && end != tok && a >= 0 && b >= a && b <= INT32_MAX && *count + (b - a) < max, job->comm, BO_ERR_INPUT, "option -%s: '%s'; expected label ids like 5-9 or 0,2,4-6 (at most %d)", option, tok, max);
    for (long c = a; c <= b; c++) ids[(*count)++] = (int32_t)c;
  }
  PetscCheck(*count > 0, job->comm, BO_ERR_INPUT, "option -%s: empty; expected label ids like 5-9 or 0,2,4-6", option);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_job_parse_names(bo_job *job, const char *option, const char *text, int nnames, const char *const *names, int max, int *index, int *count)
{
  char buf[1024], expected[512] = "", *save, *tok;

  PetscFunctionBeginUser;
  for (int m = 0; m < nnames; m++) /* "a, b or c" */
    snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%s", m == 0 ? "" : m == nnames - 1 ? " or " : ", ", names[m]);
  *count = 0;
  snprintf(buf, sizeof buf, "%s", text);
  for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    int m = 0;
    while (m < nnames && strcmp(tok, names[m])) m++;
    PetscCheck(m < nnames, job->comm, BO_ERR_INPUT, "option -%s: '%s'; expected %s", option, tok, expected);
    for (int q = 0; q < *count; q++) PetscCheck(index[q] != m, job->comm, BO_ERR_INPUT, "option -%s: '%s' twice; expected each name once", option, tok);
    PetscCheck(*count < max, job->comm, BO_ERR_INPUT, "option -%s: more than %d names; expected at most %d", option, max, max);
    index[(*count)++] = m;
  }
  PetscCheck(*count > 0, job->comm, BO_ERR_INPUT, "option -%s: empty; expected at least one of %s", option, expected);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_job_parse_reals(bo_job *job, const char *option, const char *text, double min, int max, double *v, int *count)
{
  char buf[1024], bound[64] = "", *save, *tok, *end;

  PetscFunctionBeginUser;
  if (min > -INFINITY) snprintf(bound, sizeof bound, " >= %g", min);
  *count = 0;
  snprintf(buf, sizeof buf, "%s", text);
  for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
    PetscCheck(*count < max, job->comm, BO_ERR_INPUT, "option -%s: more than %d values; expected at most %d", option, max, max);
    errno      = 0;
    double x   = strtod(tok, &end);
    PetscCheck(!errno && end != tok && !*end && isfinite(x) && x >= min, job->comm, BO_ERR_INPUT, "option -%s: '%s'; expected numbers%s, comma separated", option, tok, bound);
    v[(*count)++] = x;
  }
  PetscCheck(*count > 0, job->comm, BO_ERR_INPUT, "option -%s: empty; expected at least one number", option);
  PetscFunctionReturn(0);
}
