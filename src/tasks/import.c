/* import.c - task `import`: IDX, CSV or PNG files into an HDF5 features (or image) file.
 *
 *   task: import
 *   output: fmnist.h5
 *   import: {format: idx, images: a.gz,b.gz, labels: la.gz,lb.gz}
 *
 * IDX: each rank decodes only the rows of its shard (the gzip stream is read from the start, which
 * costs little next to the write).  CSV: rank 0 parses the text (a sequential format) and scatters
 * the rows.  PNG: one file gives an image file (/image, H x W or H x W x 3, float64 in [0, 1]);
 * several files of one size give a features file with one flattened image per row.
 */
#include "boundopt/dataset.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"
#include "boundopt/importers.h"
#include "boundopt/memory.h"
#include "boundopt/results.h"
#include "boundopt/tasks.h"
#include <string.h>

typedef struct {
  char  format[16];
  char  images[4096];
  char  labels[4096];
  int   label_column;
  double scale;          /* < 0: the format's default */
  int   nimages, nlabels;
  char **image_files, **label_files;
} import_params;

static PetscErrorCode read_options(bo_job *job, import_params *p)
{
  PetscFunctionBeginUser;
  snprintf(p->format, sizeof p->format, "idx");
  p->scale = -1;
  PetscOptionsBegin(job->comm, "import_", "Task import: IDX, CSV or PNG into HDF5", "boundopt");
  PetscCall(PetscOptionsString("-format", "Input format: idx, csv or png", "", p->format, p->format, sizeof p->format, NULL));
  PetscCall(PetscOptionsString("-images", "Input files, comma separated, concatenated in order (default: -input)", "", p->images, p->images, sizeof p->images, NULL));
  PetscCall(PetscOptionsString("-labels", "IDX label files, one per images file", "", p->labels, p->labels, sizeof p->labels, NULL));
  PetscCall(PetscOptionsInt("-label_column", "CSV: 0-based column of the label (-1: none)", "", p->label_column, &p->label_column, NULL));
  PetscCall(PetscOptionsReal("-scale", "Multiply values by this (default 1/255 for idx, 1 for csv; png is always [0,1])", "", p->scale, &p->scale, NULL));
  PetscOptionsEnd();
  if (!p->images[0]) snprintf(p->images, sizeof p->images, "%s", job->input);
  PetscCheck(!strcmp(p->format, "idx") || !strcmp(p->format, "csv") || !strcmp(p->format, "png"), job->comm, BO_ERR_INPUT, "option -import_format: '%s' is not a format; expected idx, csv or png", p->format);
  if (p->scale < 0) p->scale = strcmp(p->format, "idx") ? 1.0 : 1.0 / 255.0;
  PetscCall(PetscStrToArray(p->images, ',', &p->nimages, &p->image_files));
  PetscCall(PetscStrToArray(p->labels, ',', &p->nlabels, &p->label_files));
  PetscFunctionReturn(0);
}

static PetscErrorCode check_sources(bo_job *job, const import_params *p)
{
  PetscFunctionBeginUser;
  PetscCheck(p->nimages > 0, job->comm, BO_ERR_INPUT, "option -import_images: missing; expected the input files (or -input)");
  PetscCall(bo_job_require(job, "output", job->output, "the HDF5 file to write"));
  if (!strcmp(p->format, "idx"))
    PetscCheck(p->nlabels == 0 || p->nlabels == p->nimages, job->comm, BO_ERR_INPUT, "option -import_labels: %d files for %d images files; expected one labels file per images file", p->nlabels, p->nimages);
  else PetscCheck(p->nlabels == 0, job->comm, BO_ERR_INPUT, "option -import_labels: given for format %s; expected it only with format idx", p->format);
  if (!strcmp(p->format, "csv")) PetscCheck(p->nimages == 1, job->comm, BO_ERR_INPUT, "option -import_images: %d CSV files; expected one CSV file", p->nimages);
  PetscFunctionReturn(0);
}

