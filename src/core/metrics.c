/* metrics.c - clustering and classification metrics (see metrics.h; spec §11).
 *
 * Table layout: counts[c * ntrue + t] = number of points with cluster c and true label t.
 *
 * NMI (natural logs).  With N = Σ counts, a_c the cluster sizes, b_t the class sizes:
 *   H(C) = Σ_c (a_c/N) log(N/a_c),  H(T) = Σ_t (b_t/N) log(N/b_t),
 *   I(C;T) = Σ_{c,t: n_ct>0} (n_ct/N) log(N n_ct / (a_c b_t)),
 *   arithmetic = I / ((H(C)+H(T))/2)   (scikit-learn >= 0.22 default),
 *   geometric  = I / sqrt(H(C) H(T))   (scikit-learn <= 0.21 default).
 * Degenerate cases, as scikit-learn's normalized_mutual_info_score (which counts only the labels
 * that occur, so empty rows or columns of the table do not count as classes):
 *   - both sides a single class           -> 1 (both normalisations);
 *   - one side a single class, other not  -> 0 (sklearn: "mi == 0 -> 0.0");
 *   - one cluster per label and one label per cluster (a relabelling; the table has one nonzero
 *     per used row and per used column) -> exactly 1, rather than 1 - 1 ulp from summing H(C) and
 *     H(T) in different orders;
 *   - otherwise both entropies are > 0; I is clipped to >= 0 (as sklearn) and the ratios are
 *     clipped to <= 1 (their mathematical bound: I <= min(H) <= GM <= AM), which only removes
 *     last-ulp round-off such as 1.0000000000000002 for a perfect match.
 * An empty table (N = 0) is an error here (scikit-learn returns 1.0 for empty labelings; a metric
 * of no points is more likely a bug upstream than a perfect score).
 *
 * ACC = max over one-to-one maps of clusters to labels of the matched count / N, the map from
 * bo_hungarian_max on the table as weights (clusters = rows).  When nclust > ntrue, the surplus
 * clusters match nothing (their points count as errors); when nclust < ntrue, surplus labels do.
 *
 * bo_hungarian_max: Kuhn-Munkres with row/column potentials and shortest augmenting paths (the
 * O(n^2 m) "e-maxx" formulation) on cost = -weight.  It solves an n x m problem with n <= m
 * directly, which is the square problem padded with m - n zero rows (padding rows take the
 * unmatched columns and never change the optimum); an r x c problem with r > c is solved as its
 * transpose.  So every row is matched when r <= c, and exactly c rows are matched (the rest get
 * -1) when r > c.  Memory O(r c), time O(min(r,c)^2 max(r,c)).
 */
#include "boundopt/metrics.h"
#include "boundopt/error.h"
#include <inttypes.h>
#include <limits.h>
#include <math.h>

/* --------------------------------------------------------------------------- Hungarian */

/* Min-cost assignment of n rows to distinct columns of an n x m cost matrix (n <= m, row-major).
 * rowcol[i] = column of row i.  All arrays 0-based in the interface, 1-based inside. */
