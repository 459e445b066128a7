/* fewshot_fixtures.h - shared by the few-shot unit tests (test_fewshot.c, test_slkshot.c): the
 * one-line error check and synthetic Gaussian tasks.  Header-only: each test is one program. */
#ifndef BOUNDOPT_TEST_FEWSHOT_FIXTURES_H
#define BOUNDOPT_TEST_FEWSHOT_FIXTURES_H
#include <stdlib.h>
#include <string.h>
#include <petscsys.h>
#include "boundopt/rng.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

/* The error code and message of a call made under the return handler. */
#define EXPECT_ERROR(call, code, fragment)                                       \
  do {                                                                           \
    PetscErrorCode ierr_;                                                        \
    const char    *msg_ = NULL;                                                  \
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL);                        \
    ierr_ = (call);                                                              \
    PetscPopErrorHandler();                                                      \
    assert_int_equal(ierr_, code);                                               \
    PetscErrorMessage(ierr_, NULL, (char **)&msg_);                              \
    if (!msg_ || !strstr(msg_, fragment)) fail_msg("message '%s' lacks '%s'", msg_ ? msg_ : "", fragment); \
  } while (0)

/* A task of `ways` Gaussian classes around centres c_k (sigma), `shots` support and `queries`
 * query rows per class. */
typedef struct {
  int64_t  ns, nq, d;
  double  *zs, *zq;
  int32_t *ys, *yq;
} toy_task;

static toy_task gaussian_task(bo_rng *r, int ways, int shots, int queries, int64_t d, const double *centres, double sigma)
{
  toy_task t = {.ns = (int64_t)ways * shots, .nq = (int64_t)ways * queries, .d = d};
  t.zs = malloc(sizeof *t.zs * (size_t)(t.ns * d)); t.ys = malloc(sizeof *t.ys * (size_t)t.ns);
  t.zq = malloc(sizeof *t.zq * (size_t)(t.nq * d)); t.yq = malloc(sizeof *t.yq * (size_t)t.nq);
  for (int64_t i = 0; i < t.ns; i++) {
    t.ys[i] = (int32_t)(i / shots);
    for (int64_t j = 0; j < d; j++) t.zs[i * d + j] = centres[t.ys[i] * d + j] + sigma * bo_rng_normal(r);
  }
  for (int64_t i = 0; i < t.nq; i++) {
    t.yq[i] = (int32_t)(i / queries);
    for (int64_t j = 0; j < d; j++) t.zq[i * d + j] = centres[t.yq[i] * d + j] + sigma * bo_rng_normal(r);
  }
  return t;
}

static void free_toy(toy_task *t) { free(t->zs); free(t->zq); free(t->ys); free(t->yq); }
#endif
