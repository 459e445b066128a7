/* preprocess.c - task `preprocess`: centring, PCA and L2 normalisation of a features file.
 *
 *   task: preprocess
 *   input: fmnist.h5
 *   output: fmnist-pca64.h5
 *   preprocess: {center: mean, pca: 64, l2: true, fit: base.h5}
 *
 * Order: centre, project, normalise.  The mean and the PCA basis come from `fit` when given (e.g.
 * base classes) and are applied to `input`.  PCA always fits the covariance about the mean; with
 * center: none the projection is of the uncentred rows.  The output is a features file (labels
 * and names carried over) with /preprocess/mean, /preprocess/components (d x D) and
 * /preprocess/explained_variance, so the same transform can be applied elsewhere.
 * With the LAPACK eigensolver the output is identical for any number of ranks.
 */
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/memory.h"
#include "boundopt/pca.h"
#include "boundopt/results.h"
#include "boundopt/stats.h"
#include "boundopt/tasks.h"
#include <string.h>

/* Above this D the covariance is too large for one rank's LAPACK call to be sensible. */
#define LAPACK_MAX_D 4096

typedef struct {
  char          center[16];
  PetscBool     l2;
  PetscInt      pca;
  char          fit[PETSC_MAX_PATH_LEN];
  char          eigensolver[16];
  char          grid[32];
  PetscInt      block;
  char          fit_classes[256];
  bo_eigen_opts eig;
} preprocess_params;

