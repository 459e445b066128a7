/* error.c - the one-line error handler (see error.h).
 *
 * PETSc calls the handler once per level of the call stack as the error climbs; the first call
 * (PETSC_ERROR_INITIAL) holds the message.  We keep it, let the error climb to main (so every
 * function frees what it holds on the way up), and main calls bo_error_exit, which prints it once.
 *
 * Printing once: an error raised on a communicator of several ranks is raised by all of them at
 * the same point; only rank 0 of that communicator prints, then aborts the job.  The other ranks
 * wait a few seconds for that abort, and print themselves only if it never comes (so a
 * mislabelled error can never leave the job silent or hung).
 */
#include "boundopt/error.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TEMPFILES 8

static char      first_message[1024];
static PetscBool have_error;
static PetscBool error_is_collective;   /* raised on a comm of several ranks */
static PetscBool error_printer;         /* this rank prints a collective error */
static char      tempfiles[MAX_TEMPFILES][PETSC_MAX_PATH_LEN];

static PetscErrorCode one_line_handler(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  PetscBool traceback = PETSC_FALSE;

  if (p == PETSC_ERROR_INITIAL && !have_error) {
    PetscMPIInt size = 1, rank = 0;
    if (comm != MPI_COMM_NULL) {
      MPI_Comm_size(comm, &size);
      MPI_Comm_rank(comm, &rank);
    }
    have_error          = PETSC_TRUE;
    error_is_collective = size > 1 ? PETSC_TRUE : PETSC_FALSE;
    error_printer       = rank == 0 ? PETSC_TRUE : PETSC_FALSE;
    if (mess && mess[0]) snprintf(first_message, sizeof first_message, "%s", mess);
    else {
      const char *text = NULL;
      PetscErrorMessage(n, &text, NULL);
      snprintf(first_message, sizeof first_message, "%s: %s; expected no error (in %s)", fun ? fun : "petsc", text ? text : "error", fun ? fun : "?");
    }
  }
  PetscOptionsGetBool(NULL, NULL, "-debug_traceback", &traceback, NULL);
  if (traceback) return PetscTraceBackErrorHandler(comm, line, fun, file, n, p, mess, ctx);
  return n;
}

PetscErrorCode bo_error_push_handler(void)
{
  PetscFunctionBeginUser;
  PetscCall(PetscPushErrorHandler(one_line_handler, NULL));
  PetscFunctionReturn(0);
}

const char *bo_error_message(void) { return first_message; }

int bo_error_exit_status(PetscErrorCode ierr)
{
  switch (ierr) {
  case PETSC_ERR_USER_INPUT:
  case PETSC_ERR_ARG_SIZ:
  case PETSC_ERR_ARG_IDN:
  case PETSC_ERR_ARG_WRONG:
  case PETSC_ERR_ARG_CORRUPT:
  case PETSC_ERR_ARG_OUTOFRANGE:
  case PETSC_ERR_ARG_BADPTR:
  case PETSC_ERR_ARG_NOTSAMETYPE:
  case PETSC_ERR_ARG_NOTSAMECOMM:
  case PETSC_ERR_ARG_WRONGSTATE:
  case PETSC_ERR_ARG_TYPENOTSET:
  case PETSC_ERR_ARG_INCOMP:
  case PETSC_ERR_ARG_NULL:
  case PETSC_ERR_ARG_UNKNOWN_TYPE:
  case PETSC_ERR_FILE_OPEN:
  case PETSC_ERR_FILE_READ:
  case PETSC_ERR_FILE_UNEXPECTED:
    return BO_EXIT_INPUT;
  default:
    return BO_EXIT_RUNTIME;
  }
}

void bo_error_register_tempfile(const char *path)
{
  for (int i = 0; i < MAX_TEMPFILES; i++)
    if (!tempfiles[i][0]) {
      snprintf(tempfiles[i], sizeof tempfiles[i], "%s", path);
      return;
    }
}

void bo_error_unregister_tempfile(const char *path)
{
  for (int i = 0; i < MAX_TEMPFILES; i++)
    if (!strcmp(tempfiles[i], path)) tempfiles[i][0] = 0;
}

static void remove_tempfiles(void)
{
  for (int i = 0; i < MAX_TEMPFILES; i++)
    if (tempfiles[i][0]) unlink(tempfiles[i]);
}

static void print_line(void)
{
  fprintf(stderr, "boundopt: %s\n", first_message[0] ? first_message : "unknown error; expected none");
  fflush(stderr);
}

void bo_error_exit(PetscErrorCode ierr)
{
  int status = bo_error_exit_status(ierr);

  /* The launcher ends the job with SIGTERM once one rank aborts: let it (signals.c catches it). */
  signal(SIGTERM, SIG_DFL);
  signal(SIGUSR1, SIG_DFL);
  remove_tempfiles();
  if (!error_is_collective || error_printer) {
    print_line();
  } else {
    /* rank 0 of the communicator prints and aborts the job, which ends this process. */
    struct timespec wait = {5, 0};
    nanosleep(&wait, NULL);
    print_line();
  }
  MPI_Abort(MPI_COMM_WORLD, status);
  _exit(status);
}

PetscErrorCode bo_error_any(MPI_Comm comm, PetscBool bad, PetscMPIInt *first_bad_rank)
{
  PetscMPIInt rank, mine, first;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  mine = bad ? rank : PETSC_MPI_INT_MAX;
  PetscCallMPI(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm));
  *first_bad_rank = first == PETSC_MPI_INT_MAX ? -1 : first;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_error_try_begin(void)
{
  PetscFunctionBeginUser;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_error_try_end(MPI_Comm comm, PetscErrorCode local)
{
  PetscMPIInt first;
  int         code = (int)local;
  char        msg[1024] = "";

  PetscFunctionBeginUser;
  PetscCall(PetscPopErrorHandler());
  PetscCall(bo_error_any(comm, local ? PETSC_TRUE : PETSC_FALSE, &first));
  if (first < 0) PetscFunctionReturn(0);
  PetscMPIInt rank;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == first) {
    char *specific = NULL;
    PetscErrorMessage(local, NULL, &specific);
    snprintf(msg, sizeof msg, "%s", specific && specific[0] ? specific : "failed; expected success");
  }
  PetscCallMPI(MPI_Bcast(msg, sizeof msg, MPI_CHAR, first, comm));
  PetscCallMPI(MPI_Bcast(&code, 1, MPI_INT, first, comm));
  SETERRQ(comm, (PetscErrorCode)code, "%s", msg);
}