static PetscErrorCode hungarian_min(int64_t n, int64_t m, const double *cost, int64_t *rowcol)
{
  double    *u, *v, *minv;
  int64_t   *p, *way;
  PetscBool *used;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc3((size_t)(n + 1), &u, (size_t)(m + 1), &v, (size_t)(m + 1), &minv));
  PetscCall(PetscMalloc3((size_t)(m + 1), &p, (size_t)(m + 1), &way, (size_t)(m + 1), &used));
  for (int64_t i = 0; i <= n; i++) u[i] = 0;
  for (int64_t j = 0; j <= m; j++) { v[j] = 0; p[j] = 0; way[j] = 0; }

  for (int64_t i = 1; i <= n; i++) {
    int64_t j0 = 0;
    p[0] = i; /* column 0 is the virtual start of the augmenting path, holding row i */
    for (int64_t j = 0; j <= m; j++) { minv[j] = INFINITY; used[j] = PETSC_FALSE; }
    do {
      const int64_t i0    = p[j0];
      const double *row   = cost + (i0 - 1) * m - 1; /* row[j], j = 1..m */
      const double  ui0   = u[i0];
      double        delta = INFINITY;
      int64_t       j1    = 0;
      used[j0] = PETSC_TRUE;
      for (int64_t j = 1; j <= m; j++) {
        if (used[j]) continue;
        const double cur = row[j] - ui0 - v[j];
        if (cur < minv[j]) { minv[j] = cur; way[j] = j0; }
        if (minv[j] < delta) { delta = minv[j]; j1 = j; }
      }
      /* n <= m and only (rows matched so far + 1) <= n columns are used, so j1 was found */
      for (int64_t j = 0; j <= m; j++) {
        if (used[j]) { u[p[j]] += delta; v[j] -= delta; }
        else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] != 0);
    do { /* flip the augmenting path */
      const int64_t j1 = way[j0];
      p[j0] = p[j1];
      j0    = j1;
    } while (j0);
  }
  for (int64_t i = 0; i < n; i++) rowcol[i] = -1;
  for (int64_t j = 1; j <= m; j++)
    if (p[j]) rowcol[p[j] - 1] = j - 1;
  PetscCall(PetscFree3(u, v, minv));
  PetscCall(PetscFree3(p, way, used));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_hungarian_max(int64_t r, int64_t c, const double *weight, int64_t *assign)
{
  int64_t  n, m, *rowcol;
  double  *cost;
  PetscBool transposed;

  PetscFunctionBeginUser;
  PetscCheck(r >= 0 && c >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "hungarian: matrix size %" PRId64 " x %" PRId64 " is negative; expected r >= 0 and c >= 0", r, c);
  PetscCheck(r == 0 || assign, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "hungarian: the assignment array is NULL; expected room for %" PRId64 " entries", r);
  if (r == 0) PetscFunctionReturn(0);
  if (c == 0) {
    for (int64_t i = 0; i < r; i++) assign[i] = -1;
    PetscFunctionReturn(0);
  }
  PetscCheck(r <= INT64_MAX / c, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "hungarian: matrix size %" PRId64 " x %" PRId64 " overflows; expected a smaller matrix", r, c);
  PetscCheck(weight, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "hungarian: the weight matrix is NULL; expected %" PRId64 " x %" PRId64 " values", r, c);
  for (int64_t k = 0; k < r * c; k++)
    PetscCheck(isfinite(weight[k]), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "hungarian: weight[%" PRId64 "][%" PRId64 "] = %g is not finite; expected finite weights", k / c, k % c, weight[k]);

  transposed = r > c ? PETSC_TRUE : PETSC_FALSE;
  n          = transposed ? c : r;
  m          = transposed ? r : c;
  PetscCall(PetscMalloc2((size_t)(n * m), &cost, (size_t)n, &rowcol));
  if (!transposed) {
    for (int64_t k = 0; k < r * c; k++) cost[k] = -weight[k];
  } else {
    for (int64_t i = 0; i < r; i++)
      for (int64_t j = 0; j < c; j++) cost[j * r + i] = -weight[i * c + j];
  }
  PetscCall(hungarian_min(n, m, cost, rowcol));
  if (!transposed) {
    for (int64_t i = 0; i < r; i++) assign[i] = rowcol[i];
  } else {
    for (int64_t i = 0; i < r; i++) assign[i] = -1;
    for (int64_t j = 0; j < c; j++) assign[rowcol[j]] = j;
  }
  PetscCall(PetscFree2(cost, rowcol));
  PetscFunctionReturn(0);
}

/* --------------------------------------------------------------------------- table checks */

