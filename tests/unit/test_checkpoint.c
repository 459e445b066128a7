/* test_checkpoint.c - properties of checkpoints (checkpoint.h): the job hash, exact round trips,
 * refusal of another job's file, and atomic replacement. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/checkpoint.h"
#include "boundopt/error.h"
#include "boundopt/h5.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

enum { N = 1000, NCOLS = 3, NCENTRES = 7 };

static char scratch[1024];

/* ---------------------------------------------------------------- fixtures */

static void path_in_scratch(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", scratch, name); }

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static void set_option(const char *name, const char *value) { assert_int_equal(PetscOptionsSetValue(NULL, name, value), 0); }
static void clear_option(const char *name) { assert_int_equal(PetscOptionsClearValue(NULL, name), 0); }

static uint64_t job_hash(uint64_t identity)
{
  uint64_t h = 0;
  assert_int_equal(bo_checkpoint_job_hash(identity, &h), 0);
  return h;
}

/* The values a checkpoint holds: every bit pattern matters (negative zero, subnormals, NaN payload). */
typedef struct {
  double  x[N * NCOLS];
  int32_t labels[N];
  float   f[N * 2];
  double  energy, centres[NCENTRES];
  int64_t iteration;
} state_t;

static void make_state(state_t *s, int variant)
{
  for (int i = 0; i < N * NCOLS; i++) s->x[i] = (i % 5 == 0 ? -1.0 : 1.0) * (i + variant) / 7.0 * pow(10.0, (i % 11) - 5);
  s->x[4]  = -0.0;
  s->x[5]  = 0x1p-1070; /* subnormal */
  s->x[6]  = DBL_MAX;
  for (int i = 0; i < N; i++) s->labels[i] = (i * 37 + variant) % 10 - (i == 3); /* one -1 */
  for (int i = 0; i < N * 2; i++) s->f[i] = (float)(i * 0.001 - 0.5 + variant);
  s->energy    = 0.1 + variant;
  s->iteration = INT64_MIN + 12345 + variant;
  for (int i = 0; i < NCENTRES; i++) s->centres[i] = 1.0 / (i + 3 + variant);
}

static void write_state(const char *path, uint64_t hash, const state_t *s)
{
  bo_checkpoint ck;
  assert_int_equal(bo_checkpoint_begin_write(MPI_COMM_SELF, path, hash, &ck), 0);
  assert_int_equal(bo_checkpoint_put_rows(&ck, "x", H5T_NATIVE_DOUBLE, N, NCOLS, 0, N, s->x), 0);
  assert_int_equal(bo_checkpoint_put_rows(&ck, "labels", H5T_NATIVE_INT32, N, 1, 0, N, s->labels), 0);
  assert_int_equal(bo_checkpoint_put_rows(&ck, "f", H5T_NATIVE_FLOAT, N, 2, 0, N, s->f), 0);
  assert_int_equal(bo_checkpoint_put_double(&ck, "energy", s->energy), 0);
  assert_int_equal(bo_checkpoint_put_int64(&ck, "iteration", s->iteration), 0);
  assert_int_equal(bo_checkpoint_put_doubles(&ck, "centres", NCENTRES, s->centres), 0);
  assert_int_equal(bo_checkpoint_end_write(&ck), 0);
}

/* Reads everything back, the rows in the given pieces, and compares bit for bit. */
static void assert_reads_back(const char *path, uint64_t hash, const state_t *want, const int64_t *cuts, int ncuts)
{
  bo_checkpoint ck;
  PetscBool     exists = PETSC_FALSE;
  state_t      *got    = calloc(1, sizeof *got);

  assert_int_equal(bo_checkpoint_open(MPI_COMM_SELF, path, hash, &ck, &exists), 0);
  assert_true(exists);
  for (int c = 0; c + 1 < ncuts; c++) {
    int64_t lo = cuts[c], hi = cuts[c + 1];
    assert_int_equal(bo_checkpoint_get_rows(&ck, "x", H5T_NATIVE_DOUBLE, NCOLS, lo, hi, got->x + lo * NCOLS), 0);
    assert_int_equal(bo_checkpoint_get_rows(&ck, "labels", H5T_NATIVE_INT32, 1, lo, hi, got->labels + lo), 0);
    assert_int_equal(bo_checkpoint_get_rows(&ck, "f", H5T_NATIVE_FLOAT, 2, lo, hi, got->f + lo * 2), 0);
  }
  assert_int_equal(bo_checkpoint_get_double(&ck, "energy", &got->energy), 0);
  assert_int_equal(bo_checkpoint_get_int64(&ck, "iteration", &got->iteration), 0);
  assert_int_equal(bo_checkpoint_get_doubles(&ck, "centres", NCENTRES, got->centres), 0);
  assert_int_equal(bo_checkpoint_close(&ck), 0);
  assert_memory_equal(got->x, want->x, sizeof want->x);
  assert_memory_equal(got->labels, want->labels, sizeof want->labels);
  assert_memory_equal(got->f, want->f, sizeof want->f);
  assert_memory_equal(&got->energy, &want->energy, sizeof want->energy);
  assert_true(got->iteration == want->iteration);
  assert_memory_equal(got->centres, want->centres, sizeof want->centres);
  free(got);
}

/* Opens expecting a refusal; returns the code, msg gets the message. */
static PetscErrorCode open_expecting_error(const char *path, uint64_t hash, char *msg, size_t len)
{
  bo_checkpoint  ck;
  PetscBool      exists = PETSC_FALSE;
  PetscErrorCode ierr;
  char          *specific = NULL;

  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = bo_checkpoint_open(MPI_COMM_SELF, path, hash, &ck, &exists);
  PetscPopErrorHandler();
  PetscErrorMessage(ierr, NULL, &specific);
  snprintf(msg, len, "%s", ierr && specific ? specific : "");
  if (ck.file >= 0) assert_int_equal(bo_checkpoint_close(&ck), 0);
  return ierr;
}

static int setup(void **state)
{
  (void)state;
  snprintf(scratch, sizeof scratch, "%s/boundopt-ckpt-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(scratch) ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  /* everything a test left in the scratch folder, .tmp files included */
  DIR           *dir = opendir(scratch);
  struct dirent *e;
  char           path[PETSC_MAX_PATH_LEN];
  while (dir && (e = readdir(dir)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(path, sizeof path, "%s/%.255s", scratch, e->d_name);
      unlink(path);
    }
  if (dir) closedir(dir);
  return rmdir(scratch);
}

/* ---------------------------------------------------------------- properties */

static void run_only_options_are_volatile_and_computing_options_are_not(void **state)
{
  (void)state;
  const char *run_only[]  = {"restart", "checkpoint_file", "checkpoint_every", "log_view", "cluster_monitor", "ksp_monitor", "help",
                             "output", "memory_limit", "options_left", "debug_traceback"};
  const char *computing[] = {"cluster_k", "seed", "input", "task", "preprocess_pca", "cluster_max_iter", "monitoring_k"};
  for (size_t i = 0; i < sizeof run_only / sizeof run_only[0]; i++)
    if (!bo_checkpoint_option_is_volatile(run_only[i])) fail_msg("-%s should be run-only (left out of the job hash)", run_only[i]);
  for (size_t i = 0; i < sizeof computing / sizeof computing[0]; i++)
    if (bo_checkpoint_option_is_volatile(computing[i])) fail_msg("-%s changes the computation, but is treated as run-only", computing[i]);
}

static void job_hash_follows_computing_options_and_input_only(void **state)
{
  (void)state;
  const uint64_t id = 0x0123456789abcdefULL;
  uint64_t       h0 = job_hash(id), h;

  assert_true(job_hash(id) == h0);     /* deterministic */
  assert_true((h0 >> 63) == 0);        /* fits the int64 attribute */
  assert_true(job_hash(id + 1) != h0); /* another input */

  set_option("-cluster_k", "5");
  uint64_t h5 = job_hash(id);
  assert_true(h5 != h0);
  set_option("-cluster_k", "6");
  assert_true(job_hash(id) != h5); /* the value counts, not only the name */
  set_option("-cluster_k", "5");
  assert_true(job_hash(id) == h5);

  /* run-only options, with and without values, leave it alone */
  set_option("-log_view", NULL);
  set_option("-checkpoint_file", "/somewhere/ck.h5");
  set_option("-checkpoint_every", "3");
  set_option("-cluster_monitor", NULL);
  set_option("-memory_limit", "2G");
  set_option("-output", "out.h5");
  set_option("-restart", NULL);
  h = job_hash(id);
  if (h != h5) fail_msg("a run-only option changed the job hash");

  /* a computing option given after run-only ones, and a flag without a value, still count */
  set_option("-cluster_normalize", NULL);
  assert_true(job_hash(id) != h5);
  clear_option("-cluster_normalize");
  set_option("-seed", "7");
  uint64_t hs7 = job_hash(id);
  assert_true(hs7 != h5);
  set_option("-seed", "8");
  assert_true(job_hash(id) != hs7);

  const char *given[] = {"-log_view", "-checkpoint_file", "-checkpoint_every", "-cluster_monitor", "-memory_limit", "-output", "-restart", "-seed", "-cluster_k"};
  for (size_t i = 0; i < sizeof given / sizeof given[0]; i++) clear_option(given[i]);
  assert_true(job_hash(id) == h0);
}

static void the_boundary_between_option_name_and_value_counts_in_the_job_hash(void **state)
{
  (void)state;
  /* -ab c and -a bc are different jobs: name and value must not run together in the hash */
  set_option("-ab", "c");
  uint64_t h1 = job_hash(9);
  clear_option("-ab");
  set_option("-a", "bc");
  uint64_t h2 = job_hash(9);
  clear_option("-a");
  assert_true(h1 != h2);
}

static void an_option_value_with_spaces_counts_in_full_in_the_job_hash(void **state)
{
  (void)state;
  /* A value may hold spaces (a YAML string, a list): all of it names the computation. */
  set_option("-layers", "64 32 16");
  uint64_t h1 = job_hash(3);
  set_option("-layers", "64 32 8");
  uint64_t h2 = job_hash(3);
  set_option("-layers", "64 -32 16");
  uint64_t h3 = job_hash(3);
  clear_option("-layers");
  if (h1 == h2) fail_msg("-layers '64 32 16' and -layers '64 32 8' give the same job hash");
  if (h1 == h3) fail_msg("-layers '64 32 16' and -layers '64 -32 16' give the same job hash");
}

static void negative_option_values_count_in_the_job_hash(void **state)
{
  (void)state;
  set_option("-shift", "-1");
  uint64_t h1 = job_hash(1);
  set_option("-shift", "-2");
  uint64_t h2 = job_hash(1);
  clear_option("-shift");
  uint64_t h0 = job_hash(1);
  assert_true(h1 != h2);
  assert_true(h1 != h0 && h2 != h0);
}

static void a_checkpoint_reads_back_exactly(void **state)
{
  (void)state;
  char           path[PETSC_MAX_PATH_LEN], tmp[PETSC_MAX_PATH_LEN + 8];
  state_t       *s       = calloc(1, sizeof *s);
  const int64_t  whole[] = {0, N};
  const uint64_t hash    = job_hash(77);

  path_in_scratch(path, sizeof path, "ck.h5");
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  make_state(s, 0);
  write_state(path, hash, s);
  assert_true(file_exists(path));
  assert_false(file_exists(tmp)); /* renamed into place, nothing left over */
  assert_reads_back(path, hash, s, whole, 2);
  free(s);
}

static void rows_read_back_in_any_pieces(void **state)
{
  (void)state;
  /* Another partition of the rows (as at another rank count) reads the same values. */
  char           path[PETSC_MAX_PATH_LEN];
  state_t       *s        = calloc(1, sizeof *s);
  const int64_t  pieces[] = {0, 1, 256, 256, 257, 600, 999, N};
  const uint64_t hash     = job_hash(78);

  path_in_scratch(path, sizeof path, "pieces.h5");
  make_state(s, 3);
  write_state(path, hash, s);
  assert_reads_back(path, hash, s, pieces, (int)(sizeof pieces / sizeof pieces[0]));
  free(s);
}

static void another_jobs_checkpoint_is_refused(void **state)
{
  (void)state;
  char     path[PETSC_MAX_PATH_LEN], msg[2048];
  state_t *s = calloc(1, sizeof *s);
  uint64_t mine = job_hash(100), theirs;

  path_in_scratch(path, sizeof path, "other.h5");
  set_option("-cluster_k", "4");
  theirs = job_hash(100);
  clear_option("-cluster_k");
  assert_true(theirs != mine);
  make_state(s, 1);
  write_state(path, theirs, s);
  PetscErrorCode ierr = open_expecting_error(path, mine, msg, sizeof msg);
  if (ierr != BO_ERR_INPUT) fail_msg("error %d (\"%s\"), expected %d", (int)ierr, msg, (int)BO_ERR_INPUT);
  if (!strstr(msg, "another job")) fail_msg("message \"%s\" lacks \"another job\"", msg);
  if (strncmp(msg, path, strlen(path))) fail_msg("message \"%s\" does not start with the path", msg);
  if (!strstr(msg, "; expected ")) fail_msg("message \"%s\" has no 'expected' part", msg);
  /* the right job still opens it */
  const int64_t whole[] = {0, N};
  assert_reads_back(path, theirs, s, whole, 2);
  free(s);
}

static void a_missing_checkpoint_is_reported_as_absent(void **state)
{
  (void)state;
  char          path[PETSC_MAX_PATH_LEN];
  bo_checkpoint ck;
  PetscBool     exists = PETSC_TRUE;

  path_in_scratch(path, sizeof path, "never-written.h5");
  assert_int_equal(bo_checkpoint_open(MPI_COMM_SELF, path, job_hash(1), &ck, &exists), 0);
  assert_false(exists);
  assert_int_equal(bo_checkpoint_close(&ck), 0); /* nothing opened: closing is harmless */
  assert_false(file_exists(path));
}

static void a_write_replaces_the_previous_checkpoint_only_when_complete(void **state)
{
  (void)state;
  char           path[PETSC_MAX_PATH_LEN], tmp[PETSC_MAX_PATH_LEN + 8];
  state_t       *old = calloc(1, sizeof *old), *new = calloc(1, sizeof *new);
  const int64_t  whole[] = {0, N};
  const uint64_t hash    = job_hash(5);
  bo_checkpoint  ck;

  path_in_scratch(path, sizeof path, "replace.h5");
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  make_state(old, 10);
  make_state(new, 20);
  write_state(path, hash, old);
  /* half-way through the next write, the file at path is still the complete old checkpoint */
  assert_int_equal(bo_checkpoint_begin_write(MPI_COMM_SELF, path, hash, &ck), 0);
  assert_int_equal(bo_checkpoint_put_rows(&ck, "x", H5T_NATIVE_DOUBLE, N, NCOLS, 0, N, new->x), 0);
  assert_true(file_exists(tmp));
  assert_reads_back(path, hash, old, whole, 2);
  assert_int_equal(bo_checkpoint_put_rows(&ck, "labels", H5T_NATIVE_INT32, N, 1, 0, N, new->labels), 0);
  assert_int_equal(bo_checkpoint_put_rows(&ck, "f", H5T_NATIVE_FLOAT, N, 2, 0, N, new->f), 0);
  assert_int_equal(bo_checkpoint_put_double(&ck, "energy", new->energy), 0);
  assert_int_equal(bo_checkpoint_put_int64(&ck, "iteration", new->iteration), 0);
  assert_int_equal(bo_checkpoint_put_doubles(&ck, "centres", NCENTRES, new->centres), 0);
  assert_int_equal(bo_checkpoint_end_write(&ck), 0);
  assert_false(file_exists(tmp));
  assert_reads_back(path, hash, new, whole, 2);
  free(old);
  free(new);
}

static void a_wrong_count_of_values_is_refused(void **state)
{
  (void)state;
  char           path[PETSC_MAX_PATH_LEN], *specific = NULL;
  state_t       *s    = calloc(1, sizeof *s);
  const uint64_t hash = job_hash(6);
  bo_checkpoint  ck;
  PetscBool      exists;
  double         centres[NCENTRES + 1];

  path_in_scratch(path, sizeof path, "ck.h5");
  make_state(s, 2);
  write_state(path, hash, s);
  assert_int_equal(bo_checkpoint_open(MPI_COMM_SELF, path, hash, &ck, &exists), 0);
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  PetscErrorCode ierr = bo_checkpoint_get_doubles(&ck, "centres", NCENTRES + 1, centres);
  PetscPopErrorHandler();
  assert_int_equal(ierr, BO_ERR_INPUT);
  PetscErrorMessage(ierr, NULL, &specific);
  assert_non_null(strstr(specific, "expected 8"));
  assert_int_equal(bo_checkpoint_close(&ck), 0);
  free(s);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("run-only options (restart, checkpoint_*, log_*, *_monitor, help, output, memory_limit) are volatile; cluster_k, seed, input are not", run_only_options_are_volatile_and_computing_options_are_not),
    PROPERTY("the job hash changes with a computing option or the input, not with a run-only option", job_hash_follows_computing_options_and_input_only),
    PROPERTY("-ab c and -a bc give different job hashes (name and value kept apart)", the_boundary_between_option_name_and_value_counts_in_the_job_hash),
    PROPERTY("an option value with spaces counts in full in the job hash", an_option_value_with_spaces_counts_in_full_in_the_job_hash),
    PROPERTY("negative option values count in the job hash", negative_option_values_count_in_the_job_hash),
    PROPERTY("a checkpoint reads back bit for bit and leaves no .tmp file", a_checkpoint_reads_back_exactly),
    PROPERTY("checkpoint rows read back the same in any pieces (another partition)", rows_read_back_in_any_pieces),
    PROPERTY("another job's checkpoint is refused ('another job'), and opens for its own job", another_jobs_checkpoint_is_refused),
    PROPERTY("a missing checkpoint gives exists = false and opens nothing", a_missing_checkpoint_is_reported_as_absent),
    PROPERTY("a write replaces the previous checkpoint only once complete", a_write_replaces_the_previous_checkpoint_only_when_complete),
    PROPERTY("reading a replicated array with the wrong count is refused", a_wrong_count_of_values_is_refused),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  if (bo_h5_init()) return 1;
  failed = cmocka_run_group_tests(tests, setup, teardown);
  if (PetscFinalize()) return 1;
  return failed;
}
