/* unit_support.h - what the cmocka unit tests share: the property table entry, the call-must-
 * succeed check, closeness with a message, the whole-matrix row range, and the check that a call
 * is refused with the project's one-line input error.
 *
 * Include after <cmocka.h> and <petscsys.h>.  Everything here is static: each test program gets
 * its own copy, and the unused parts cost nothing. */
#ifndef BOUNDOPT_TESTS_UNIT_SUPPORT_H
#define BOUNDOPT_TESTS_UNIT_SUPPORT_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "boundopt/tiles.h"

#define UNUSED_OK __attribute__((unused))

/* A named property: cmocka_unit_test with a name that reads as a sentence. */
#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}
/* A call that must succeed (PetscErrorCode 0). */
#define OK(call) assert_int_equal((call), 0)

void openblas_set_num_threads(int); /* OpenBLAS's own API: tests pin BLAS to one thread */

/* |got - want| <= tol, else a failure naming what was compared. */
UNUSED_OK static void assert_close(double got, double want, double tol, const char *what)
{
  if (!(fabs(got - want) <= tol)) fail_msg("%s: %.17g, expected %.17g (|diff| %.3g > %.3g)", what, got, want, fabs(got - want), tol);
}
/* The same, naming the expression. */
#define ASSERT_CLOSE(got, want, tol) assert_close((got), (want), (tol), #got)

/* Rows [0, n) of an n-row matrix on one rank. */
UNUSED_OK static bo_rows all_rows(int64_t n)
{
  bo_rows rows;
  bo_rows_partition(n, 0, 1, &rows);
  return rows;
}

/* ---------------------------------------------------------------- one-line input errors */

UNUSED_OK static char captured[2048];

/* Keeps the first (innermost) message of an error; PETSc then passes the code back up. */
UNUSED_OK static PetscErrorCode capture_first_error(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  (void)comm, (void)line, (void)fun, (void)file, (void)ctx;
  if (p == PETSC_ERROR_INITIAL) snprintf(captured, sizeof captured, "%s", mess ? mess : "");
  return n;
}

/* call must fail with PETSC_ERR_USER_INPUT and one line "<prefix>...; expected ..." containing
 * part (prefix e.g. "losses: "). */
#define EXPECT_INPUT_ERROR(call, prefix, part) \
  do { \
    captured[0] = '\0'; \
    assert_int_equal(PetscPushErrorHandler(capture_first_error, NULL), 0); \
    PetscErrorCode ierr_ = (call); \
    assert_int_equal(PetscPopErrorHandler(), 0); \
    if (ierr_ != PETSC_ERR_USER_INPUT) fail_msg("%s: error code %d, expected %d; message \"%s\"", #call, (int)ierr_, (int)PETSC_ERR_USER_INPUT, captured); \
    if (strncmp(captured, prefix, strlen(prefix)) || !strstr(captured, "; expected ") || strchr(captured, '\n') || !strstr(captured, part)) \
      fail_msg("%s: message \"%s\" is not one line \"%s...; expected ...\" containing \"%s\"", #call, captured, prefix, part); \
  } while (0)

#endif