/* Checks sizes and counts; returns N = Σ counts (> 0). */
static PetscErrorCode table_total(const char *what, int64_t nclust, int64_t ntrue, const int64_t *counts, int64_t *total)
{
  int64_t n = 0;

  PetscFunctionBeginUser;
  PetscCheck(nclust >= 1 && ntrue >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: contingency table of %" PRId64 " clusters x %" PRId64 " labels; expected at least 1 x 1", what, nclust, ntrue);
  PetscCheck(nclust <= INT64_MAX / ntrue, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: contingency table of %" PRId64 " x %" PRId64 " overflows; expected a smaller table", what, nclust, ntrue);
  PetscCheck(counts, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "%s: the contingency table is NULL; expected %" PRId64 " x %" PRId64 " counts", what, nclust, ntrue);
  for (int64_t k = 0; k < nclust * ntrue; k++) {
    PetscCheck(counts[k] >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: count[%" PRId64 "][%" PRId64 "] = %" PRId64 " is negative; expected counts >= 0", what, k / ntrue, k % ntrue, counts[k]);
    PetscCheck(counts[k] <= INT64_MAX - n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: the counts sum past 2^63; expected a total that fits in int64", what);
    n += counts[k];
  }
  PetscCheck(n > 0, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: the contingency table is empty (0 points); expected at least one labelled point", what);
  *total = n;
  PetscFunctionReturn(0);
}

/* --------------------------------------------------------------------------- NMI */

PetscErrorCode bo_metrics_nmi(int64_t nclust, int64_t ntrue, const int64_t *counts, double *nmi_arithmetic, double *nmi_geometric)
{
  int64_t  n, used_c = 0, used_t = 0, nnz = 0;
  int64_t *a, *b;
  double   N, hc = 0, ht = 0, mi = 0, arith, geom;

  PetscFunctionBeginUser;
  PetscCall(table_total("nmi", nclust, ntrue, counts, &n));
  PetscCall(PetscCalloc2((size_t)nclust, &a, (size_t)ntrue, &b));
  for (int64_t c = 0; c < nclust; c++)
    for (int64_t t = 0; t < ntrue; t++) {
      a[c] += counts[c * ntrue + t];
      b[t] += counts[c * ntrue + t];
    }
  N = (double)n;
  for (int64_t c = 0; c < nclust; c++)
    if (a[c]) { used_c++; hc += ((double)a[c] / N) * log(N / (double)a[c]); }
  for (int64_t t = 0; t < ntrue; t++)
    if (b[t]) { used_t++; ht += ((double)b[t] / N) * log(N / (double)b[t]); }

  for (int64_t k = 0; k < nclust * ntrue; k++) nnz += counts[k] != 0;

  if (used_c == 1 && used_t == 1) arith = geom = 1.0; /* neither labeling splits the data */
  else if (used_c == 1 || used_t == 1) arith = geom = 0.0; /* I = 0 exactly, other H > 0 */
  else if (nnz == used_c && nnz == used_t) arith = geom = 1.0; /* a relabelling: I = H(C) = H(T) */
  else {
    for (int64_t c = 0; c < nclust; c++)
      for (int64_t t = 0; t < ntrue; t++) {
        const int64_t k = counts[c * ntrue + t];
        if (k) mi += ((double)k / N) * log((N * (double)k) / ((double)a[c] * (double)b[t]));
      }
    if (!(mi > 0)) mi = 0; /* round-off below 0, as sklearn's clip */
    arith = mi / (0.5 * (hc + ht));
    geom  = mi / sqrt(hc * ht);
    if (arith > 1) arith = 1;
    if (geom > 1) geom = 1;
  }
  if (nmi_arithmetic) *nmi_arithmetic = arith;
  if (nmi_geometric) *nmi_geometric = geom;
  PetscCall(PetscFree2(a, b));
  PetscFunctionReturn(0);
}

/* --------------------------------------------------------------------------- ACC */

PetscErrorCode bo_metrics_acc(int64_t nclust, int64_t ntrue, const int64_t *counts, double *acc)
{
  int64_t  n, matched = 0, *assign;
  double  *w;

  PetscFunctionBeginUser;
  PetscCall(table_total("acc", nclust, ntrue, counts, &n));
  PetscCheck(acc, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "acc: the result pointer is NULL; expected a double to write");
  PetscCall(PetscMalloc2((size_t)(nclust * ntrue), &w, (size_t)nclust, &assign));
  for (int64_t k = 0; k < nclust * ntrue; k++) w[k] = (double)counts[k];
  PetscCall(bo_hungarian_max(nclust, ntrue, w, assign));
  for (int64_t c = 0; c < nclust; c++)
    if (assign[c] >= 0) matched += counts[c * ntrue + assign[c]];
  *acc = (double)matched / (double)n;
  PetscCall(PetscFree2(w, assign));
  PetscFunctionReturn(0);
}

/* --------------------------------------------------------------------------- contingency */

PetscErrorCode bo_contingency(MPI_Comm comm, int64_t local, const int32_t *clusters, const int32_t *truth, int64_t nclust, int64_t ntrue, int64_t *counts)
{
  int64_t    *buf, first_bad = -1, nbad, size;
  PetscMPIInt count;

  PetscFunctionBeginUser;
  /* nclust and ntrue are replicated: every rank takes the same branch */
  PetscCheck(nclust >= 1 && ntrue >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "contingency: %" PRId64 " clusters x %" PRId64 " labels; expected at least 1 x 1", nclust, ntrue);
  PetscCheck(nclust <= (INT_MAX - 1) / ntrue, comm, PETSC_ERR_ARG_OUTOFRANGE, "contingency: a table of %" PRId64 " x %" PRId64 " counts; expected fewer than 2^31 counts", nclust, ntrue);
  PetscCheck(local >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "contingency: %" PRId64 " local points; expected a count >= 0", local);
  PetscCheck(local == 0 || (clusters && truth), PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "contingency: a label array is NULL; expected %" PRId64 " labels", local);
  PetscCheck(counts, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "contingency: the table is NULL; expected room for %" PRId64 " x %" PRId64 " counts", nclust, ntrue);

  size = nclust * ntrue;
  PetscCall(PetscCalloc1((size_t)(size + 1), &buf));
  for (int64_t i = 0; i < local; i++) {
    const int64_t c = clusters[i], t = truth[i];
    if (c < 0 || c >= nclust || t < 0 || t >= ntrue) {
      if (first_bad < 0) first_bad = i;
      buf[size]++;
      continue;
    }
    buf[c * ntrue + t]++;
  }
  PetscCall(PetscMPIIntCast(size + 1, &count));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_INT64_T, MPI_SUM, comm)); /* exact */
  nbad = buf[size];
  for (int64_t k = 0; k < size; k++) counts[k] = buf[k];
  PetscCall(PetscFree(buf));

  if (nbad) { /* every rank knows: name the first bad point (global index) identically on all */
    int64_t     offset = 0, mine = INT64_MAX, first, what[2] = {0, 0};
    PetscMPIInt rank;
    PetscCallMPI(MPI_Comm_rank(comm, &rank));
    PetscCallMPI(MPI_Exscan(&local, &offset, 1, MPI_INT64_T, MPI_SUM, comm));
    if (rank == 0) offset = 0; /* MPI_Exscan leaves rank 0's result undefined */
    if (first_bad >= 0) mine = offset + first_bad;
    PetscCallMPI(MPI_Allreduce(&mine, &first, 1, MPI_INT64_T, MPI_MIN, comm));
    if (first_bad >= 0 && mine == first) {
      const int64_t c = clusters[first_bad];
      const PetscBool bad_cluster = c < 0 || c >= nclust;
      what[0] = bad_cluster ? 1 : 2;
      what[1] = bad_cluster ? c : truth[first_bad];
    }
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, what, 2, MPI_INT64_T, MPI_SUM, comm));
    SETERRQ(comm, PETSC_ERR_USER_INPUT, "contingency: point %" PRId64 " has %s label %" PRId64 " (%" PRId64 " of the points are out of range); expected a %s label in 0..%" PRId64,
            first, what[0] == 1 ? "cluster" : "true", what[1], nbad, what[0] == 1 ? "cluster" : "true", (what[0] == 1 ? nclust : ntrue) - 1);
  }
  PetscFunctionReturn(0);
}

/* --------------------------------------------------------------------------- PSNR, SSIM */

PetscErrorCode bo_metrics_psnr(int64_t h, int64_t w, int c, const double *a, const double *b, double range, double *psnr)
{
  int64_t n = h * w * c;
  double  se = 0;

  PetscFunctionBeginUser;
  PetscCheck(n > 0 && range > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "psnr: %" PRId64 " samples, range %g; expected a non-empty image and range > 0", n, range);
  for (int64_t k = 0; k < n; k++) se += (a[k] - b[k]) * (a[k] - b[k]);
  *psnr = se > 0 ? 10 * log10(range * range / (se / (double)n)) : INFINITY;
  PetscFunctionReturn(0);
}

/* Separable Gaussian filter of one channel over the valid region: out is (h-10) x (w-10). */
static void ssim_filter(int64_t h, int64_t w, const double *win, const double *in, double *tmp, double *out)
{
  const int64_t vw = w - 10, vh = h - 10;
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < vw; x++) {
      double s = 0;
      for (int k = 0; k < 11; k++) s += win[k] * in[y * w + x + k];
      tmp[y * vw + x] = s;
    }
  for (int64_t y = 0; y < vh; y++)
    for (int64_t x = 0; x < vw; x++) {
      double s = 0;
      for (int k = 0; k < 11; k++) s += win[k] * tmp[(y + k) * vw + x];
      out[y * vw + x] = s;
    }
}