static PetscErrorCode read_options(bo_job *job, preprocess_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->center, sizeof p->center, "none");
  snprintf(p->eigensolver, sizeof p->eigensolver, "auto");
  p->block = 64;
  PetscOptionsBegin(job->comm, "preprocess_", "Task preprocess: centre, PCA, L2 (in this order)", "boundopt");
  PetscCall(PetscOptionsString("-center", "Centring: none or mean (of -preprocess_fit when given)", "", p->center, p->center, sizeof p->center, NULL));
  PetscCall(PetscOptionsInt("-pca", "Project on the first d principal axes (0: no PCA)", "", p->pca, &p->pca, NULL));
  PetscCall(PetscOptionsBool("-l2", "Scale every row to unit Euclidean norm", "", p->l2, &p->l2, NULL));
  PetscCall(PetscOptionsString("-fit", "Estimate the mean and PCA basis on this file instead of -input", "", p->fit, p->fit, sizeof p->fit, NULL));
  PetscCall(PetscOptionsString("-fit_classes", "Estimate the mean and PCA basis on the rows of these label ids only, e.g. base classes \"0-4\"", "", p->fit_classes, p->fit_classes, sizeof p->fit_classes, NULL));
  PetscCall(PetscOptionsString("-eigensolver", "auto (LAPACK up to D=4096, else ScaLAPACK), lapack (rank-count independent), scalapack (depends on the grid)", "", p->eigensolver, p->eigensolver, sizeof p->eigensolver, NULL));
  PetscCall(PetscOptionsString("-scalapack_grid", "ScaLAPACK process grid PxQ (default: near-square over all ranks)", "", p->grid, p->grid, sizeof p->grid, NULL));
  PetscCall(PetscOptionsInt("-scalapack_block", "ScaLAPACK block size", "", p->block, &p->block, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

static PetscErrorCode check_options(bo_job *job, preprocess_params *p, int64_t d)
{
  PetscFunctionBeginUser;
  PetscCheck(!strcmp(p->center, "none") || !strcmp(p->center, "mean"), job->comm, BO_ERR_INPUT, "option -preprocess_center: '%s'; expected none or mean", p->center);
  PetscCheck(p->pca >= 0 && p->pca <= d, job->comm, BO_ERR_INPUT, "option -preprocess_pca: %d with D = %lld; expected 0 (no PCA) or 1 <= d <= D", (int)p->pca, (long long)d);
  PetscCheck(!strcmp(p->eigensolver, "auto") || !strcmp(p->eigensolver, "lapack") || !strcmp(p->eigensolver, "scalapack"), job->comm, BO_ERR_INPUT, "option -preprocess_eigensolver: '%s'; expected auto, lapack or scalapack", p->eigensolver);
  PetscCheck(p->block >= 1, job->comm, BO_ERR_INPUT, "option -preprocess_scalapack_block: %d; expected a positive block size", (int)p->block);
  p->eig.method = !strcmp(p->eigensolver, "scalapack") || (!strcmp(p->eigensolver, "auto") && d > LAPACK_MAX_D) ? BO_EIGEN_SCALAPACK : BO_EIGEN_LAPACK;
  p->eig.block  = (int)p->block;
  if (p->grid[0]) {
    int r, c;
    PetscCheck(sscanf(p->grid, "%dx%d", &r, &c) == 2 && r >= 1 && c >= 1 && r * c <= job->size, job->comm, BO_ERR_INPUT, "option -preprocess_scalapack_grid: '%s' with %d ranks; expected PxQ with P*Q <= the number of ranks", p->grid, job->size);
    p->eig.nprow = r;
    p->eig.npcol = c;
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode plan_memory(bo_job *job, const preprocess_params *p, int64_t n, int64_t nfit, int64_t d)
{
  bo_memory_plan plan = {.task = "preprocess"};
  int64_t        rows = n / job->size + BO_TILE_ROWS, fitrows = nfit / job->size + BO_TILE_ROWS;

  PetscFunctionBeginUser;
  bo_memory_plan_add(&plan, "input shard", bo_dataset_shard_bytes(rows, d));
  if (p->fit[0]) bo_memory_plan_add(&plan, "fit shard", bo_dataset_shard_bytes(fitrows, d));
  if (p->pca) {
    bo_memory_plan_add(&plan, "output shard", bo_dataset_shard_bytes(rows, p->pca));
    /* covariance, tile Gram, packed triangle (double) and its 128-bit accumulator */
    bo_memory_plan_add(&plan, "covariance", (double)d * d * (8 + 8 + 4 + 8) + (double)BO_TILE_ROWS * d * 8);
    if (p->eig.method == BO_EIGEN_LAPACK && !job->rank) bo_memory_plan_add(&plan, "eigensolver", (double)d * d * 16 + (double)d * 64);
  }
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  PetscFunctionReturn(0);
}

/* mask[i] = 1 for the fit rows whose label is one of -preprocess_fit_classes. */
static PetscErrorCode class_mask(bo_job *job, const preprocess_params *p, const bo_dataset *src, unsigned char **mask)
{
  int32_t ids[1024];
  int     nids;
  int64_t local = bo_rows_local(&src->rows);

  PetscFunctionBeginUser;
  PetscCall(bo_job_parse_ids(job, "preprocess_fit_classes", p->fit_classes, 1024, ids, &nids));
  PetscCheck(src->labels || !src->n, job->comm, BO_ERR_INPUT, "option -preprocess_fit_classes: %s has no /labels; expected labels to select classes", src->path);
  PetscCall(PetscCalloc1(PetscMax(1, local), mask));
  for (int64_t i = 0; i < local; i++)
    for (int c = 0; c < nids; c++)
      if (src->labels[i] == ids[c]) (*mask)[i] = 1;
  PetscFunctionReturn(0);
}

static PetscErrorCode describe(const preprocess_params *p, const bo_pca *pca, const bo_dataset *in, char *buf, size_t len)
{
  char step[512];

  PetscFunctionBeginUser;
  snprintf(buf, len, "%s", in->preprocessing);
  if (!strcmp(p->center, "mean")) {
    snprintf(step, sizeof step, "%scenter=mean(%.400s)", buf[0] ? "; " : "", p->fit[0] ? p->fit : "self");
    strncat(buf, step, len - strlen(buf) - 1);
  }
  if (p->pca) {
    snprintf(step, sizeof step, "%spca=%d(%s, fit %.300s%s%.60s)", buf[0] ? "; " : "", (int)p->pca, p->eig.method == BO_EIGEN_LAPACK ? "lapack" : "scalapack", p->fit[0] ? p->fit : "self", p->fit_classes[0] ? " classes " : "", p->fit_classes);
    strncat(buf, step, len - strlen(buf) - 1);
  }
  if (p->l2) strncat(buf, buf[0] ? "; l2" : "l2", len - strlen(buf) - 1);
  if (!buf[0]) snprintf(buf, len, "none");
  (void)pca;
  PetscFunctionReturn(0);
}

static PetscErrorCode write_transform(hid_t file, const bo_pca *pca, const double *mean, int64_t d)
{
  hsize_t dims[2] = {(hsize_t)d, 0};

  PetscFunctionBeginUser;
  if (mean) PetscCall(bo_h5_write_array(file, "/preprocess/mean", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, mean));
  if (pca) {
    dims[0] = (hsize_t)pca->ncomp;
    dims[1] = (hsize_t)d;
    PetscCall(bo_h5_write_array(file, "/preprocess/components", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, dims, pca->components));
    PetscCall(bo_h5_write_array(file, "/preprocess/explained_variance", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dims, pca->variance));
    PetscCall(bo_h5_attr_write_double(file, "/preprocess/explained_variance", "total_variance", pca->total_variance));
    PetscCall(bo_h5_attr_write_string(file, "/preprocess", "eigensolver", pca->rank_invariant ? "lapack" : "scalapack"));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_preprocess(bo_job *job)
{
  preprocess_params    p = {0};
  bo_dataset           in, fit, out, *src;
  bo_dataset_read_opts opts = {.check_finite = PETSC_TRUE};
  bo_results           res;
  bo_pca               pca;
  double              *mean = NULL;
  unsigned char       *mask = NULL;
  int64_t              n = 0, d = 0, nfit = 0, dfit = 0;
  PetscBool            stop, centre, need_mean;

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) PetscFunctionReturn(0);
  PetscCall(bo_job_require(job, "input", job->input, "a features file (HDF5 with /features)"));
  PetscCall(bo_job_require(job, "output", job->output, "the features file to write"));
  PetscCall(bo_dataset_probe(job->comm, job->input, &n, &d));
  nfit = n;
  if (p.fit[0]) {
    PetscCall(bo_dataset_probe(job->comm, p.fit, &nfit, &dfit));
    PetscCheck(dfit == d, job->comm, BO_ERR_INPUT, "option -preprocess_fit: %s has D = %lld; expected D = %lld like %s", p.fit, (long long)dfit, (long long)d, job->input);
  }
  PetscCall(check_options(job, &p, d));
  PetscCall(plan_memory(job, &p, n, p.fit[0] ? nfit : 0, d));
  PetscCall(bo_results_create(job, job->output, &res));
  centre    = !strcmp(p.center, "mean") ? PETSC_TRUE : PETSC_FALSE;
  need_mean = centre || p.pca ? PETSC_TRUE : PETSC_FALSE;

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_read(job->comm, job->input, &opts, &in));
  src = &in;
  if (p.fit[0] && need_mean) {
    PetscCall(bo_dataset_read(job->comm, p.fit, &opts, &fit));
    src = &fit;
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_COMPUTE));
  if (p.fit_classes[0]) PetscCall(class_mask(job, &p, src, &mask));
  if (need_mean) {
    PetscCall(PetscMalloc1(d, &mean));
    PetscCall(bo_stats_column_mean_masked(job->comm, &src->rows, d, src->x, mask, mean));
  }
  if (p.pca) {
    PetscCall(bo_pca_fit_masked(job->comm, &src->rows, d, src->x, mask, mean, p.pca, &p.eig, &pca));
    res.rank_invariant = pca.rank_invariant;
    PetscCall(bo_dataset_create(job->comm, n, p.pca, PETSC_FALSE, &out));
    PetscCall(bo_pca_project(&in.rows, d, in.x, centre ? mean : NULL, &pca, out.x));
    out.labels = in.labels; /* ownership moves to out */
    in.labels  = NULL;
  } else {
    out   = in; /* transform in place: ownership moves to out */
    in.x  = NULL;
    in.labels = NULL;
    in.nnames = 0;
    in.label_names = NULL;
    if (centre) bo_rows_subtract(bo_rows_local(&out.rows), d, mean, out.x);
  }
  if (p.l2) bo_rows_l2_normalize(bo_rows_local(&out.rows), out.d, out.x);
  PetscCall(bo_job_phase_end(job, BO_PHASE_COMPUTE));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  if (p.pca) PetscCall(bo_dataset_copy_label_names(&in, &out));
  snprintf(out.source, sizeof out.source, "%.500s", job->input);
  PetscCall(describe(&p, p.pca ? &pca : NULL, &in, out.preprocessing, sizeof out.preprocessing));
  PetscCall(bo_dataset_write(res.file, &out));
  PetscCall(write_transform(res.file, p.pca ? &pca : NULL, mean, d));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));
  PetscCall(PetscPrintf(job->comm, "preprocess: %s: %lld rows x %lld columns (%s)\n", job->output, (long long)out.n, (long long)out.d, out.preprocessing));

  if (p.pca) PetscCall(bo_pca_destroy(&pca));
  if (src == &fit) PetscCall(bo_dataset_destroy(&fit));
  PetscCall(bo_dataset_destroy(&out));
  PetscCall(bo_dataset_destroy(&in));
  PetscCall(PetscFree(mean));
  PetscCall(PetscFree(mask));
  PetscFunctionReturn(0);
}
