/* rng.c - Philox streams keyed by (seed, id) (see rng.h). */
#include "boundopt/rng.h"
#include <Random123/philox.h>
#include <math.h>

void bo_rng_init(bo_rng *r, uint64_t seed, uint64_t id, uint32_t purpose)
{
  r->seed = seed; r->id = id; r->purpose = purpose; r->block = 0; r->avail = 0;
}

static void refill(bo_rng *r)
{
  philox4x32_ctr_t c = {{(uint32_t)r->id, (uint32_t)(r->id >> 32), r->purpose, r->block}};
  philox4x32_key_t k = {{(uint32_t)r->seed, (uint32_t)(r->seed >> 32)}};
  philox4x32_ctr_t out = philox4x32(c, k);
  for (int i = 0; i < 4; i++) r->buf[i] = out.v[i];
  r->block++;
  r->avail = 4;
}

uint32_t bo_rng_u32(bo_rng *r)
{
  if (!r->avail) refill(r);
  return r->buf[4 - r->avail--];
}

uint64_t bo_rng_u64(bo_rng *r)
{
  uint64_t hi = bo_rng_u32(r);
  return (hi << 32) | bo_rng_u32(r);
}

double bo_rng_uniform(bo_rng *r) { return (double)(bo_rng_u64(r) >> 11) * 0x1p-53; }

uint64_t bo_rng_below(bo_rng *r, uint64_t n)
{
  /* Rejection from the largest multiple of n: unbiased, and the same draws on every rank. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
  do x = bo_rng_u64(r); while (x >= limit);
  return x % n;
}

double bo_rng_normal(bo_rng *r)
{
  double u = 1.0 - bo_rng_uniform(r), v = bo_rng_uniform(r); /* u in (0, 1] */
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586476925 * v);
}

double bo_rng_gamma(bo_rng *r, double shape)
{
  if (shape < 1.0) { /* Gamma(a) = Gamma(a+1) * U^(1/a) */
    double u = 1.0 - bo_rng_uniform(r);
    return bo_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
  }
  double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x = bo_rng_normal(r), v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = 1.0 - bo_rng_uniform(r);
    if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
  }
}
