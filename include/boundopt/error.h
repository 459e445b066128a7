/* error.h - how boundopt reports failures.
 *
 * Contract
 *   Every fallible function returns PetscErrorCode and is called through PetscCall(), so an error
 *   climbs to main, which prints ONE line and ends the job on every rank:
 *
 *       boundopt: <file|option>: <problem>; expected <what>
 *
 *   Raise errors with PETSc's SETERRQ and one of the codes below; the message text is the part
 *   after "boundopt: ".  The communicator says who raises it:
 *     - a communicator of several ranks (PETSC_COMM_WORLD, a task's comm): every rank of it raises
 *       the same error at the same point (a collective check); rank 0 of it prints.
 *     - PETSC_COMM_SELF: only this rank knows; it prints.
 *   Exit status: BO_ERR_INPUT (and PETSc's ARG_*, FILE_* and USER_INPUT codes) -> 1; anything else -> 2.
 *   Checkpointed on a signal -> 3 (see checkpoint.h).  The PETSc stack appears only with
 *   -debug_traceback.
 *
 *   Temporary files registered with bo_error_register_tempfile() are removed when the job fails.
 */
#ifndef BOUNDOPT_ERROR_H
#define BOUNDOPT_ERROR_H
#include <petscsys.h>

#define BO_ERR_INPUT   PETSC_ERR_USER_INPUT /* bad input file, option or job: exit 1 */
#define BO_ERR_RUNTIME PETSC_ERR_LIB        /* the run failed (I/O, a library, a signal): exit 2 */

enum { BO_EXIT_OK = 0, BO_EXIT_INPUT = 1, BO_EXIT_RUNTIME = 2, BO_EXIT_CHECKPOINTED = 3 };

/* Installs the one-line handler; call right after PetscInitialize. */
PetscErrorCode bo_error_push_handler(void);
/* Ends the job after a PetscErrorCode reached main: prints the stored line (once), removes the
 * registered temporary files and aborts every rank with 1 or 2.  Never returns. */
void bo_error_exit(PetscErrorCode ierr);
/* Exit status that an error code maps to (1 or 2). */
int bo_error_exit_status(PetscErrorCode ierr);
/* The message of the first error raised on this rank ("" if none); for tests. */
const char *bo_error_message(void);
/* Removed on failure; unregister once renamed into place.  Paths are copied. */
void bo_error_register_tempfile(const char *path);
void bo_error_unregister_tempfile(const char *path);

/* A collective check: every rank passes its own "bad" flag; returns the lowest rank that is bad,
 * or -1, identically on every rank of comm (so all ranks raise the same error together). */
PetscErrorCode bo_error_any(MPI_Comm comm, PetscBool bad, PetscMPIInt *first_bad_rank);

/* Local steps that may fail on some ranks only (parsing a file on rank 0, a read of one shard):
 *     PetscCall(bo_error_try_begin());
 *     ierr = step(...);
 *     PetscCall(bo_error_try_end(comm, ierr));
 * If any rank failed, every rank raises the error (code and message) of the lowest failing rank,
 * collectively, so it is printed once and the exit status is right. */
PetscErrorCode bo_error_try_begin(void);
PetscErrorCode bo_error_try_end(MPI_Comm comm, PetscErrorCode local);
#endif
