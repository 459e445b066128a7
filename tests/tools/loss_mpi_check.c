/* loss_mpi_check.c - data-parallel losses, head gradients and optimiser steps give the same bits
 * at any rank count.
 *
 *   mpirun -n P loss_mpi_check OUT.txt
 *       A deterministic global batch of N = 1000 pixels (row i drawn from the stream (seed, i), so
 *       any rank can make any row), d = 6 features, k = 4 classes, 5 images of 200 contiguous rows
 *       (so images are split between ranks), a mask with zeros, ignored labels.  Each rank holds
 *       its rows of bo_rows_partition.  For 6 Adam steps of a linear head trained on CE + entropy
 *       - marginal entropy + KL both ways + L1 (T 10) + Dice + Fisher-Rao, with head gradients
 *       summed over global tiles (one block per tile), rank 0 writes, as hex doubles (%a): every
 *       term's value, the full logit-gradient matrix (gathered in row order), the parameter
 *       gradient and the parameters after the step; then the prototype head's gradient.
 *       The outputs at 1, 2, 3 ranks must be byte-identical.
 *
 * Exit status 0 on success; any library error ends the run with PETSc's status.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boundopt/error.h"
#include "boundopt/heads.h"
#include "boundopt/losses.h"
#include "boundopt/optim.h"
#include "boundopt/rng.h"
#include "boundopt/tiles.h"

enum { N = 1000, D = 6, K = 4, G = 5, STEPS = 6 };
#define SEED 20251125ULL

static void make_row(int64_t i, double *x, uint8_t *y, double *m, int32_t *g, double *noise)
{
  bo_rng r;
  bo_rng_init(&r, SEED, (uint64_t)i, 3);
  *y = (uint8_t)bo_rng_below(&r, K);
  for (int j = 0; j < D; j++) x[j] = bo_rng_normal(&r) + (j == *y ? 1.5 : 0.0);
  const double u = bo_rng_uniform(&r);
  *m = u < 0.1 ? 0.0 : u < 0.2 ? 0.5 : 1.0;
  if (bo_rng_uniform(&r) < 0.05) *y = BO_LABEL_IGNORE;
  *g = (int32_t)(i / (N / G));
  for (int c = 0; c < K; c++) noise[c] = 0.3 * bo_rng_normal(&r);
}

static void put(FILE *f, const char *label, const double *v, int64_t n)
{
  if (!f) return;
  fprintf(f, "%s", label);
  for (int64_t i = 0; i < n; i++) fprintf(f, " %a", v[i]);
  fprintf(f, "\n");
}

/* All rows' n x K values onto rank 0, in rank (= row) order. */
static PetscErrorCode gather(MPI_Comm comm, int64_t n, const double *mine, double *all)
{
  PetscMPIInt size, rank;
  int         cnt = (int)(n * K), *counts = NULL, *displs = NULL;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0) PetscCall(PetscMalloc2(size, &counts, size, &displs));
  PetscCallMPI(MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, comm));
  if (rank == 0)
    for (int p = 0, o = 0; p < size; p++) displs[p] = o, o += counts[p];
  PetscCallMPI(MPI_Gatherv(mine, cnt, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, comm));
  if (rank == 0) PetscCall(PetscFree2(counts, displs));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  MPI_Comm      comm;
  PetscMPIInt   rank, size;
  bo_rows       rows;
  FILE         *out = NULL;
  bo_head       lin, proto;
  bo_optim      opt;
  bo_optim_opts oo;
  bo_prop_opts  mean, slb;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  comm = PETSC_COMM_WORLD;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCheck(argc == 2, comm, BO_ERR_INPUT, "loss_mpi_check: %d arguments; expected OUT.txt", argc - 1);
  bo_rows_partition(N, rank, size, &rows);
  const int64_t n = bo_rows_local(&rows), nt = rows.tile_hi - rows.tile_lo;
  double       *x, *m, *z, *z2, *noise, *gz, *gz2, *all = NULL, prior[G * K], target[G * K];
  uint8_t      *y;
  int32_t      *grp;
  int64_t      *blocks;
  PetscCall(PetscMalloc6(n * D + 1, &x, n + 1, &m, n * K + 1, &z, n * K + 1, &z2, n * K + 1, &noise, n * K + 1, &gz));
  PetscCall(PetscMalloc4(n * K + 1, &gz2, n + 1, &y, n + 1, &grp, nt + 1, &blocks));
  for (int64_t i = 0; i < n; i++) make_row(rows.lo + i, x + i * D, y + i, m + i, grp + i, noise + i * K);
  for (int64_t t = 0; t <= nt; t++) { /* one block per global tile */
    int64_t lo, hi;
    if (t < nt) bo_tile_bounds(N, rows.tile_lo + t, &lo, &hi);
    blocks[t] = t < nt ? lo - rows.lo : n;
  }
  for (int g = 0; g < G; g++)
    for (int c = 0; c < K; c++) prior[g * K + c] = (c + 1.0 + g) / (K * (K + 1) / 2.0 + K * g), target[g * K + c] = c == g % K ? 0.55 : 0.15;
  if (rank == 0) {
    out = fopen(argv[1], "w");
    PetscCheck(out, PETSC_COMM_SELF, BO_ERR_INPUT, "loss_mpi_check: %s: cannot write; expected a writable path", argv[1]);
    PetscCall(PetscMalloc1(N * K, &all));
  }
  bo_prop_defaults(&mean);
  slb = (bo_prop_opts){BO_PROP_MEAN, 10.0, 1e-10};
  PetscCall(bo_head_create_linear(D, K, &lin));
  for (int j = 0; j < lin.nparam; j++) lin.param[j] = 0.1 * sin(1.0 + j);
  bo_optim_defaults_adam(&oo);
  oo.lr = 0.05, oo.weight_decay = 1e-4;
  PetscCall(bo_optim_create(&oo, lin.nparam, &opt));
  for (int step = 0; step < STEPS; step++) {
    double v[9], grad[D * K + K];
    PetscCall(bo_head_forward(&lin, n, x, z));
    for (int64_t i = 0; i < n * K; i++) z2[i] = z[i] + noise[i], gz[i] = gz2[i] = 0;
    bo_loss_batch b = {.comm = comm, .n = n, .k = K, .logits = z, .mask = m, .ngroups = G, .group = grp};
    PetscCall(bo_loss_ce(&b, y, NULL, 1.0, &v[0], gz));
    PetscCall(bo_loss_entropy(&b, NULL, 0.1, &v[1], gz));
    PetscCall(bo_loss_marginal_entropy(&b, &mean, 1e-12, -0.1, &v[2], gz));
    PetscCall(bo_loss_kl_prop(&b, &mean, prior, BO_KL_PRED_PRIOR, 1e-10, 0.2, &v[3], gz));
    PetscCall(bo_loss_kl_prop(&b, &slb, prior, BO_KL_PRIOR_PRED, 0, 0.2, &v[4], gz));
    PetscCall(bo_loss_l1_prop(&b, &slb, target, 1.0, &v[5], gz));
    PetscCall(bo_loss_dice(&b, y, NULL, BO_DICE_LINEAR, 0.5, &v[6], gz));
    PetscCall(bo_loss_fisher_rao(&b, z2, 0, 2.0, &v[7], gz, gz2));
    PetscCall(bo_loss_proportions(&b, &(bo_prop_opts){BO_PROP_MAXNORM, 1.0, 0.0}, prior, NULL)); /* overwritten: maxnorm pihat as the next prior */
    v[8] = prior[0];
    if (out) fprintf(out, "step %d\n", step);
    put(out, "values", v, 9);
    PetscCall(gather(comm, n, gz, all));
    put(out, "dlogits", all, rank == 0 ? N * K : 0);
    PetscCall(gather(comm, n, gz2, all));
    put(out, "dlogits2", all, rank == 0 ? N * K : 0);
    PetscCall(bo_head_backward(&lin, comm, n, x, gz, nt, blocks, grad));
    put(out, "grad", grad, lin.nparam);
    PetscCall(bo_optim_step(&opt, grad, lin.param));
    put(out, "param", lin.param, lin.nparam);
  }
  /* the prototype head on the same rows, gradient of CE + entropy on its binary logits */
  {
    double gp[D + 1], zp[2 * 1000], gzp[2 * 1000] = {0}, v[2];
    uint8_t yb[1000];
    PetscCall(bo_head_create_proto(D, 20, &proto));
    for (int j = 0; j < D; j++) proto.param[j] = cos(1.0 + j);
    proto.param[D] = 0.3;
    PetscCall(bo_head_forward(&proto, n, x, zp));
    for (int64_t i = 0; i < n; i++) yb[i] = y[i] == BO_LABEL_IGNORE ? BO_LABEL_IGNORE : (uint8_t)(y[i] == 0);
    bo_loss_batch b = {.comm = comm, .n = n, .k = 2, .logits = zp, .mask = m, .ngroups = 1};
    PetscCall(bo_loss_ce(&b, yb, NULL, 1.0, &v[0], gzp));
    PetscCall(bo_loss_entropy(&b, NULL, 1.0, &v[1], gzp));
    PetscCall(bo_head_backward(&proto, comm, n, x, gzp, nt, blocks, gp));
    put(out, "proto values", v, 2);
    put(out, "proto grad", gp, D + 1);
    PetscCall(bo_head_destroy(&proto));
  }
  PetscCall(bo_optim_destroy(&opt));
  PetscCall(bo_head_destroy(&lin));
  PetscCall(PetscFree6(x, m, z, z2, noise, gz));
  PetscCall(PetscFree4(gz2, y, grp, blocks));
  if (out) fclose(out);
  PetscCall(PetscFree(all));
  PetscCall(PetscFinalize());
  return 0;
}