PetscErrorCode bo_metrics_ssim(int64_t h, int64_t w, int c, const double *a, const double *b, double range, double *ssim)
{
  const double  c1 = (0.01 * range) * (0.01 * range), c2 = (0.03 * range) * (0.03 * range);
  const int64_t n = h * w, nv = (h - 10) * (w - 10);
  double        win[11], sum = 0, total = 0;
  double       *x, *y, *xx, *yy, *xy, *mx, *my, *sxx, *syy, *sxy, *tmp;

  PetscFunctionBeginUser;
  PetscCheck(h >= 11 && w >= 11 && c >= 1 && range > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "ssim: image %" PRId64 " x %" PRId64 " x %d, range %g; expected at least 11 x 11 pixels and range > 0", h, w, c, range);
  for (int k = 0; k < 11; k++) sum += win[k] = exp(-0.5 * (k - 5) * (k - 5) / (1.5 * 1.5));
  for (int k = 0; k < 11; k++) win[k] /= sum;
  PetscCall(PetscMalloc5(n, &x, n, &y, n, &xx, n, &yy, n, &xy));
  PetscCall(PetscMalloc6(nv, &mx, nv, &my, nv, &sxx, nv, &syy, nv, &sxy, n, &tmp));
  for (int k = 0; k < c; k++) {
    double mean = 0;
    for (int64_t p = 0; p < n; p++) {
      x[p]  = a[p * c + k];
      y[p]  = b[p * c + k];
      xx[p] = x[p] * x[p];
      yy[p] = y[p] * y[p];
      xy[p] = x[p] * y[p];
    }
    ssim_filter(h, w, win, x, tmp, mx);
    ssim_filter(h, w, win, y, tmp, my);
    ssim_filter(h, w, win, xx, tmp, sxx);
    ssim_filter(h, w, win, yy, tmp, syy);
    ssim_filter(h, w, win, xy, tmp, sxy);
    for (int64_t p = 0; p < nv; p++) {
      double vx = sxx[p] - mx[p] * mx[p], vy = syy[p] - my[p] * my[p], cxy = sxy[p] - mx[p] * my[p];
      mean += ((2 * mx[p] * my[p] + c1) * (2 * cxy + c2)) / ((mx[p] * mx[p] + my[p] * my[p] + c1) * (vx + vy + c2));
    }
    total += mean / (double)nv;
  }
  *ssim = total / c;
  PetscCall(PetscFree5(x, y, xx, yy, xy));
  PetscCall(PetscFree6(mx, my, sxx, syy, sxy, tmp));
  PetscFunctionReturn(0);
}
