/* test_memory.c - properties of the memory pre-flight (memory.h): sizes in text, and the verdict. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/error.h"
#include "boundopt/memory.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

#define KiB 1024.0
#define MiB (1024.0 * KiB)
#define GiB (1024.0 * MiB)

/* ---------------------------------------------------------------- fixtures */

static void assert_contains(const char *text, const char *part)
{
  if (!strstr(text, part)) fail_msg("message \"%s\" lacks \"%s\"", text, part);
}

/* Runs the pre-flight with errors returned; msg gets the error text ("" when it passes). */
static PetscErrorCode preflight(const bo_memory_plan *plan, double limit, char *msg, size_t len)
{
  PetscErrorCode ierr;
  char          *specific = NULL;

  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = bo_memory_preflight(PETSC_COMM_SELF, plan, limit);
  PetscPopErrorHandler();
  msg[0] = 0;
  if (ierr) {
    PetscErrorMessage(ierr, NULL, &specific);
    snprintf(msg, len, "%s", specific ? specific : "");
  }
  return ierr;
}

static void assert_parses(const char *text, double bytes)
{
  double got = bo_memory_parse(text);
  if (got != bytes) fail_msg("bo_memory_parse(\"%s\") = %.17g, expected %.17g", text, got, bytes);
}

static void assert_formats(double bytes, const char *text)
{
  char buf[64];
  bo_memory_format(bytes, buf, sizeof buf);
  if (strcmp(buf, text)) fail_msg("bo_memory_format(%.17g) = \"%s\", expected \"%s\"", bytes, buf, text);
}

/* ---------------------------------------------------------------- properties */

static void sizes_with_binary_suffixes_parse_to_bytes(void **state)
{
  (void)state;
  assert_parses("512M", 512 * MiB);
  assert_parses("2G", 2 * GiB);
  assert_parses("1.5GiB", 1.5 * GiB);
  assert_parses("100", 100);
  assert_parses("7KB", 7 * KiB);
  assert_parses("3T", 3 * 1024 * GiB);
  assert_parses("0", 0);
  /* case and a space before the unit do not matter */
  assert_parses("512m", 512 * MiB);
  assert_parses("2 GiB", 2 * GiB);
  assert_parses("64kib", 64 * KiB);
  assert_parses("1000000", 1e6);
  /* a bare byte unit, as bo_memory_format prints small sizes */
  assert_parses("4096B", 4096);
  assert_parses("100 B", 100);
}

static void bad_size_text_is_refused_with_minus_one(void **state)
{
  (void)state;
  const char *bad[] = {"abc", "-1", "5X", "", "G", "5GG", "5 G B", "5GiBs", "-2G", "1.5Q", "M5", "5BB", "B"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    double got = bo_memory_parse(bad[i]);
    if (got != -1) fail_msg("bo_memory_parse(\"%s\") = %g, expected -1 (refused)", bad[i], got);
  }
}

static void sizes_format_with_binary_units(void **state)
{
  (void)state;
  assert_formats(0, "0 B");
  assert_formats(100, "100 B");
  assert_formats(1023, "1023 B");
  assert_formats(1024, "1.0 KiB");
  assert_formats(7 * KiB, "7.0 KiB");
  assert_formats(512 * MiB, "512.0 MiB");
  assert_formats(1.5 * GiB, "1.5 GiB");
  assert_formats(2 * 1024 * GiB, "2.0 TiB");
  assert_formats(3 * 1024 * 1024 * GiB, "3.0 PiB");
}

static void formatted_sizes_parse_back_to_within_the_printed_digit(void **state)
{
  (void)state;
  const double sizes[] = {1, 999, 4096, 123456789, 1.5 * GiB, 3.2e12, 7.7e14}; /* up to TiB: the units parse knows */
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char buf[64];
    bo_memory_format(sizes[i], buf, sizeof buf);
    double back = bo_memory_parse(buf);
    if (!(fabs(back - sizes[i]) <= 0.05 * sizes[i] + 0.5)) fail_msg("%.17g formats as \"%s\", which parses to %.17g", sizes[i], buf, back);
  }
}

