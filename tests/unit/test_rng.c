/* test_rng.c - properties of the counter-based random streams (rng.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <petscsys.h>

#include "boundopt/rng.h"

#define PROPERTY(name, fn) {name, fn, NULL, NULL, NULL}

enum { NDRAWS = 100000, NSEQ = 64 };

/* ---------------------------------------------------------------- fixtures */

static void draw_u32(uint64_t seed, uint64_t id, uint32_t purpose, uint32_t *out, int n)
{
  bo_rng r;
  bo_rng_init(&r, seed, id, purpose);
  for (int i = 0; i < n; i++) out[i] = bo_rng_u32(&r);
}

/* Number of positions at which two sequences agree: independent streams agree about n / 2^32. */
static int agreements(const uint32_t *a, const uint32_t *b, int n)
{
  int same = 0;
  for (int i = 0; i < n; i++) same += a[i] == b[i];
  return same;
}

/* |mean - mu| within z standard errors, with sigma the known standard deviation. */
static void assert_mean_near(double sum, int n, double mu, double sigma, const char *what)
{
  double mean = sum / n, tol = 5.0 * sigma / sqrt((double)n);
  if (fabs(mean - mu) > tol) fail_msg("%s: mean %.6f, expected %.6f +- %.6f", what, mean, mu, tol);
}

/* ---------------------------------------------------------------- properties */

static void same_seed_id_and_purpose_give_the_same_sequence(void **state)
{
  (void)state;
  uint32_t a[NSEQ], b[NSEQ];
  draw_u32(12345, 987654321012ULL, 7, a, NSEQ);
  draw_u32(12345, 987654321012ULL, 7, b, NSEQ);
  assert_memory_equal(a, b, sizeof a);
  /* and every derived draw is a function of the same stream */
  bo_rng r1, r2;
  bo_rng_init(&r1, 1, 2, 3);
  bo_rng_init(&r2, 1, 2, 3);
  for (int i = 0; i < 1000; i++) {
    double x = bo_rng_normal(&r1), y = bo_rng_normal(&r2);
    assert_memory_equal(&x, &y, sizeof x);
    double g1 = bo_rng_gamma(&r1, 0.7), g2 = bo_rng_gamma(&r2, 0.7);
    assert_memory_equal(&g1, &g2, sizeof g1);
    assert_int_equal(bo_rng_below(&r1, 1000003), bo_rng_below(&r2, 1000003));
  }
}

