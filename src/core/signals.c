/* signals.c - record SIGUSR1/SIGTERM; ranks agree at iteration boundaries (see signals.h). */
#include "boundopt/signals.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received;

static void on_signal(int sig) { received = sig; }

PetscErrorCode bo_signals_install(void)
{
  struct sigaction sa;

  PetscFunctionBeginUser;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  PetscCheck(!sigaction(SIGUSR1, &sa, NULL) && !sigaction(SIGTERM, &sa, NULL), PETSC_COMM_SELF, PETSC_ERR_SYS, "signals: cannot install the SIGUSR1/SIGTERM handler; expected sigaction to work");
  PetscFunctionReturn(0);
}

PetscErrorCode bo_signals_pending(MPI_Comm comm, PetscBool *pending)
{
  int mine = received != 0, any;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm));
  *pending = any ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

int bo_signals_last(void) { return (int)received; }
