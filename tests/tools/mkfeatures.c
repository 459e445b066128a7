/* mkfeatures - writes small feature files for the tests, good ones and deliberately bad ones.
 *
 *   mkfeatures OUT.h5 [-n N] [-d D] [-classes C] [-seed S] [-dtype float32|float64|int32]
 *              [-rank 2|3] [-labels ok|none|short|negative|float] [-nan ROW] [-names]
 *              [-no-features] [-identical] [-duplicate-last] [-sep S]
 *
 * Rows are Gaussian blobs (unit variance) around C centres S apart in each of their dimensions (class = row % C), drawn from the
 * project's counter-based streams, so a file is the same on every machine.  Serial HDF5.
 */
#include "boundopt/rng.h"
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *out, *dtype, *labels;
  long        n, d, classes, seed, rank, nan_row;
  double      sep;
  int         names, no_features, identical, duplicate_last;
} args_t;

static int parse(int argc, char **argv, args_t *a)
{
  *a = (args_t){.dtype = "float32", .labels = "ok", .n = 200, .d = 8, .classes = 3, .seed = 1, .rank = 2, .nan_row = -1, .sep = 4};
  if (argc < 2) return 0;
  a->out = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(k, "-names")) { a->names = 1; continue; }
    if (!strcmp(k, "-no-features")) { a->no_features = 1; continue; }
    if (!strcmp(k, "-identical")) { a->identical = 1; continue; }
    if (!strcmp(k, "-duplicate-last")) { a->duplicate_last = 1; continue; }
    i++;
    if (!strcmp(k, "-n")) a->n = atol(v);
    else if (!strcmp(k, "-d")) a->d = atol(v);
    else if (!strcmp(k, "-classes")) a->classes = atol(v);
    else if (!strcmp(k, "-seed")) a->seed = atol(v);
    else if (!strcmp(k, "-rank")) a->rank = atol(v);
    else if (!strcmp(k, "-nan")) a->nan_row = atol(v);
    else if (!strcmp(k, "-sep")) a->sep = atof(v);
    else if (!strcmp(k, "-dtype")) a->dtype = v;
    else if (!strcmp(k, "-labels")) a->labels = v;
    else return 0;
  }
  return 1;
}

static void write_dataset(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims, const void *buf)
{
  hid_t s = H5Screate_simple(rank, dims, NULL);
  hid_t d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  H5Dclose(d);
  H5Sclose(s);
}

int main(int argc, char **argv)
{
  args_t a;
  if (!parse(argc, argv, &a)) {
    fprintf(stderr, "usage: mkfeatures OUT.h5 [-n N] [-d D] [-classes C] [-seed S] [-dtype T] [-rank R] [-labels L] [-nan ROW] [-names] [-no-features]\n");
    return 2;
  }
  long    classes = a.classes > 0 ? a.classes : 1;
  double *x       = calloc((size_t)(a.n * a.d + 1), sizeof *x);
  int    *y       = calloc((size_t)(a.n + 1), sizeof *y);
  for (long i = 0; i < a.n; i++) {
    bo_rng r;
    bo_rng_init(&r, (uint64_t)a.seed, (uint64_t)i, 7);
    y[i] = (int)(i % classes);
    for (long j = 0; j < a.d; j++) x[i * a.d + j] = (j % classes == y[i] ? a.sep : 0.0) + bo_rng_normal(&r);
  }
  if (a.identical)
    for (long i = 0; i < a.n * a.d; i++) x[i] = 1.0;
  if (a.duplicate_last && a.n >= 2)
    for (long j = 0; j < a.d; j++) x[(a.n - 1) * a.d + j] = x[(a.n - 2) * a.d + j];
  if (a.nan_row >= 0 && a.nan_row < a.n) x[a.nan_row * a.d + a.d / 2] = NAN;
  hid_t f = H5Fcreate(a.out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) { fprintf(stderr, "mkfeatures: cannot create %s\n", a.out); return 1; }
  if (!a.no_features) {
    hsize_t dims[3] = {(hsize_t)a.n, (hsize_t)a.d, 1};
    hid_t   ftype   = !strcmp(a.dtype, "float64") ? H5T_IEEE_F64LE : !strcmp(a.dtype, "int32") ? H5T_STD_I32LE : H5T_IEEE_F32LE;
    write_dataset(f, "/features", ftype, H5T_NATIVE_DOUBLE, (int)a.rank, dims, x);
  }
  if (strcmp(a.labels, "none")) {
    hsize_t n = (hsize_t)(a.n - (strcmp(a.labels, "short") ? 0 : 1));
    if (!strcmp(a.labels, "negative") && a.n > 5) y[5] = -3;
    if (!strcmp(a.labels, "float")) {
      double *yf = malloc((size_t)(a.n + 1) * sizeof *yf);
      for (long i = 0; i < a.n; i++) yf[i] = y[i];
      write_dataset(f, "/labels", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &n, yf);
      free(yf);
    } else write_dataset(f, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &n, y);
  }
  if (a.names) {
    char   *names = calloc((size_t)classes, 16);
    hid_t   t     = H5Tcopy(H5T_C_S1);
    hsize_t c     = (hsize_t)classes;
    for (long k = 0; k < classes; k++) snprintf(names + 16 * k, 16, "class-%c", (char)('A' + k % 26));
    H5Tset_size(t, 16);
    write_dataset(f, "/label_names", t, t, 1, &c, names);
    H5Tclose(t);
    free(names);
  }
  H5Fclose(f);
  free(x);
  free(y);
  return 0;
}
