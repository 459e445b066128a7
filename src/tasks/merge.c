/* merge.c - task `merge`: join the few-shot results of job-array slices into one results file.
 *
 *   task: merge
 *   merge: {inputs: "fewshot-*.h5"}          # a glob, or "a.h5,b.h5,...", or a YAML list
 *   output: fewshot.h5
 *
 * Each input is the results file of one `fewshot` job over task ids first_task .. first_task+tasks-1
 * (-fewshot_first, -fewshot_tasks).  The merge
 *   1. sorts the slices by first_task and checks that they are contiguous and do not overlap;
 *   2. checks that they come from one job: the same datasets, the same attributes (methods, ways,
 *      shots, queries, ...), and the same options in /meta/options apart from -fewshot_first,
 *      -fewshot_tasks and the options that only say how to run (output, checkpoint_*, log_*, ...;
 *      bo_checkpoint_option_is_volatile);
 *   3. writes a file shaped exactly as one run over all the tasks: every dataset whose first
 *      dimension is the slice's task count (task_accuracy, predictions, /tasks/support, ...) is
 *      concatenated in task order, every other dataset and attribute is copied (they are equal in
 *      every slice), the root attributes first_task and tasks describe the whole range, and each
 *      group's mean_accuracy and ci95 are recomputed from the joined task_accuracy with
 *      bo_fewshot_mean_ci, whose exact sums give the same bits as a single run; a tuned method's
 *      /<method>/lambda_accuracy and its best_lambda / best_accuracy attributes are recomputed
 *      from the joined /<method>/lambda_<j>/ means with fewshot's rule (highest mean accuracy,
 *      ties to the smaller lambda).
 * The rows are dealt to the ranks as a fewshot job deals tasks; any rank count gives the same file.
 * The rule "first dimension = task count means per task" is generic on purpose, so that datasets
 * the fewshot task adds later are merged without changing this file.
 */
#include "boundopt/checkpoint.h"
#include "boundopt/error.h"
#include "boundopt/fewshot.h"
#include "boundopt/h5.h"
#include "boundopt/results.h"
#include "boundopt/tasks.h"
#include <ctype.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OBJECTS 512
#define NAME_LEN    256
#define INPUTS_LEN  65536

typedef struct {
  char    path[PETSC_MAX_PATH_LEN];
  hid_t   file;
  int64_t first, tasks;
  char  **items; /* "name=value" options that define the computation, sorted */
  int     nitems;
} slice;

typedef struct {
  char      name[NAME_LEN]; /* "/simpleshot/task_accuracy" */
  PetscBool dataset;
  PetscBool per_task;       /* first dimension = the slice's task count */
  int       rank;
  hsize_t   dims[2];
} object;

typedef struct {
  int    count;
  object obj[MAX_OBJECTS];
  int    overflow;
} object_list;

/* Options a slice may change: its task range, and what only says how to run. */
static PetscBool slice_option(const char *name)
{
  return !strcmp(name, "fewshot_first") || !strcmp(name, "fewshot_tasks") || !strcmp(name, "task") || bo_checkpoint_option_is_volatile(name);
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "-a 1 -b x y -c" -> sorted "a=1", "b=x y", "c=": the value runs to the next " -<letter>" (as
 * the checkpoint hash splits PetscOptionsGetAll). */
static PetscErrorCode split_options(const char *text, char ***items, int *count)
{
  char *all, *p;
  int   n = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscStrallocpy(text, &all));
  PetscCall(PetscMalloc1(strlen(all) / 2 + 2, items));
  for (p = all; *p;) {
    while (*p == ' ') p++;
    if (*p != '-') { if (*p) p++; continue; }
    char *name = ++p;
    while (*p && *p != ' ') p++;
    if (*p) *p++ = 0;
    char *value = p, *end;
    while (*p && !(p[0] == '-' && isalpha((unsigned char)p[1]) && (p == value || p[-1] == ' '))) p++;
    for (end = p; end > value && end[-1] == ' '; end--) {}
    char saved = *end;
    *end       = 0;
    if (!slice_option(name)) {
      char *item;
      PetscCall(PetscMalloc1(strlen(name) + strlen(value) + 2, &item));
      sprintf(item, "%s=%s", name, value);
      (*items)[n++] = item;
    }
    *end = saved;
  }
  qsort(*items, (size_t)n, sizeof **items, by_string);
  *count = n;
  PetscCall(PetscFree(all));
  PetscFunctionReturn(0);
}