static void a_plan_over_the_limit_is_refused_naming_task_and_parts(void **state)
{
  (void)state;
  bo_memory_plan plan = {.task = "cluster"};
  char           msg[2048];
  bo_memory_plan_add(&plan, "shard", 600 * MiB);
  bo_memory_plan_add(&plan, "distances", 700 * MiB);
  PetscErrorCode ierr = preflight(&plan, 1 * GiB, msg, sizeof msg);
  if (ierr != BO_ERR_INPUT) fail_msg("error %d (\"%s\"), expected %d", (int)ierr, msg, (int)BO_ERR_INPUT);
  assert_true(strncmp(msg, "memory: ", 8) == 0);
  assert_contains(msg, "cluster");
  assert_contains(msg, "shard 600.0 MiB");
  assert_contains(msg, "distances 700.0 MiB");
  assert_contains(msg, "1.3 GiB");  /* the total need */
  assert_contains(msg, "1.0 GiB");  /* what is available */
  assert_contains(msg, "-memory_limit");
  assert_contains(msg, "; expected ");
  assert_null(strchr(msg, '\n'));
}

static void a_plan_under_the_limit_is_accepted(void **state)
{
  (void)state;
  bo_memory_plan plan = {.task = "preprocess"};
  char           msg[2048];
  bo_memory_plan_add(&plan, "shard", 300 * MiB);
  bo_memory_plan_add(&plan, "work", 200 * MiB);
  if (preflight(&plan, 1 * GiB, msg, sizeof msg)) fail_msg("refused: %s", msg);
  /* exactly at the limit fits */
  bo_memory_plan_add(&plan, "rest", 524 * MiB);
  if (preflight(&plan, 1 * GiB, msg, sizeof msg)) fail_msg("refused at the limit: %s", msg);
  /* one byte more does not */
  bo_memory_plan_add(&plan, "byte", 1);
  assert_int_equal(preflight(&plan, 1 * GiB, msg, sizeof msg), BO_ERR_INPUT);
}

static void without_a_limit_the_node_memory_decides(void **state)
{
  (void)state;
  bo_memory_plan plan = {.task = "info"}, huge = {.task = "info"};
  char           msg[2048];
  double         avail = 0;
  PetscMPIInt    on_node = 0;
  assert_int_equal(bo_memory_available_per_rank(PETSC_COMM_SELF, &avail, &on_node), 0);
  assert_int_equal(on_node, 1);
  assert_true(avail > 1 * MiB && isfinite(avail));
  bo_memory_plan_add(&plan, "shard", 64 * KiB);
  if (preflight(&plan, 0, msg, sizeof msg)) fail_msg("a 64 KiB plan was refused: %s", msg);
  bo_memory_plan_add(&huge, "shard", 1e18);
  assert_int_equal(preflight(&huge, 0, msg, sizeof msg), BO_ERR_INPUT);
  assert_contains(msg, "available on the node");
  assert_contains(msg, "expected");
}

static void a_plan_keeps_at_most_the_maximum_number_of_parts(void **state)
{
  (void)state;
  bo_memory_plan plan = {.task = "t"};
  for (int i = 0; i < BO_MEMORY_MAX_PARTS + 3; i++) bo_memory_plan_add(&plan, "p", 1);
  assert_int_equal(plan.nparts, BO_MEMORY_MAX_PARTS);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("sizes with K/M/G/T suffixes (B, iB, any case) parse to binary bytes", sizes_with_binary_suffixes_parse_to_bytes),
    PROPERTY("bad size text (abc, -1, 5X, ...) parses to -1", bad_size_text_is_refused_with_minus_one),
    PROPERTY("sizes format with binary units and one decimal", sizes_format_with_binary_units),
    PROPERTY("a formatted size parses back to within its printed digit", formatted_sizes_parse_back_to_within_the_printed_digit),
    PROPERTY("a plan over the limit is refused with the task, the parts, the numbers and 'expected'", a_plan_over_the_limit_is_refused_naming_task_and_parts),
    PROPERTY("a plan under or at the limit is accepted", a_plan_under_the_limit_is_accepted),
    PROPERTY("without -memory_limit the node's available memory decides", without_a_limit_the_node_memory_decides),
    PROPERTY("a plan keeps at most BO_MEMORY_MAX_PARTS parts", a_plan_keeps_at_most_the_maximum_number_of_parts),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
