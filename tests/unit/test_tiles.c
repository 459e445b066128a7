/* test_tiles.c - properties of the global tile grid (tiles.h): the partition of rows over ranks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/tiles.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}
#define T BO_TILE_ROWS

/* Row counts around tile edges, and rank counts below, at and above the tile count. */
static const int64_t sizes[] = {0, 1, 2, T - 1, T, T + 1, 2 * T - 1, 2 * T, 2 * T + 1, 3 * T, 1000, 5000, 7 * T + 3, 100000};
static const int     nranks[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 64, 100, 391, 1000};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define NRANKS (sizeof nranks / sizeof nranks[0])

static int64_t ceil_tiles(int64_t n) { return n / T + (n % T != 0); }

/* The partition of n rows over P ranks: contiguous, in order, from 0 to n, in whole tiles, with the
 * tile counts of any two ranks differing by at most one.  Returns nothing; fails the test. */
static void check_partition(int64_t n, int P)
{
  int64_t next = 0, next_tile = 0, ntiles = ceil_tiles(n), fewest = INT64_MAX, most = 0;

  for (int r = 0; r < P; r++) {
    bo_rows rows;
    memset(&rows, 0xA5, sizeof rows);
    bo_rows_partition(n, r, P, &rows);
    if (rows.n != n || rows.ntiles != ntiles)
      fail_msg("n=%lld P=%d rank %d: n=%lld ntiles=%lld, expected %lld and %lld", (long long)n, P, r, (long long)rows.n, (long long)rows.ntiles, (long long)n, (long long)ntiles);
    if (rows.lo != next || rows.tile_lo != next_tile)
      fail_msg("n=%lld P=%d rank %d starts at row %lld tile %lld; expected row %lld tile %lld (gap or overlap)", (long long)n, P, r, (long long)rows.lo, (long long)rows.tile_lo, (long long)next, (long long)next_tile);
    if (rows.hi < rows.lo || rows.tile_hi < rows.tile_lo)
      fail_msg("n=%lld P=%d rank %d: rows [%lld, %lld) tiles [%lld, %lld) run backwards", (long long)n, P, r, (long long)rows.lo, (long long)rows.hi, (long long)rows.tile_lo, (long long)rows.tile_hi);
    /* whole tiles: the row range is exactly the rows of the tile range */
    int64_t tlo, thi;
    if (rows.tile_hi > rows.tile_lo) {
      bo_tile_bounds(n, rows.tile_lo, &tlo, &thi);
      if (tlo != rows.lo) fail_msg("n=%lld P=%d rank %d: first tile starts at %lld, rows at %lld", (long long)n, P, r, (long long)tlo, (long long)rows.lo);
      bo_tile_bounds(n, rows.tile_hi - 1, &tlo, &thi);
      if (thi != rows.hi) fail_msg("n=%lld P=%d rank %d: last tile ends at %lld, rows at %lld", (long long)n, P, r, (long long)thi, (long long)rows.hi);
    } else if (rows.lo != rows.hi) {
      fail_msg("n=%lld P=%d rank %d: no tiles but rows [%lld, %lld)", (long long)n, P, r, (long long)rows.lo, (long long)rows.hi);
    }
    if (rows.lo % T != 0 && rows.lo != n) fail_msg("n=%lld P=%d rank %d: starts mid-tile at row %lld", (long long)n, P, r, (long long)rows.lo);
    if (rows.hi % T != 0 && rows.hi != n) fail_msg("n=%lld P=%d rank %d: ends mid-tile at row %lld", (long long)n, P, r, (long long)rows.hi);
    assert_int_equal(bo_rows_local(&rows), rows.hi - rows.lo);
    fewest = rows.tile_hi - rows.tile_lo < fewest ? rows.tile_hi - rows.tile_lo : fewest;
    most   = rows.tile_hi - rows.tile_lo > most ? rows.tile_hi - rows.tile_lo : most;
    next      = rows.hi;
    next_tile = rows.tile_hi;
  }
  if (next != n || next_tile != ntiles) fail_msg("n=%lld P=%d: the ranks cover rows up to %lld and tiles up to %lld; expected %lld and %lld", (long long)n, P, (long long)next, (long long)next_tile, (long long)n, (long long)ntiles);
  if (most - fewest > 1) fail_msg("n=%lld P=%d: unbalanced, %lld to %lld tiles per rank", (long long)n, P, (long long)fewest, (long long)most);
}

static void every_row_is_covered_once_in_whole_tiles(void **state)
{
  (void)state;
  for (size_t i = 0; i < NSIZES; i++)
    for (size_t p = 0; p < NRANKS; p++) check_partition(sizes[i], nranks[p]);
}

static void each_row_is_counted_exactly_once(void **state)
{
  (void)state;
  /* An independent count: mark every row each rank claims, then every row must be marked once. */
  for (size_t i = 0; i < NSIZES; i++) {
    int64_t        n    = sizes[i];
    unsigned char *seen = calloc((size_t)(n > 0 ? n : 1), 1);
    for (size_t p = 0; p < NRANKS; p++) {
      int P = nranks[p];
      memset(seen, 0, (size_t)(n > 0 ? n : 1));
      for (int r = 0; r < P; r++) {
        bo_rows rows;
        bo_rows_partition(n, r, P, &rows);
        if (rows.lo < 0 || rows.hi > n) fail_msg("n=%lld P=%d rank %d: rows [%lld, %lld) outside 0..n", (long long)n, P, r, (long long)rows.lo, (long long)rows.hi);
        for (int64_t row = rows.lo; row < rows.hi; row++) seen[row]++;
      }
      for (int64_t row = 0; row < n; row++)
        if (seen[row] != 1) fail_msg("n=%lld P=%d: row %lld claimed %d times", (long long)n, P, (long long)row, seen[row]);
    }
    free(seen);
  }
}