/* Rank 0 reads a header, the others get a copy, so a bad file raises one error everywhere. */
static PetscErrorCode idx_header(MPI_Comm comm, const char *path, bo_idx_header *h)
{
  PetscMPIInt    rank;
  PetscErrorCode ierr = 0;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(bo_error_try_begin());
  if (!rank) ierr = bo_idx_read_header(path, h);
  PetscCall(bo_error_try_end(comm, ierr));
  PetscCallMPI(MPI_Bcast(h, sizeof *h, MPI_BYTE, 0, comm));
  PetscFunctionReturn(0);
}

static PetscErrorCode import_idx(bo_job *job, import_params *p)
{
  bo_idx_header *img, lab;
  int64_t        n = 0, d = 0, off = 0;
  bo_dataset     ds;
  bo_results     res;
  bo_memory_plan plan = {.task = "import"};
  PetscBool      stop;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(p->nimages, &img));
  for (int f = 0; f < p->nimages; f++) {
    PetscCall(idx_header(job->comm, p->image_files[f], &img[f]));
    if (!f) d = img[f].item_size;
    PetscCheck(img[f].item_size == d, job->comm, BO_ERR_INPUT, "%s: items of %lld values; expected %lld like %s", p->image_files[f], (long long)img[f].item_size, (long long)d, p->image_files[0]);
    if (p->nlabels) {
      PetscCall(idx_header(job->comm, p->label_files[f], &lab));
      PetscCheck(lab.ndims == 1 && lab.items == img[f].items, job->comm, BO_ERR_INPUT, "%s: %lld labels; expected %lld, one per item of %s", p->label_files[f], (long long)lab.items, (long long)img[f].items, p->image_files[f]);
    }
    n += img[f].items;
  }
  PetscCheck(n > 0 && d > 0, job->comm, BO_ERR_INPUT, "%s: no items; expected at least one", p->image_files[0]);
  bo_memory_plan_add(&plan, "shard", bo_dataset_shard_bytes((n + job->size - 1) / job->size + BO_TILE_ROWS, d));
  PetscCall(bo_memory_preflight(job->comm, &plan, job->memory_limit));
  PetscCall(bo_results_create(job, job->output, &res));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) { PetscCall(bo_results_discard(&res)); PetscCall(PetscFree(img)); PetscFunctionReturn(0); }

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_dataset_create(job->comm, n, d, p->nlabels ? PETSC_TRUE : PETSC_FALSE, &ds));
  for (int f = 0; f < p->nimages; off += img[f].items, f++) {
    int64_t a = PetscMax(ds.rows.lo, off), b = PetscMin(ds.rows.hi, off + img[f].items);
    if (a >= b) continue;
    PetscCall(bo_idx_read_items(p->image_files[f], a - off, b - off, (float)p->scale, ds.x + (a - ds.rows.lo) * d));
    if (p->nlabels) PetscCall(bo_idx_read_labels(p->label_files[f], a - off, b - off, ds.labels + (a - ds.rows.lo)));
  }
  snprintf(ds.source, sizeof ds.source, "idx: %.490s", p->images);
  snprintf(ds.preprocessing, sizeof ds.preprocessing, "scale=%g", p->scale);
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  PetscCall(bo_dataset_write(res.file, &ds));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));
  PetscCall(PetscPrintf(job->comm, "import: %s: %lld rows x %lld columns%s\n", job->output, (long long)n, (long long)d, p->nlabels ? ", with labels" : ""));
  PetscCall(bo_dataset_destroy(&ds));
  PetscCall(PetscFree(img));
  PetscFunctionReturn(0);
}

