/* import_csv.c - numeric CSV tables with one label column (UCI-style files). */
#include <boundopt/importers.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_SHOW "%.40s" /* fields quoted in messages are cut so the error stays one line */

/* Parsing state; owns everything until csv_hand_over() moves it into the table. */
typedef struct {
  const char *path;
  int         label_column;
  int64_t     line;       /* 1-based number of the line being parsed */
  int         ncols;      /* fields per line, set by the first non-blank line (0 before) */
  int64_t     first_line; /* the line that set ncols, cited by the ragged-row error */
  int64_t     n, cap;     /* rows stored / room for */
  float      *x;          /* cap * (ncols-1) */
  size_t     *label_at;   /* cap offsets into pool: row i's label text */
  char       *pool;       /* label texts, NUL-terminated, back to back */
  size_t      pool_len, pool_cap;
  char      **fields;     /* the current line's fields, pointing into the line buffer */
  int         fields_cap;
} csv_reader;

enum { CSV_NUMBER, CSV_NOT_A_NUMBER, CSV_NOT_FINITE };

/* Drops surrounding blanks and one pair of enclosing double quotes, in place. */
static char *csv_trim(char *s)
{
  size_t len;

  while (isspace((unsigned char)*s)) s++;
  len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1])) s[--len] = '\0';
  if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
    s[len - 1] = '\0';
    s++;
  }
  return s;
}

static int csv_parse_number(const char *s, float *v)
{
  char  *end;
  double d;

  errno = 0;
  d     = strtod(s, &end);
  if (end == s || *end != '\0') return CSV_NOT_A_NUMBER;
  /* strtod accepts "nan", "inf" and overflows to inf; none is a usable feature */
  if (!isfinite(d) || fabs(d) > 3.4028234663852886e+38) return CSV_NOT_FINITE;
  *v = (float)d;
  return CSV_NUMBER;
}

/* A non-negative decimal integer that leaves room for nclasses = value+1 in an int. */
static PetscBool csv_parse_class_number(const char *s, int32_t *v)
{
  int64_t value = 0;

  if (!*s) return PETSC_FALSE;
  for (; *s; s++) {
    if (!isdigit((unsigned char)*s)) return PETSC_FALSE;
    value = 10 * value + (*s - '0');
    if (value >= INT32_MAX) return PETSC_FALSE;
  }
  *v = (int32_t)value;
  return PETSC_TRUE;
}

/* Splits line at commas into r->fields (trimmed); *count = number of fields. */
static PetscErrorCode csv_split(csv_reader *r, char *line, int *count)
{
  int64_t commas = 0;

  PetscFunctionBegin;
  for (const char *c = line; *c; c++) commas += *c == ',';
  PetscCheck(commas < INT_MAX / 2, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s:%" PRId64 ": %" PRId64 " fields; expected a table row",
             r->path, r->line, commas + 1);
  *count = (int)commas + 1;
  if (*count > r->fields_cap) {
    PetscCall(PetscFree(r->fields));
    PetscCall(PetscMalloc1(*count, &r->fields));
    r->fields_cap = *count;
  }
  for (int k = 0; k < *count; k++) {
    char *comma = strchr(line, ',');
    if (comma) *comma = '\0';
    r->fields[k] = csv_trim(line);
    line         = comma ? comma + 1 : line + strlen(line);
  }
  PetscFunctionReturn(0);
}