/* A scalar fixed-length string dataset, "" when absent. */
static PetscErrorCode read_string(hid_t file, const char *name, char **out)
{
  PetscBool has;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_exists(file, name, &has));
  if (!has) {
    PetscCall(PetscStrallocpy("", out));
    PetscFunctionReturn(0);
  }
  hid_t  d = H5Dopen2(file, name, H5P_DEFAULT), ftype = H5Dget_type(d), mtype = H5Tcopy(H5T_C_S1);
  size_t size = H5Tget_size(ftype);
  PetscCall(PetscCalloc1(size + 1, out));
  H5Tset_size(mtype, size + 1);
  herr_t status = H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out);
  H5Tclose(mtype);
  H5Tclose(ftype);
  H5Dclose(d);
  PetscCheck(status >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: cannot read; expected a string", name);
  PetscFunctionReturn(0);
}

/* The inputs: comma-separated paths or globs, expanded on rank 0 (sorted, the output left out). */
static PetscErrorCode expand_inputs(bo_job *job, const char *inputs, int *count, slice **slices)
{
  char  *list = NULL, *save, *tok, *buf;
  size_t len  = 0;
  int    n    = 0;
  char   missing[PETSC_MAX_PATH_LEN] = "", out_real[PATH_MAX] = "";

  PetscFunctionBeginUser;
  if (!job->rank) {
    size_t cap = 4096;
    PetscCall(PetscMalloc1(cap, &list));
    list[0] = 0;
    if (!realpath(job->output, out_real)) out_real[0] = 0;
    PetscCall(PetscStrallocpy(inputs, &buf));
    for (tok = strtok_r(buf, ",", &save); tok && !missing[0]; tok = strtok_r(NULL, ",", &save)) {
      glob_t g;
      while (*tok == ' ') tok++;
      for (char *e = tok + strlen(tok); e > tok && e[-1] == ' ';) *--e = 0;
      if (!*tok) continue;
      if (glob(tok, 0, NULL, &g)) {
        /* No match: a pattern is an error here; a plain path goes on, and opening it says what is wrong. */
        if (strpbrk(tok, "*?[")) { snprintf(missing, sizeof missing, "%s", tok); break; }
        size_t need = len + strlen(tok) + 2;
        if (need > cap) { cap = 2 * need; PetscCall(PetscRealloc(cap, &list)); }
        len += (size_t)sprintf(list + len, "%s\n", tok);
        n++;
        continue;
      }
      for (size_t i = 0; i < g.gl_pathc; i++) {
        char real[PATH_MAX];
        if (out_real[0] && realpath(g.gl_pathv[i], real) && !strcmp(real, out_real)) continue; /* an earlier merge */
        size_t need = len + strlen(g.gl_pathv[i]) + 2;
        if (need > cap) { cap = 2 * need; PetscCall(PetscRealloc(cap, &list)); }
        len += (size_t)sprintf(list + len, "%s\n", g.gl_pathv[i]);
        n++;
      }
      globfree(&g);
    }
    PetscCall(PetscFree(buf));
  }
  PetscCallMPI(MPI_Bcast(missing, sizeof missing, MPI_CHAR, 0, job->comm));
  PetscCheck(!missing[0], job->comm, BO_ERR_INPUT, "option -merge_inputs: no file matches '%s'; expected results files of fewshot slices", missing);
  PetscCallMPI(MPI_Bcast(&n, 1, MPI_INT, 0, job->comm));
  PetscCallMPI(MPI_Bcast(&len, sizeof len, MPI_BYTE, 0, job->comm));
  PetscCheck(n > 0, job->comm, BO_ERR_INPUT, "option -merge_inputs: no file given; expected results files of fewshot slices (a glob or a comma list)");
  if (job->rank) PetscCall(PetscMalloc1(len + 1, &list));
  PetscCallMPI(MPI_Bcast(list, (PetscMPIInt)(len + 1), MPI_CHAR, 0, job->comm));
  PetscCall(PetscCalloc1(n, slices));
  tok = strtok_r(list, "\n", &save);
  for (int i = 0; i < n; i++, tok = strtok_r(NULL, "\n", &save)) {
    PetscCheck(strlen(tok) < PETSC_MAX_PATH_LEN, job->comm, BO_ERR_INPUT, "option -merge_inputs: a path of %zu characters; expected at most %d", strlen(tok), PETSC_MAX_PATH_LEN - 1);
    snprintf((*slices)[i].path, sizeof (*slices)[i].path, "%s", tok);
    (*slices)[i].file = -1;
  }
  PetscCall(PetscFree(list));
  *count = n;
  PetscFunctionReturn(0);
}