/* Rank 0 parses; shape, names and rows travel by broadcast and scatter. */
static PetscErrorCode import_csv(bo_job *job, import_params *p)
{
  bo_csv_table   t = {0};
  int64_t        shape[3] = {0, 0, 0};
  bo_dataset     ds;
  bo_results     res;
  PetscBool      stop;
  PetscErrorCode ierr = 0;

  PetscFunctionBeginUser;
  PetscCall(bo_results_create(job, job->output, &res));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) { PetscCall(bo_results_discard(&res)); PetscFunctionReturn(0); }
  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(bo_error_try_begin());
  if (!job->rank) ierr = bo_csv_read(p->image_files[0], p->label_column, &t);
  PetscCall(bo_error_try_end(job->comm, ierr));
  shape[0] = t.n; shape[1] = t.d; shape[2] = t.class_names ? t.nclasses : 0;
  PetscCallMPI(MPI_Bcast(shape, 3, MPI_INT64_T, 0, job->comm));
  PetscCheck(shape[0] > 0 && shape[1] > 0, job->comm, BO_ERR_INPUT, "%s: %lld rows of %lld features; expected at least one row and one feature column", p->image_files[0], (long long)shape[0], (long long)shape[1]);
  PetscCall(bo_dataset_create(job->comm, shape[0], shape[1], p->label_column >= 0 ? PETSC_TRUE : PETSC_FALSE, &ds));
  /* Scatter rows (and labels) by the tile partition. */
  PetscMPIInt *counts = NULL, *displs = NULL, *lcounts = NULL, *ldispls = NULL;
  if (!job->rank) {
    PetscCall(PetscMalloc4(job->size, &counts, job->size, &displs, job->size, &lcounts, job->size, &ldispls));
    for (int r = 0; r < job->size; r++) {
      bo_rows rr;
      bo_rows_partition(shape[0], r, job->size, &rr);
      lcounts[r] = (PetscMPIInt)(rr.hi - rr.lo); ldispls[r] = (PetscMPIInt)rr.lo;
      counts[r]  = (PetscMPIInt)((rr.hi - rr.lo) * shape[1]); displs[r] = (PetscMPIInt)(rr.lo * shape[1]);
    }
  }
  PetscCallMPI(MPI_Scatterv(t.x, counts, displs, MPI_FLOAT, ds.x, (PetscMPIInt)(bo_rows_local(&ds.rows) * shape[1]), MPI_FLOAT, 0, job->comm));
  if (ds.labels) PetscCallMPI(MPI_Scatterv(t.labels, lcounts, ldispls, MPI_INT32_T, ds.labels, (PetscMPIInt)bo_rows_local(&ds.rows), MPI_INT32_T, 0, job->comm));
  if (!job->rank) PetscCall(PetscFree4(counts, displs, lcounts, ldispls));
  /* Class names: rank 0 has them; the write is collective with identical arguments. */
  ds.nnames = shape[2];
  if (ds.nnames) {
    PetscCall(PetscMalloc1(ds.nnames, &ds.label_names));
    for (int64_t c = 0; c < ds.nnames; c++) {
      char name[256] = "";
      if (!job->rank) snprintf(name, sizeof name, "%s", t.class_names[c]);
      PetscCallMPI(MPI_Bcast(name, sizeof name, MPI_CHAR, 0, job->comm));
      PetscCall(PetscStrallocpy(name, &ds.label_names[c]));
    }
  }
  for (int64_t i = 0; i < bo_rows_local(&ds.rows) * ds.d; i++) ds.x[i] = (float)(ds.x[i] * p->scale);
  snprintf(ds.source, sizeof ds.source, "csv: %s (label column %d)", p->image_files[0], p->label_column);
  if (p->scale != 1.0) snprintf(ds.preprocessing, sizeof ds.preprocessing, "scale=%g", p->scale);
  if (!job->rank) PetscCall(bo_csv_table_destroy(&t));
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));
  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  PetscCall(bo_dataset_write(res.file, &ds));
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));
  PetscCall(PetscPrintf(job->comm, "import: %s: %lld rows x %lld columns, %lld named classes\n", job->output, (long long)ds.n, (long long)ds.d, (long long)ds.nnames));
  PetscCall(bo_dataset_destroy(&ds));
  PetscFunctionReturn(0);
}

