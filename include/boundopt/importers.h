/* importers.h - parsers for the files the `import` task reads: IDX, CSV and PNG.
 *
 * Contract
 *   These functions only parse; they run on one rank, know nothing of MPI or HDF5, and the
 *   caller decides which rank reads what.  Every function returns a PetscErrorCode and is
 *   called through PetscCall().  On failure nothing is allocated for the caller (outputs are
 *   left zeroed or untouched), any file is closed, and the error is raised on PETSC_COMM_SELF
 *   as one line (see error.h):
 *
 *       <path>: <problem>; expected <what>
 *       <path>:<line>: column <k>: <problem>; expected <what>      (CSV, line 1-based, column 0-based)
 *
 *   Codes: PETSC_ERR_FILE_OPEN   the file is missing or cannot be opened;
 *          PETSC_ERR_FILE_READ   reading it failed (a directory, an I/O error);
 *          PETSC_ERR_USER_INPUT  the content is wrong (bad magic, truncated, not a number, ...);
 *          PETSC_ERR_ARG_*       the caller asked for something impossible (row range, bit depth);
 *          PETSC_ERR_FILE_WRITE  a PNG could not be written.
 *   Paths are only borrowed.  Memory handed to the caller comes from PetscMalloc and is released
 *   with the matching *_destroy(); arrays the caller passes in (`out`) are the caller's.
 */
#ifndef BOUNDOPT_IMPORTERS_H
#define BOUNDOPT_IMPORTERS_H
#include <petscsys.h>
#include <stdint.h>

/* ---- IDX (LeCun's MNIST format) ---------------------------------------------------------------
 * Layout: magic 00 00 TT NN, then NN big-endian uint32 dimensions, then the items row-major.
 * Only TT = 0x08 (unsigned byte) is accepted; the other IDX types are refused by name.
 * NN is 1..4.  Files may be gzipped or plain: both are read through zlib's gzopen.
 * Reads stream from the start of the file and hold at most a small buffer, so a rank can read
 * its slice of a 47 MB image file without holding the whole file. */
#define BO_IDX_MAX_DIMS 4

typedef struct {
  int     ndims;                  /* 1..BO_IDX_MAX_DIMS */
  int64_t dims[BO_IDX_MAX_DIMS];  /* dims[0..ndims-1]; the rest are 0 */
  int64_t items;                  /* dims[0] */
  int64_t item_size;              /* values per item: product of dims[1..]; 1 for a 1-D file */
  int64_t data_offset;            /* bytes before the first item: 4 + 4*ndims */
} bo_idx_header;

/* Fills *h from the header of path.  Does not check that the file holds all the items (a gzip
 * file's length is unknown until it is read); the readers below report truncation. */
PetscErrorCode bo_idx_read_header(const char *path, bo_idx_header *h);

/* Items [lo,hi) of path, each flattened to item_size values, as value*scale:
 * out[(i-lo)*item_size + j] for lo <= i < hi, 0 <= j < item_size.  out holds
 * (hi-lo)*item_size floats.  Requires 0 <= lo <= hi <= items.  A file that ends early is
 * an error naming the first incomplete item. */
PetscErrorCode bo_idx_read_items(const char *path, int64_t lo, int64_t hi, float scale, float *out);

/* Labels [lo,hi) of a 1-D IDX file as int32: out[i-lo], 0..255.  Same range rule and errors. */
PetscErrorCode bo_idx_read_labels(const char *path, int64_t lo, int64_t hi, int32_t *out);

/* ---- CSV with a label column -----------------------------------------------------------------
 * Comma separated; spaces around a field and one pair of enclosing double quotes are dropped
 * (quoted fields may not contain commas).  Lines may end in LF or CRLF; blank lines are skipped.
 * The first non-blank line is a header, and skipped, if one of its non-label fields is not a
 * number ("nan" counts as a number, so a bad first data line is reported rather than skipped
 * unless it holds a word).  Every other line must have as many fields as the first and finite numbers (as
 * float) outside the label column.
 * Labels: if every label is a non-negative decimal integer below 2^31-1 they are used as they
 * are (nclasses = max+1, class_names NULL); otherwise each distinct text is a class, numbered
 * 0..C-1 in strcmp order, and class_names[c] is its text.
 * Columns in messages are 0-based, like label_column. */
typedef struct {
  int64_t  n;            /* data rows */
  int64_t  d;            /* features: fields per line minus the label */
  float   *x;            /* n*d, row-major: x[i*d + j] */
  int32_t *labels;       /* n, each in 0..nclasses-1 */
  int      nclasses;
  char   **class_names;  /* nclasses texts, or NULL for integer labels */
} bo_csv_table;

/* Fills *t (owned by the caller afterwards; release with bo_csv_table_destroy). */
PetscErrorCode bo_csv_read(const char *path, int label_column, bo_csv_table *t);
/* Frees what bo_csv_read allocated and zeroes *t; a zeroed table is fine. */
PetscErrorCode bo_csv_table_destroy(bo_csv_table *t);

/* ---- PNG ------------------------------------------------------------------------------------
 * Reads 1/2/4/8/16-bit grey, grey+alpha, RGB, RGBA and palette images, interlaced or not.
 * Alpha and tRNS transparency are dropped, palettes expanded, low-bit grey scaled to 8 bits;
 * no gamma correction is applied (the stored sample values are returned).
 * data[(y*w + x)*c + k] = sample / (2^bit_depth - 1), in [0,1]. */
typedef struct {
  int64_t h, w;
  int     c;          /* 1 (grey) or 3 (RGB) */
  int     bit_depth;  /* 8 or 16: precision of the samples (palette and low-bit grey give 8) */
  double *data;       /* h*w*c */
} bo_image;

/* Fills *img (owned by the caller afterwards; release with bo_image_destroy). */
PetscErrorCode bo_png_read(const char *path, bo_image *img);
/* Writes img (c 1 or 3) as an 8- or 16-bit grey or RGB PNG; img->bit_depth is ignored.
 * Values are clamped to [0,1] (NaN -> 0) and rounded to the nearest level.  A failed write
 * removes the partial file. */
PetscErrorCode bo_png_write(const char *path, const bo_image *img, int bit_depth);
/* Frees img->data and zeroes *img; a zeroed image is fine. */
PetscErrorCode bo_image_destroy(bo_image *img);
#endif
