/* job.c - common options, phases and the unused-option check (see job.h). */
#include "boundopt/job.h"
#include "boundopt/error.h"
#include "boundopt/memory.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const bo_phase_names[BO_NPHASES] = {"read", "compute", "write"};

/* Options PETSc itself reads at PetscInitialize or PetscFinalize (so they are never "used" by a
 * task), and boundopt's own debugging switches.  A prefix match allows the whole family. */
static const char *const petsc_option_prefixes[] = {
  "log", "options_", "malloc", "memory_view", "info", "on_error_", "fp_trap", "no_signal_handler",
  "help", "version", "debug_", "debugger", "start_in_debugger", "stop_for_debugger", "display",
  "viewer_", "objects_", "check_pointer_intensity", "use_gpu_aware_mpi", "device_", "history",
  "skip_petscrc", "petsc", "mpi_", "saws", "error_output_", "checkstack", "vecscatter_", "sf_",
  NULL};

static PetscBool is_petsc_option(const char *name)
{
  for (int i = 0; petsc_option_prefixes[i]; i++)
    if (!strncmp(name, petsc_option_prefixes[i], strlen(petsc_option_prefixes[i]))) return PETSC_TRUE;
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
  PetscCall(PetscOptionsBool("-restart", "Resume from checkpoint_file when it exists", "", job->restart, &job->restart, NULL));
  PetscCall(PetscOptionsString("-memory_limit", "Memory per rank for the pre-flight check, e.g. 2G (default: the node's available memory / ranks on the node)", "", limit, limit, sizeof limit, NULL));
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