/* PNG files are small: every rank decodes them (identical data), rank 0's values are written. */
static PetscErrorCode import_png(bo_job *job, import_params *p)
{
  bo_results res;
  bo_image  *img;
  PetscBool  stop;

  PetscFunctionBeginUser;
  PetscCall(bo_results_create(job, job->output, &res));
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) { PetscCall(bo_results_discard(&res)); PetscFunctionReturn(0); }
  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(PetscCalloc1(p->nimages, &img));
  for (int f = 0; f < p->nimages; f++) {
    PetscErrorCode ierr;
    PetscCall(bo_error_try_begin());
    ierr = bo_png_read(p->image_files[f], &img[f]);
    PetscCall(bo_error_try_end(job->comm, ierr));
    PetscCheck(img[f].h == img[0].h && img[f].w == img[0].w && img[f].c == img[0].c, job->comm, BO_ERR_INPUT, "%s: %lld x %lld x %d; expected the size of %s (%lld x %lld x %d)", p->image_files[f], (long long)img[f].h, (long long)img[f].w, img[f].c, p->image_files[0], (long long)img[0].h, (long long)img[0].w, img[0].c);
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));
  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  if (p->nimages == 1) {
    hsize_t dims[3] = {(hsize_t)img[0].h, (hsize_t)img[0].w, (hsize_t)img[0].c};
    PetscCall(bo_h5_write_array(res.file, "/image", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, img[0].c == 1 ? 2 : 3, dims, img[0].data));
    PetscCall(bo_h5_attr_write_int64(res.file, "/image", "bit_depth", img[0].bit_depth));
    PetscCall(bo_h5_attr_write_string(res.file, "/", "source", p->image_files[0]));
  } else {
    int64_t    d = img[0].h * img[0].w * img[0].c;
    int64_t    shape[3] = {img[0].h, img[0].w, img[0].c};
    bo_dataset ds;
    PetscCall(bo_dataset_create(job->comm, p->nimages, d, PETSC_FALSE, &ds));
    for (int64_t i = ds.rows.lo; i < ds.rows.hi; i++)
      for (int64_t j = 0; j < d; j++) ds.x[(i - ds.rows.lo) * d + j] = (float)img[i].data[j];
    snprintf(ds.source, sizeof ds.source, "png: %.490s", p->images);
    PetscCall(bo_dataset_write(res.file, &ds));
    PetscCall(bo_h5_attr_write_int64s(res.file, "/features", "image_shape", 3, shape));
    PetscCall(bo_dataset_destroy(&ds));
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));
  PetscCall(PetscPrintf(job->comm, "import: %s: %d image(s) of %lld x %lld x %d\n", job->output, p->nimages, (long long)img[0].h, (long long)img[0].w, img[0].c));
  for (int f = 0; f < p->nimages; f++) PetscCall(bo_image_destroy(&img[f]));
  PetscCall(PetscFree(img));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_import(bo_job *job)
{
  import_params p = {0};

  PetscFunctionBeginUser;
  PetscCall(read_options(job, &p));
  if (!job->help) PetscCall(check_sources(job, &p));
  if (job->help) {
    PetscBool stop;
    PetscCall(bo_job_setup_done(job, &stop));
  } else if (!strcmp(p.format, "idx")) PetscCall(import_idx(job, &p));
  else if (!strcmp(p.format, "csv")) PetscCall(import_csv(job, &p));
  else PetscCall(import_png(job, &p));
  PetscCall(PetscStrToArrayDestroy(p.nimages, p.image_files));
  PetscCall(PetscStrToArrayDestroy(p.nlabels, p.label_files));
  PetscFunctionReturn(0);
}