static PetscErrorCode open_slice(bo_job *job, slice *s)
{
  PetscBool has_first, has_tasks;
  char     *options;

  PetscFunctionBeginUser;
  PetscCall(bo_h5_open_read(job->comm, s->path, &s->file));
  PetscCall(bo_h5_attr_read_int64(s->file, "/", "first_task", &s->first, &has_first));
  PetscCall(bo_h5_attr_read_int64(s->file, "/", "tasks", &s->tasks, &has_tasks));
  PetscCheck(has_first && has_tasks && s->tasks >= 1 && s->first >= 0, job->comm, BO_ERR_INPUT, "%s: no first_task and tasks attributes; expected the results file of a fewshot job", s->path);
  PetscCall(read_string(s->file, "/meta/options", &options));
  PetscCall(split_options(options, &s->items, &s->nitems));
  PetscCall(PetscFree(options));
  PetscFunctionReturn(0);
}

static int by_first(const void *a, const void *b)
{
  const slice *x = a, *y = b;
  return x->first < y->first ? -1 : x->first > y->first;
}

/* Contiguous, non-overlapping task ranges (the slices are sorted by first_task). */
static PetscErrorCode check_ranges(bo_job *job, int n, const slice *s)
{
  PetscFunctionBeginUser;
  for (int i = 1; i < n; i++) {
    int64_t end = s[i - 1].first + s[i - 1].tasks; /* one past the last task of the previous slice */
    PetscCheck(s[i].first >= end, job->comm, BO_ERR_INPUT, "%s (tasks %lld-%lld) and %s (tasks %lld-%lld) overlap; expected non-overlapping slices", s[i - 1].path, (long long)s[i - 1].first, (long long)(end - 1), s[i].path, (long long)s[i].first, (long long)(s[i].first + s[i].tasks - 1));
    PetscCheck(s[i].first == end, job->comm, BO_ERR_INPUT, "tasks %lld-%lld are missing between %s and %s; expected contiguous slices (a slice per task range)", (long long)end, (long long)(s[i].first - 1), s[i - 1].path, s[i].path);
  }
  PetscFunctionReturn(0);
}

/* The same options, apart from the slice's range and run-only options. */
static PetscErrorCode check_options(bo_job *job, const slice *a, const slice *b)
{
  int i = 0, j = 0;

  PetscFunctionBeginUser;
  while (i < a->nitems || j < b->nitems) {
    int c = i == a->nitems ? 1 : j == b->nitems ? -1 : strcmp(a->items[i], b->items[j]);
    if (!c) { i++; j++; continue; }
    char shown[512], *eq;
    snprintf(shown, sizeof shown, "%s", c < 0 ? a->items[i] : b->items[j]);
    if ((eq = strchr(shown, '='))) *eq = eq[1] ? ' ' : 0; /* "seed=7" -> "seed 7" */
    SETERRQ(job->comm, BO_ERR_INPUT, "%s and %s: option -%s is set in %s only or differs; expected slices of one job (only -fewshot_first, -fewshot_tasks and run options may differ)", a->path, b->path, shown, c < 0 ? a->path : b->path);
  }
  PetscFunctionReturn(0);
}

static PetscBool ends_with(const char *name, const char *tail)
{
  size_t n = strlen(name), t = strlen(tail);
  return n >= t && !strcmp(name + n - t, tail);
}

