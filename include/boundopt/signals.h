/* signals.h - checkpoint-on-signal.
 *
 * Contract
 *   bo_signals_install() catches SIGUSR1 and SIGTERM (Slurm's warning and preemption signals) and
 *   only records that one arrived.  An iterative task calls bo_signals_pending() (collective) at an
 *   iteration boundary: the ranks agree, by a max-reduction, whether any of them was signalled, so
 *   they all checkpoint at the same iteration, then exit with status 3 ("checkpointed: resume me").
 */
#ifndef BOUNDOPT_SIGNALS_H
#define BOUNDOPT_SIGNALS_H
#include <petscsys.h>

PetscErrorCode bo_signals_install(void);
PetscErrorCode bo_signals_pending(MPI_Comm comm, PetscBool *pending);
/* The signal number received on this rank (0 if none): for messages. */
int            bo_signals_last(void);
#endif