static void more_ranks_than_tiles_leave_the_extra_ranks_empty(void **state)
{
  (void)state;
  const int64_t n = 3 * T + 5; /* 4 tiles */
  const int     P = 10;
  int           nonempty = 0;
  for (int r = 0; r < P; r++) {
    bo_rows rows;
    bo_rows_partition(n, r, P, &rows);
    int64_t tiles = rows.tile_hi - rows.tile_lo;
    assert_true(tiles == 0 || tiles == 1);
    if (tiles) nonempty++;
    else assert_int_equal(rows.lo, rows.hi);
  }
  assert_int_equal(nonempty, 4);
}

static void zero_rows_give_every_rank_an_empty_range(void **state)
{
  (void)state;
  for (size_t p = 0; p < NRANKS; p++)
    for (int r = 0; r < nranks[p]; r++) {
      bo_rows rows;
      bo_rows_partition(0, r, nranks[p], &rows);
      assert_int_equal(rows.ntiles, 0);
      assert_int_equal(rows.lo, 0);
      assert_int_equal(rows.hi, 0);
      assert_int_equal(rows.tile_lo, 0);
      assert_int_equal(rows.tile_hi, 0);
    }
}

static void owner_of_every_row_is_the_rank_whose_range_holds_it(void **state)
{
  (void)state;
  for (size_t i = 0; i < NSIZES; i++)
    for (size_t p = 0; p < NRANKS; p++) {
      int64_t n = sizes[i];
      int     P = nranks[p];
      for (int r = 0; r < P; r++) {
        bo_rows rows;
        bo_rows_partition(n, r, P, &rows);
        for (int64_t row = rows.lo; row < rows.hi; row++) {
          int owner = bo_rows_owner(n, P, row);
          if (owner != r) fail_msg("n=%lld P=%d: bo_rows_owner(row %lld) = %d, but rank %d holds [%lld, %lld)", (long long)n, P, (long long)row, owner, r, (long long)rows.lo, (long long)rows.hi);
        }
      }
    }
}

static void tiles_are_the_same_rows_whatever_the_rank_count(void **state)
{
  (void)state;
  for (size_t i = 0; i < NSIZES; i++) {
    int64_t n = sizes[i];
    for (int64_t t = 0; t < ceil_tiles(n); t++) {
      int64_t lo, hi;
      bo_tile_bounds(n, t, &lo, &hi);
      assert_int_equal(lo, t * T);
      assert_int_equal(hi, (t + 1) * T < n ? (t + 1) * T : n);
      assert_true(hi > lo);
    }
    /* with P ranks, each rank's tile range maps onto exactly those rows */
    for (size_t p = 0; p < NRANKS; p++)
      for (int r = 0; r < nranks[p]; r++) {
        bo_rows rows;
        bo_rows_partition(n, r, nranks[p], &rows);
        for (int64_t t = rows.tile_lo; t < rows.tile_hi; t++) {
          int64_t lo, hi;
          bo_tile_bounds(n, t, &lo, &hi);
          assert_true(lo >= rows.lo && hi <= rows.hi);
        }
      }
  }
}

static void huge_row_counts_partition_without_overflow(void **state)
{
  (void)state;
  /* Rows near the int64 limit: the partition must not overflow (only boundary rows are checked). */
  const int64_t big[]   = {(int64_t)1 << 40, ((int64_t)1 << 62) + 12345, INT64_MAX - 2 * T};
  const int     ranks[] = {1, 3, 1000, 65536, 1000003};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
    for (size_t p = 0; p < sizeof ranks / sizeof ranks[0]; p++) {
      int64_t n = big[i], next = 0;
      int     P = ranks[p];
      for (int r = 0; r < P; r++) {
        bo_rows rows;
        bo_rows_partition(n, r, P, &rows);
        if (rows.lo != next || rows.hi < rows.lo || rows.lo % T) fail_msg("n=%lld P=%d rank %d: rows [%lld, %lld) after %lld", (long long)n, P, r, (long long)rows.lo, (long long)rows.hi, (long long)next);
        if (rows.hi > rows.lo) {
          if (bo_rows_owner(n, P, rows.lo) != r || bo_rows_owner(n, P, rows.hi - 1) != r) fail_msg("n=%lld P=%d: owner of the edge rows of rank %d is wrong", (long long)n, P, r);
        }
        next = rows.hi;
      }
      if (next != n) fail_msg("n=%lld P=%d: covered up to %lld", (long long)n, P, (long long)next);
    }
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("the ranks' row ranges cover 0..n in order, in whole tiles, balanced to one tile, for many (n, P)", every_row_is_covered_once_in_whole_tiles),
    PROPERTY("every row is claimed by exactly one rank, for many (n, P) including n = 0 and P > tiles", each_row_is_counted_exactly_once),
    PROPERTY("more ranks than tiles: each tile goes to one rank and the extra ranks own no rows", more_ranks_than_tiles_leave_the_extra_ranks_empty),
    PROPERTY("n = 0 gives every rank the empty range and no tiles", zero_rows_give_every_rank_an_empty_range),
    PROPERTY("bo_rows_owner names the rank whose range holds the row, for every row", owner_of_every_row_is_the_rank_whose_range_holds_it),
    PROPERTY("tile t is rows [256 t, min(256 (t+1), n)) whatever the rank count", tiles_are_the_same_rows_whatever_the_rank_count),
    PROPERTY("row counts near the int64 limit partition without overflow", huge_row_counts_partition_without_overflow),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