/* /<method>/lambda_accuracy: the mean accuracy per lambda of a tuned method, recomputed. */
static PetscBool is_grid_accuracy(const char *name) { return ends_with(name, "/lambda_accuracy"); }

static herr_t collect(hid_t root, const char *name, const H5L_info_t *info, void *data)
{
  object_list *list = data;
  (void)info;
  if (!strcmp(name, "meta") || !strncmp(name, "meta/", 5)) return 0;
  if (list->count == MAX_OBJECTS || strlen(name) + 2 > NAME_LEN) { list->overflow = 1; return 1; }
  object *o = &list->obj[list->count];
  memset(o, 0, sizeof *o);
  snprintf(o->name, sizeof o->name, "/%s", name);
  hid_t obj = H5Oopen(root, name, H5P_DEFAULT);
  if (obj < 0) return -1;
  o->dataset = H5Iget_type(obj) == H5I_DATASET;
  if (o->dataset) {
    hid_t space = H5Dget_space(obj);
    o->rank     = H5Sget_simple_extent_ndims(space);
    if (o->rank >= 1 && o->rank <= 2) H5Sget_simple_extent_dims(space, o->dims, NULL);
    H5Sclose(space);
  }
  H5Oclose(obj);
  list->count++;
  return 0;
}

/* The objects (groups and datasets, /meta excepted) of one file, by name. */
static PetscErrorCode list_objects(bo_job *job, const slice *s, object_list *list)
{
  PetscFunctionBeginUser;
  list->count = list->overflow = 0;
  herr_t status = H5Lvisit(s->file, H5_INDEX_NAME, H5_ITER_INC, collect, list);
  PetscCheck(status >= 0 && !list->overflow, job->comm, BO_ERR_INPUT, "%s: cannot list its objects (more than %d, or names over %d characters); expected a fewshot results file", s->path, MAX_OBJECTS, NAME_LEN - 2);
  for (int i = 0; i < list->count; i++) {
    object *o = &list->obj[i];
    PetscCheck(!o->dataset || (o->rank >= 1 && o->rank <= 2), job->comm, BO_ERR_INPUT, "%s: %s has rank %d; expected 1-D or 2-D datasets", s->path, o->name, o->rank);
    /* The lambda grid and its accuracies are per value, not per task, whatever their length. */
    o->per_task = o->dataset && (int64_t)o->dims[0] == s->tasks && !ends_with(o->name, "/lambda") && !is_grid_accuracy(o->name);
  }
  PetscFunctionReturn(0);
}

/* Same objects; a per-task dataset has the slice's rows and the same columns, others equal shapes. */
static PetscErrorCode check_layout(bo_job *job, const slice *ref, const object_list *a, const slice *s, const object_list *b)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < PetscMax(a->count, b->count); i++) {
    const object *x = i < a->count ? &a->obj[i] : NULL, *y = i < b->count ? &b->obj[i] : NULL;
    const char   *only = !x ? y->name : !y ? x->name : strcmp(x->name, y->name) < 0 ? x->name : y->name;
    PetscCheck(x && y && !strcmp(x->name, y->name) && x->dataset == y->dataset, job->comm, BO_ERR_INPUT, "%s and %s: %s is in one of them only; expected slices of one job", ref->path, s->path, only);
    if (!x->dataset) continue;
    PetscCheck(x->rank == y->rank && x->per_task == y->per_task && (x->rank == 1 || x->dims[1] == y->dims[1]) && (x->per_task || x->dims[0] == y->dims[0]), job->comm, BO_ERR_INPUT, "%s and %s: %s has another shape; expected slices of one job", ref->path, s->path, x->name);
  }
  PetscFunctionReturn(0);
}