static void streams_are_philox4x32_10_on_the_documented_counter_and_key(void **state)
{
  (void)state;
  /* Random123's known answers (kat_vectors): counter = (id low, id high, purpose, block),
   * key = (seed low, seed high).  Pins the stream layout, so results stay reproducible. */
  const struct { uint64_t seed, id; uint32_t purpose, block, want[4]; } kat[] = {
    {0, 0, 0, 0, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {UINT64_MAX, UINT64_MAX, 0xffffffff, 0xffffffff, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {0x299f31d0a4093822ULL, 0x85a308d3243f6a88ULL, 0x13198a2e, 0x03707344, {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
    bo_rng r;
    bo_rng_init(&r, kat[k].seed, kat[k].id, kat[k].purpose);
    r.block = kat[k].block;
    for (int i = 0; i < 4; i++) {
      uint32_t got = bo_rng_u32(&r);
      if (got != kat[k].want[i]) fail_msg("known answer %zu word %d: %08x, expected %08x", k, i, got, kat[k].want[i]);
    }
  }
}

static void different_ids_purposes_or_seeds_give_different_sequences(void **state)
{
  (void)state;
  uint32_t base[NSEQ], other[NSEQ];
  draw_u32(42, 5, 0, base, NSEQ);
  /* neighbouring ids, ids differing only in the high word, other purposes, other seeds (both words) */
  const struct { uint64_t seed, id; uint32_t purpose; } variants[] = {
    {42, 4, 0}, {42, 6, 0}, {42, 5 + (1ULL << 32), 0}, {42, 5, 1}, {42, 5, 0x80000000u},
    {43, 5, 0}, {42 + (1ULL << 32), 5, 0}, {0, 5, 0}, {42, 0, 0},
  };
  for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
    draw_u32(variants[v].seed, variants[v].id, variants[v].purpose, other, NSEQ);
    int same = agreements(base, other, NSEQ);
    if (same > 2) fail_msg("(seed %llu, id %llu, purpose %u) agrees with (42, 5, 0) in %d of %d draws", (unsigned long long)variants[v].seed, (unsigned long long)variants[v].id, variants[v].purpose, same, NSEQ);
  }
  /* a stream does not repeat its first block further on (the block counter advances) */
  uint32_t longer[4 * NSEQ];
  draw_u32(42, 5, 0, longer, 4 * NSEQ);
  for (int k = 1; k < 4; k++) assert_true(agreements(longer, longer + k * NSEQ, NSEQ) <= 2);
}

static void u64_is_two_consecutive_u32_draws(void **state)
{
  (void)state;
  bo_rng a, b;
  bo_rng_init(&a, 9, 9, 9);
  bo_rng_init(&b, 9, 9, 9);
  for (int i = 0; i < 100; i++) {
    uint64_t hi = bo_rng_u32(&a), lo = bo_rng_u32(&a);
    assert_true(bo_rng_u64(&b) == (hi << 32 | lo));
  }
}

static void uniform_is_in_0_1_with_mean_one_half(void **state)
{
  (void)state;
  bo_rng r;
  double sum = 0, sumsq = 0, lo = 1, hi = 0;
  int    bins[10] = {0};
  bo_rng_init(&r, 2024, 17, 0);
  for (int i = 0; i < NDRAWS; i++) {
    double u = bo_rng_uniform(&r);
    if (!(u >= 0.0 && u < 1.0)) fail_msg("draw %d: %a outside [0, 1)", i, u);
    /* 53 random bits: a multiple of 2^-53 */
    assert_true(ldexp(u, 53) == floor(ldexp(u, 53)));
    sum += u;
    sumsq += u * u;
    lo = fmin(lo, u);
    hi = fmax(hi, u);
    bins[(int)(u * 10)]++;
  }
  assert_mean_near(sum, NDRAWS, 0.5, sqrt(1.0 / 12), "uniform");
  assert_true(fabs(sumsq / NDRAWS - 1.0 / 3) < 0.01);
  assert_true(lo < 1e-3 && hi > 1 - 1e-3);
  /* chi-square over 10 bins, 9 degrees of freedom: 40 is far in the tail (p ~ 1e-5) */
  double chi2 = 0;
  for (int b = 0; b < 10; b++) chi2 += (bins[b] - NDRAWS / 10.0) * (bins[b] - NDRAWS / 10.0) / (NDRAWS / 10.0);
  if (chi2 > 40) fail_msg("uniform: chi-square %.1f over 10 bins", chi2);
}

static void below_n_is_never_n_or_more_and_is_uniform(void **state)
{
  (void)state;
  bo_rng         r;
  const uint64_t ns[] = {1, 2, 3, 7, 10, 1000, (1ULL << 32) + 1, (1ULL << 63) + 12345, UINT64_MAX};
  bo_rng_init(&r, 5, 6, 7);
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
    uint64_t n = ns[k], top = 0;
    for (int i = 0; i < 20000; i++) {
      uint64_t x = bo_rng_below(&r, n);
      if (x >= n) fail_msg("bo_rng_below(%llu) gave %llu", (unsigned long long)n, (unsigned long long)x);
      top = x > top ? x : top;
    }
    if (n > 1 && n <= 1000) assert_int_equal(top, n - 1); /* every value is reached */
    if (n > 1000) assert_true(top > n / 2);
  }
  /* n = 7: counts of each value, chi-square with 6 degrees of freedom (30: p ~ 4e-5) */
  int counts[7] = {0};
  for (int i = 0; i < 70000; i++) counts[bo_rng_below(&r, 7)]++;
  double chi2 = 0;
  for (int v = 0; v < 7; v++) chi2 += (counts[v] - 10000.0) * (counts[v] - 10000.0) / 10000.0;
  if (chi2 > 30) fail_msg("bo_rng_below(7): chi-square %.1f", chi2);
  /* n = 3 * 2^62: a plain modulo would give the low third twice the weight of the others */
  uint64_t n = 3ULL << 62, third = 1ULL << 62;
  int      low = 0;
  for (int i = 0; i < 30000; i++) low += bo_rng_below(&r, n) < third;
  assert_true(fabs(low / 30000.0 - 1.0 / 3) < 0.02);
}

static void normal_has_mean_zero_and_variance_one(void **state)
{
  (void)state;
  bo_rng r;
  double sum = 0, sumsq = 0, sum4 = 0;
  int    beyond2 = 0;
  bo_rng_init(&r, 77, 1, 2);
  for (int i = 0; i < NDRAWS; i++) {
    double z = bo_rng_normal(&r);
    assert_true(isfinite(z));
    sum += z;
    sumsq += z * z;
    sum4 += z * z * z * z;
    beyond2 += fabs(z) > 2;
  }
  assert_mean_near(sum, NDRAWS, 0.0, 1.0, "normal");
  assert_mean_near(sumsq, NDRAWS, 1.0, sqrt(2.0), "normal variance");
  assert_true(fabs(sum4 / NDRAWS - 3.0) < 0.15); /* kurtosis of a normal */
  assert_true(fabs(beyond2 / (double)NDRAWS - 0.0455) < 0.004);
}

static void gamma_has_mean_and_variance_shape(void **state)
{
  (void)state;
  const double shapes[] = {0.5, 1.0, 3.0, 0.1, 20.0};
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    bo_rng r;
    double a = shapes[k], sum = 0, sumsq = 0;
    bo_rng_init(&r, 3, (uint64_t)k, 11);
    for (int i = 0; i < NDRAWS; i++) {
      double g = bo_rng_gamma(&r, a);
      if (!(g >= 0) || !isfinite(g)) fail_msg("gamma(%g) gave %g", a, g);
      sum += g;
      sumsq += g * g;
    }
    char what[64];
    snprintf(what, sizeof what, "gamma(%g)", a);
    assert_mean_near(sum, NDRAWS, a, sqrt(a), what); /* Gamma(a, 1): mean a, variance a */
    double mean = sum / NDRAWS, var = sumsq / NDRAWS - mean * mean;
    if (fabs(var - a) > 0.05 * a + 0.01) fail_msg("gamma(%g): variance %.4f, expected %g", a, var, a);
  }
}

static void a_copied_state_continues_identically(void **state)
{
  (void)state;
  /* After k draws (k not a multiple of the 4-word block), a copy of the struct continues exactly
   * as the original; so does a stream rebuilt from the saved integers at a block edge. */
  for (int k = 0; k < 11; k++) {
    bo_rng r, copy;
    bo_rng_init(&r, 31337, 99, 4);
    for (int i = 0; i < k; i++) (void)bo_rng_u32(&r);
    (void)bo_rng_uniform(&r);
    memcpy(&copy, &r, sizeof r);
    for (int i = 0; i < 50; i++) {
      double x = bo_rng_normal(&r), y = bo_rng_normal(&copy);
      assert_memory_equal(&x, &y, sizeof x);
      assert_true(bo_rng_u64(&r) == bo_rng_u64(&copy));
    }
  }
  /* at a block edge the state is (seed, id, purpose, block): a stream rebuilt from those resumes */
  bo_rng r, resumed;
  bo_rng_init(&r, 8, 9, 10);
  for (int i = 0; i < 12; i++) (void)bo_rng_u32(&r);
  assert_int_equal(r.avail, 0);
  bo_rng_init(&resumed, r.seed, r.id, r.purpose);
  resumed.block = r.block;
  for (int i = 0; i < 20; i++) assert_int_equal(bo_rng_u32(&r), bo_rng_u32(&resumed));
}

static void draw_j_does_not_depend_on_earlier_draws_of_other_streams(void **state)
{
  (void)state;
  /* The rank that draws a row's randomness, and what it drew before, must not matter. */
  uint32_t alone[16], interleaved[16];
  draw_u32(1, 500, 0, alone, 16);
  bo_rng a, b;
  bo_rng_init(&a, 1, 499, 0);
  bo_rng_init(&b, 1, 500, 0);
  for (int i = 0; i < 16; i++) {
    (void)bo_rng_u32(&a);
    interleaved[i] = bo_rng_u32(&b);
  }
  assert_memory_equal(alone, interleaved, sizeof alone);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    PROPERTY("the same (seed, id, purpose) gives the same sequence of every draw kind", same_seed_id_and_purpose_give_the_same_sequence),
    PROPERTY("draws are Philox4x32-10 of (id, purpose, block) under key seed (Random123 known answers)", streams_are_philox4x32_10_on_the_documented_counter_and_key),
    PROPERTY("a different id, purpose or seed (either word) gives an unrelated sequence", different_ids_purposes_or_seeds_give_different_sequences),
    PROPERTY("a 64-bit draw is two consecutive 32-bit draws, high word first", u64_is_two_consecutive_u32_draws),
    PROPERTY("uniform draws lie in [0, 1) on the 2^-53 grid, mean 1/2, flat over 10 bins", uniform_is_in_0_1_with_mean_one_half),
    PROPERTY("bo_rng_below(n) is never >= n and is uniform (also for n near 2^64)", below_n_is_never_n_or_more_and_is_uniform),
    PROPERTY("normal draws have mean 0, variance 1 and normal tails", normal_has_mean_zero_and_variance_one),
    PROPERTY("gamma(shape) draws have mean and variance shape, for shapes 0.1 to 20", gamma_has_mean_and_variance_shape),
    PROPERTY("a copy of the state after k draws continues identically (checkpointable)", a_copied_state_continues_identically),
    PROPERTY("a stream's draws do not depend on other streams drawn in between", draw_j_does_not_depend_on_earlier_draws_of_other_streams),
  };
  int failed;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return failed;
}
