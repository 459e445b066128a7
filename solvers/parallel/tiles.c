/* tiles.c - the global tile grid (see tiles.h). */
#include "boundopt/tiles.h"

static int64_t tiles_of(int64_t n) { return (n + BO_TILE_ROWS - 1) / BO_TILE_ROWS; }

/* First tile of rank r: floor(r * ntiles / P), computed without overflow for any int64 ntiles. */
static int64_t first_tile(int64_t ntiles, int rank, int nranks)
{
  int64_t q = ntiles / nranks, rem = ntiles % nranks;
  return q * rank + (rem * rank) / nranks;
}

void bo_rows_partition(int64_t n, int rank, int nranks, bo_rows *rows)
{
  rows->n       = n;
  rows->ntiles  = tiles_of(n);
  rows->tile_lo = first_tile(rows->ntiles, rank, nranks);
  rows->tile_hi = first_tile(rows->ntiles, rank + 1, nranks);
  rows->lo      = rows->tile_lo * BO_TILE_ROWS;
  rows->hi      = rows->tile_hi * BO_TILE_ROWS;
  if (rows->lo > n) rows->lo = n;
  if (rows->hi > n) rows->hi = n;
}

void bo_tile_bounds(int64_t n, int64_t t, int64_t *lo, int64_t *hi)
{
  *lo = t * BO_TILE_ROWS;
  *hi = *lo + BO_TILE_ROWS < n ? *lo + BO_TILE_ROWS : n;
}

int bo_rows_owner(int64_t n, int nranks, int64_t i)
{
  int64_t t = i / BO_TILE_ROWS, ntiles = tiles_of(n);
  /* Binary search over ranks: first_tile is monotone in the rank. */
  int lo = 0, hi = nranks - 1;
  while (lo < hi) {
    int mid = lo + (hi - lo + 1) / 2;
    if (first_tile(ntiles, mid, nranks) <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}