/* One attribute as raw bytes in its file type (to compare or copy it whatever its type). */
static PetscErrorCode read_attr(hid_t file, const char *obj, const char *name, hid_t *type, hid_t *space, void **buf, size_t *bytes)
{
  PetscFunctionBeginUser;
  hid_t a = H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  PetscCheck(a >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: cannot open attribute %s; expected a readable file", obj, name);
  *type  = H5Aget_type(a);
  *space = H5Aget_space(a);
  *bytes = H5Tget_size(*type) * (size_t)PetscMax(1, H5Sget_simple_extent_npoints(*space));
  PetscCall(PetscCalloc1(*bytes, (char **)buf));
  herr_t status = H5Aread(a, *type, *buf);
  H5Aclose(a);
  PetscCheck(status >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: cannot read attribute %s; expected a readable file", obj, name);
  PetscFunctionReturn(0);
}

typedef struct {
  int  count;
  char name[64][NAME_LEN];
} attr_names;

static herr_t collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
  attr_names *list = data;
  (void)loc; (void)info;
  if (list->count == 64 || strlen(name) >= NAME_LEN) return -1;
  snprintf(list->name[list->count++], NAME_LEN, "%s", name);
  return 0;
}

static PetscErrorCode list_attrs(const slice *s, const char *obj, attr_names *list)
{
  hsize_t idx = 0;

  PetscFunctionBeginUser;
  list->count   = 0;
  herr_t status = H5Aiterate_by_name(s->file, obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, list, H5P_DEFAULT);
  PetscCheck(status >= 0, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: cannot list the attributes of %s (more than 64?); expected a fewshot results file", s->path, obj);
  PetscFunctionReturn(0);
}

/* Attributes the merge recomputes rather than copies. */
static PetscBool recomputed(const char *obj, const char *attr)
{
  if (!strcmp(obj, "/")) return !strcmp(attr, "first_task") || !strcmp(attr, "tasks");
  return !strcmp(attr, "mean_accuracy") || !strcmp(attr, "ci95") || !strcmp(attr, "best_lambda") || !strcmp(attr, "best_accuracy");
}


/* Every other attribute of every object is the same in both slices. */
static PetscErrorCode check_attrs(bo_job *job, const slice *ref, const slice *s, const object_list *objs)
{
  attr_names *a, *b;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&a));
  PetscCall(PetscNew(&b));
  for (int i = -1; i < objs->count; i++) {
    const char *obj = i < 0 ? "/" : objs->obj[i].name;
    PetscCall(list_attrs(ref, obj, a));
    PetscCall(list_attrs(s, obj, b));
    PetscBool same = a->count == b->count;
    for (int k = 0; same && k < a->count; k++) same = !strcmp(a->name[k], b->name[k]);
    PetscCheck(same, job->comm, BO_ERR_INPUT, "%s and %s: the attributes of %s differ; expected slices of one job", ref->path, s->path, obj);
    for (int k = 0; k < a->count; k++) {
      hid_t  ta, sa, tb, sb;
      void  *va, *vb;
      size_t na, nb;
      if (recomputed(obj, a->name[k])) continue;
      PetscCall(read_attr(ref->file, obj, a->name[k], &ta, &sa, &va, &na));
      PetscCall(read_attr(s->file, obj, a->name[k], &tb, &sb, &vb, &nb));
      same = na == nb && H5Tequal(ta, tb) > 0 && !memcmp(va, vb, na);
      H5Tclose(ta); H5Tclose(tb); H5Sclose(sa); H5Sclose(sb);
      PetscCall(PetscFree(va));
      PetscCall(PetscFree(vb));
      PetscCheck(same, job->comm, BO_ERR_INPUT, "%s and %s: attribute %s of %s differs; expected slices of one job", ref->path, s->path, a->name[k], obj);
    }
  }
  PetscCall(PetscFree(a));
  PetscCall(PetscFree(b));
  PetscFunctionReturn(0);
}

/* Copies the attributes of obj from the first slice; first_task, tasks, mean_accuracy and ci95
 * take the merged values (given as NULL when the object has none to recompute). */