/* The first non-blank line fixes the number of fields. */
static PetscErrorCode csv_set_shape(csv_reader *r, int count)
{
  PetscFunctionBegin;
  PetscCheck(r->label_column >= 0 && r->label_column < count, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s:%" PRId64 ": %d fields, so no label column %d; expected a label column from 0 to %d", r->path, r->line, count,
             r->label_column, count - 1);
  PetscCheck(count >= 2, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s:%" PRId64 ": only the label column; expected at least one numeric feature column", r->path, r->line);
  r->ncols      = count;
  r->first_line = r->line;
  PetscFunctionReturn(0);
}

/* A header is a first line with a non-number outside the label column ("nan" or "1e99" are
 * numbers, so such a line is data and its error is reported). */
static PetscBool csv_is_header(const csv_reader *r)
{
  float v;

  for (int k = 0; k < r->ncols; k++)
    if (k != r->label_column && csv_parse_number(r->fields[k], &v) == CSV_NOT_A_NUMBER) return PETSC_TRUE;
  return PETSC_FALSE;
}

static PetscErrorCode csv_reserve_row(csv_reader *r)
{
  int64_t d = r->ncols - 1;

  PetscFunctionBegin;
  if (r->n < r->cap) PetscFunctionReturn(0);
  r->cap = r->cap ? 2 * r->cap : 1024;
  PetscCall(PetscRealloc((size_t)r->cap * (size_t)d * sizeof(float), &r->x));
  PetscCall(PetscRealloc((size_t)r->cap * sizeof(size_t), &r->label_at));
  PetscFunctionReturn(0);
}

static PetscErrorCode csv_store_label(csv_reader *r, const char *text)
{
  size_t len = strlen(text) + 1;

  PetscFunctionBegin;
  PetscCheck(len > 1, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s:%" PRId64 ": column %d: empty label; expected a class label",
             r->path, r->line, r->label_column);
  if (r->pool_len + len > r->pool_cap) {
    r->pool_cap = 2 * (r->pool_len + len) + 4096;
    PetscCall(PetscRealloc(r->pool_cap, &r->pool));
  }
  PetscCall(PetscMemcpy(r->pool + r->pool_len, text, len));
  r->label_at[r->n] = r->pool_len;
  r->pool_len += len;
  PetscFunctionReturn(0);
}

static PetscErrorCode csv_store_row(csv_reader *r)
{
  float *row;
  int    j = 0;

  PetscFunctionBegin;
  PetscCall(csv_reserve_row(r));
  row = r->x + r->n * (r->ncols - 1);
  for (int k = 0; k < r->ncols; k++) {
    const char *f = r->fields[k];
    int         status;

    if (k == r->label_column) continue;
    status = csv_parse_number(f, &row[j++]);
    PetscCheck(status != CSV_NOT_A_NUMBER, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
               "%s:%" PRId64 ": column %d: '" CSV_SHOW "' is not a number; expected a numeric feature", r->path, r->line, k, f);
    PetscCheck(status != CSV_NOT_FINITE, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
               "%s:%" PRId64 ": column %d: '" CSV_SHOW "' is not finite in single precision; expected a finite numeric feature",
               r->path, r->line, k, f);
  }
  PetscCall(csv_store_label(r, r->fields[r->label_column]));
  r->n++;
  PetscFunctionReturn(0);
}

static PetscBool csv_is_blank(const char *s)
{
  while (isspace((unsigned char)*s)) s++;
  return *s ? PETSC_FALSE : PETSC_TRUE;
}

static PetscErrorCode csv_parse_line(csv_reader *r, char *line)
{
  int count;

  PetscFunctionBegin;
  if (csv_is_blank(line)) PetscFunctionReturn(0);
  PetscCall(csv_split(r, line, &count));
  if (!r->ncols) {
    PetscCall(csv_set_shape(r, count));
    if (csv_is_header(r)) PetscFunctionReturn(0);
  }
  PetscCheck(count == r->ncols, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT,
             "%s:%" PRId64 ": %d fields; expected %d like line %" PRId64, r->path, r->line, count, r->ncols, r->first_line);
  PetscCall(csv_store_row(r));
  PetscFunctionReturn(0);
}

/* getline's buffer belongs to libc, so it is released with free() whatever happens. */
static PetscErrorCode csv_parse_file(csv_reader *r, FILE *fp)
{
  char          *line = NULL;
  size_t         cap  = 0;
  PetscErrorCode ierr = 0;

  PetscFunctionBegin;
  while (!ierr && getline(&line, &cap, fp) >= 0) {
    r->line++;
    ierr = csv_parse_line(r, line);
  }
  free(line);
  PetscCall(ierr);
  PetscCheck(!ferror(fp), PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: cannot read after line %" PRId64 " (%s); expected a readable file",
             r->path, r->line, strerror(errno));
  PetscCheck(r->n > 0, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s: no data rows; expected at least one row of numbers", r->path);
  PetscFunctionReturn(0);
}

/* Integer labels are kept as they are; returns PETSC_FALSE as soon as one is text. */
static PetscErrorCode csv_try_integer_labels(csv_reader *r, bo_csv_table *t, PetscBool *ok)
{
  int32_t max = 0;

  PetscFunctionBegin;
  *ok = PETSC_FALSE;
  for (int64_t i = 0; i < r->n; i++) {
    if (!csv_parse_class_number(r->pool + r->label_at[i], &t->labels[i])) PetscFunctionReturn(0);
    if (t->labels[i] > max) max = t->labels[i];
  }
  t->nclasses    = max + 1;
  t->class_names = NULL;
  *ok            = PETSC_TRUE;
  PetscFunctionReturn(0);
}

static int csv_compare_text(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct label texts in strcmp order become classes 0..C-1. */
static PetscErrorCode csv_map_text_labels(csv_reader *r, bo_csv_table *t)
{
  const char **sorted;
  int64_t      nclasses = 0;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(r->n, &sorted));
  for (int64_t i = 0; i < r->n; i++) sorted[i] = r->pool + r->label_at[i];
  qsort(sorted, (size_t)r->n, sizeof *sorted, csv_compare_text);
  for (int64_t i = 0; i < r->n; i++)
    if (i == 0 || strcmp(sorted[i], sorted[nclasses - 1])) sorted[nclasses++] = sorted[i];
  for (int64_t i = 0; i < r->n; i++) {
    const char  *text = r->pool + r->label_at[i];
    const char **hit  = bsearch(&text, sorted, (size_t)nclasses, sizeof *sorted, csv_compare_text);
    t->labels[i]      = (int32_t)(hit - sorted);
  }
  t->nclasses = (int)nclasses; /* nclasses <= n < 2^31-1, checked by the caller */
  PetscCall(PetscCalloc1(nclasses, &t->class_names)); /* zeroed: a failure midway leaves freeable names */
  for (int64_t c = 0; c < nclasses; c++) PetscCall(PetscStrallocpy(sorted[c], &t->class_names[c]));
  PetscCall(PetscFree(sorted));
  PetscFunctionReturn(0);
}

/* Moves rows and labels into t; on success the reader no longer owns x. */
static PetscErrorCode csv_hand_over(csv_reader *r, bo_csv_table *t)
{
  PetscBool integer;

  PetscFunctionBegin;
  PetscCheck(r->n < INT32_MAX, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s: %" PRId64 " rows; expected fewer than 2^31-1", r->path,
             r->n);
  PetscCall(PetscMalloc1(r->n, &t->labels));
  PetscCall(csv_try_integer_labels(r, t, &integer));
  if (!integer) PetscCall(csv_map_text_labels(r, t));
  t->n = r->n;
  t->d = r->ncols - 1;
  t->x = r->x;
  r->x = NULL;
  PetscFunctionReturn(0);
}

static PetscErrorCode csv_reader_free(csv_reader *r)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(r->x));
  PetscCall(PetscFree(r->label_at));
  PetscCall(PetscFree(r->pool));
  PetscCall(PetscFree(r->fields));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_csv_read(const char *path, int label_column, bo_csv_table *t)
{
  csv_reader     r = {.path = path, .label_column = label_column};
  FILE          *fp;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(t, sizeof *t));
  fp = fopen(path, "r");
  PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open (%s); expected a readable file", path, strerror(errno));
  ierr = csv_parse_file(&r, fp);
  fclose(fp);
  if (!ierr) ierr = csv_hand_over(&r, t);
  if (ierr) PetscCall(bo_csv_table_destroy(t));
  PetscCall(csv_reader_free(&r));
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

PetscErrorCode bo_csv_table_destroy(bo_csv_table *t)
{
  PetscFunctionBegin;
  if (t->class_names)
    for (int c = 0; c < t->nclasses; c++) PetscCall(PetscFree(t->class_names[c]));
  PetscCall(PetscFree(t->class_names));
  PetscCall(PetscFree(t->x));
  PetscCall(PetscFree(t->labels));
  PetscCall(PetscMemzero(t, sizeof *t));
  PetscFunctionReturn(0);
}