static PetscErrorCode write_attrs(const slice *ref, hid_t out, const char *obj, int64_t first, int64_t tasks, const double *mean_ci, const double *best)
{
  attr_names *names;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&names));
  PetscCall(list_attrs(ref, obj, names));
  for (int k = 0; k < names->count; k++) {
    const char *n = names->name[k];
    if (recomputed(obj, n)) {
      if (!strcmp(n, "first_task")) PetscCall(bo_h5_attr_write_int64(out, obj, n, first));
      else if (!strcmp(n, "tasks")) PetscCall(bo_h5_attr_write_int64(out, obj, n, tasks));
      else if (!strncmp(n, "best_", 5)) {
        PetscCheck(best, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: %s has %s but no lambda_accuracy; expected a fewshot results file", ref->path, obj, n);
        PetscCall(bo_h5_attr_write_double(out, obj, n, !strcmp(n, "best_lambda") ? best[0] : best[1]));
      } else {
        PetscCheck(mean_ci, PETSC_COMM_SELF, BO_ERR_INPUT, "%s: %s has %s but no task_accuracy; expected a fewshot results file", ref->path, obj, n);
        PetscCall(bo_h5_attr_write_double(out, obj, n, !strcmp(n, "mean_accuracy") ? mean_ci[0] : mean_ci[1]));
      }
      continue;
    }
    hid_t  type, space;
    void  *value;
    size_t bytes;
    PetscCall(read_attr(ref->file, obj, n, &type, &space, &value, &bytes));
    hid_t  a      = H5Acreate_by_name(out, obj, n, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t status = a >= 0 ? H5Awrite(a, type, value) : -1;
    if (a >= 0) H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
    PetscCall(PetscFree(value));
    PetscCheck(status >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: cannot write attribute %s; expected a writable file", obj, n);
  }
  PetscCall(PetscFree(names));
  PetscFunctionReturn(0);
}

/* A dataset that is not per task: equal in every slice, copied whole. */
static PetscErrorCode copy_whole(bo_job *job, int n, const slice *s, const object *o, hid_t out)
{
  hid_t  d     = H5Dopen2(s[0].file, o->name, H5P_DEFAULT);
  hid_t  ftype = H5Dget_type(d), mtype = H5Tget_native_type(ftype, H5T_DIR_ASCEND);
  size_t bytes = H5Tget_size(mtype) * (size_t)o->dims[0] * (size_t)(o->rank == 2 ? o->dims[1] : 1);
  char  *ref, *other;

  PetscFunctionBeginUser;
  H5Dclose(d);
  PetscCall(PetscMalloc2(PetscMax(1, bytes), &ref, PetscMax(1, bytes), &other));
  PetscCall(bo_h5_read_array(s[0].file, o->name, mtype, ref));
  for (int i = 1; i < n; i++) {
    PetscCall(bo_h5_read_array(s[i].file, o->name, mtype, other));
    PetscCheck(!memcmp(ref, other, bytes), job->comm, BO_ERR_INPUT, "%s and %s: %s differs; expected slices of one job", s[0].path, s[i].path, o->name);
  }
  PetscCall(bo_h5_write_array(out, o->name, mtype, ftype, o->rank, o->dims, ref));
  PetscCall(PetscFree2(ref, other));
  H5Tclose(mtype);
  H5Tclose(ftype);
  PetscFunctionReturn(0);
}

/* A per-task dataset: this rank's rows [lo, hi) of the whole range, read from the slices that
 * hold them (every rank calls every slice: the reads are collective), then written. */
static PetscErrorCode join_rows(bo_job *job, int n, const slice *s, const object *o, int64_t total, hid_t out, PetscBool accuracy, double *mean_ci)
{
  hid_t   d     = H5Dopen2(s[0].file, o->name, H5P_DEFAULT);
  hid_t   ftype = H5Dget_type(d), mtype = H5Tget_native_type(ftype, H5T_DIR_ASCEND);
  int64_t ncols = o->rank == 2 ? (int64_t)o->dims[1] : 1, lo = total * job->rank / job->size, hi = total * (job->rank + 1) / job->size;
  size_t  row   = H5Tget_size(mtype) * (size_t)ncols;
  char   *buf;

  PetscFunctionBeginUser;
  H5Dclose(d);
  PetscCall(PetscMalloc1(PetscMax(1, (size_t)(hi - lo) * row), &buf));
  for (int i = 0, offset = 0; i < n; offset += (int)s[i].tasks, i++) {
    int64_t a = PetscMax(lo, offset), b = PetscMin(hi, offset + s[i].tasks);
    if (b < a) b = a;
    PetscCall(bo_h5_read_rows(s[i].file, o->name, mtype, ncols, a - offset, b - offset, buf + (size_t)(a - lo) * row));
  }
  PetscCall(bo_h5_write_rows(out, o->name, mtype, ftype, total, ncols, lo, hi, buf));
  if (accuracy) PetscCall(bo_fewshot_mean_ci(job->comm, total, hi - lo, (const double *)buf, &mean_ci[0], &mean_ci[1]));
  PetscCall(PetscFree(buf));
  H5Tclose(mtype);
  H5Tclose(ftype);
  PetscFunctionReturn(0);
}

/* The dataset <group>/task_accuracy, float64 per task, whose mean and ci95 the group carries. */
static PetscBool is_accuracy(const object *o)
{
  const char *slash = strrchr(o->name, '/');
  return o->dataset && o->per_task && o->rank == 1 && !strcmp(slash + 1, "task_accuracy");
}

/* <group>/lambda_accuracy[j] = the merged mean of <group>/lambda_<j>/task_accuracy; best = the
 * highest, ties to the smaller lambda (as fewshot.c picks it). */
static PetscErrorCode write_grid(bo_job *job, const slice *ref, const object_list *objs, const double *mean_ci, const object *o, hid_t out, double *best)
{
  char    group[NAME_LEN], name[2 * NAME_LEN];
  int64_t n = (int64_t)o->dims[0];
  double *lambda, *acc;
  int     b = 0;

  PetscFunctionBeginUser;
  snprintf(group, sizeof group, "%.*s", (int)(strlen(o->name) - strlen("/lambda_accuracy")), o->name);
  snprintf(name, sizeof name, "%s/lambda", group);
  PetscCall(PetscMalloc2(n, &lambda, n, &acc));
  PetscCall(bo_h5_read_array(ref->file, name, H5T_NATIVE_DOUBLE, lambda));
  for (int64_t j = 0; j < n; j++) {
    int k;
    snprintf(name, sizeof name, "%s/lambda_%lld/task_accuracy", group, (long long)j);
    for (k = 0; k < objs->count; k++)
      if (!strcmp(objs->obj[k].name, name)) break;
    PetscCheck(k < objs->count, job->comm, BO_ERR_INPUT, "%s: %s has %lld values but no %s; expected a fewshot results file", ref->path, o->name, (long long)n, name);
    acc[j] = mean_ci[2 * k];
    if (acc[j] > acc[b] || (acc[j] == acc[b] && lambda[j] < lambda[b])) b = (int)j;
  }
  PetscCall(bo_h5_write_array(out, o->name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, o->dims, acc));
  best[0] = lambda[b];
  best[1] = acc[b];
  PetscCall(PetscFree2(lambda, acc));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_task_merge(bo_job *job)
{
  char        *inputs;
  int          n = 0;
  slice       *s;
  object_list *objs, *other;
  double      *mean_ci, *best;
  bo_results   res;
  PetscBool    stop;
  int64_t      total = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1(INPUTS_LEN, &inputs));
  PetscOptionsBegin(job->comm, "merge_", "Task merge: join the results of fewshot job-array slices into one results file", "boundopt");
  PetscCall(PetscOptionsString("-inputs", "Results files of the slices: a glob (\"fs-*.h5\") or a comma list", "", inputs, inputs, INPUTS_LEN, NULL));
  PetscOptionsEnd();
  PetscCall(bo_job_setup_done(job, &stop));
  if (stop) { PetscCall(PetscFree(inputs)); PetscFunctionReturn(0); }
  PetscCall(bo_job_require(job, "merge_inputs", inputs, "the slices' results files (merge: {inputs: \"fs-*.h5\"})"));
  PetscCall(bo_job_require(job, "output", job->output, "the merged results file to write"));
  PetscCall(bo_results_create(job, job->output, &res));

  PetscCall(bo_job_phase_begin(job, BO_PHASE_READ));
  PetscCall(expand_inputs(job, inputs, &n, &s));
  PetscCall(PetscFree(inputs));
  for (int i = 0; i < n; i++) PetscCall(open_slice(job, &s[i]));
  qsort(s, (size_t)n, sizeof *s, by_first);
  PetscCall(check_ranges(job, n, s));
  PetscCall(PetscNew(&objs));
  PetscCall(PetscNew(&other));
  PetscCall(list_objects(job, &s[0], objs));
  for (int i = 1; i < n; i++) {
    PetscCall(check_options(job, &s[0], &s[i]));
    PetscCall(list_objects(job, &s[i], other));
    PetscCall(check_layout(job, &s[0], objs, &s[i], other));
    PetscCall(check_attrs(job, &s[0], &s[i], objs));
  }
  for (int i = 0; i < n; i++) total += s[i].tasks;
  PetscCall(bo_job_phase_end(job, BO_PHASE_READ));

  /* Reading the rows, the exact mean/ci reduction and the writes are interleaved per dataset;
   * the work is I/O, so it all counts as the write phase. */
  PetscCall(bo_job_phase_begin(job, BO_PHASE_WRITE));
  PetscCall(PetscCalloc2(2 * (size_t)objs->count, &mean_ci, 2 * (size_t)objs->count, &best));
  for (int i = 0; i < objs->count; i++) {
    object *o = &objs->obj[i];
    if (!o->dataset) {
      PetscBool has;
      PetscCall(bo_h5_exists(res.file, o->name, &has));
      if (!has) {
        hid_t g = H5Gcreate2(res.file, o->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        PetscCheck(g >= 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "%s: cannot create group %s; expected a writable file", res.path, o->name);
        H5Gclose(g);
      }
    } else if (o->per_task) PetscCall(join_rows(job, n, s, o, total, res.file, is_accuracy(o), &mean_ci[2 * i]));
    else if (!is_grid_accuracy(o->name)) PetscCall(copy_whole(job, n, s, o, res.file));
  }
  for (int i = 0; i < objs->count; i++) /* after every task_accuracy: the grids use their means */
    if (is_grid_accuracy(objs->obj[i].name)) PetscCall(write_grid(job, &s[0], objs, mean_ci, &objs->obj[i], res.file, &best[2 * i]));
  PetscCall(write_attrs(&s[0], res.file, "/", s[0].first, total, NULL, NULL));
  for (int i = 0; i < objs->count; i++) {
    const double *mc = NULL, *bl = NULL;
    char          grid[2 * NAME_LEN];
    snprintf(grid, sizeof grid, "%s/lambda_accuracy", objs->obj[i].name);
    for (int j = 0; j < objs->count; j++)
      if (!strcmp(objs->obj[j].name, grid)) bl = &best[2 * j];
    for (int j = 0; j < objs->count; j++) { /* the group's own task_accuracy */
      size_t len = strlen(objs->obj[i].name);
      if (is_accuracy(&objs->obj[j]) && !strncmp(objs->obj[j].name, objs->obj[i].name, len) && !strcmp(objs->obj[j].name + len, "/task_accuracy")) mc = &mean_ci[2 * j];
    }
    PetscCall(write_attrs(&s[0], res.file, objs->obj[i].name, s[0].first, total, mc, bl));
  }
  PetscCall(bo_job_phase_end(job, BO_PHASE_WRITE));
  PetscCall(bo_results_commit(&res, job));
  PetscCall(PetscPrintf(job->comm, "merge: %d slices, tasks %lld-%lld -> %s\n", n, (long long)s[0].first, (long long)(s[0].first + total - 1), job->output));
  for (int i = 0; i < objs->count; i++)
    if (is_accuracy(&objs->obj[i])) PetscCall(PetscPrintf(job->comm, "merge: %-40s accuracy %.2f%% +- %.2f\n", objs->obj[i].name, 100 * mean_ci[2 * i], 100 * mean_ci[2 * i + 1]));

  for (int i = 0; i < n; i++) {
    PetscCall(bo_h5_close(&s[i].file));
    for (int k = 0; k < s[i].nitems; k++) PetscCall(PetscFree(s[i].items[k]));
    PetscCall(PetscFree(s[i].items));
  }
  PetscCall(PetscFree(s));
  PetscCall(PetscFree2(mean_ci, best));
  PetscCall(PetscFree(objs));
  PetscCall(PetscFree(other));
  PetscFunctionReturn(0);
}
