/* rng.h - counter-based random streams (Random123 Philox4x32-10).
 *
 * Contract
 *   A stream is named by (seed, id): id is a global row index, a task index, or any other global
 *   name for "whose randomness this is".  Draw j of stream (seed, id) is a pure function of
 *   (seed, id, j), so a result does not depend on which rank draws it, nor on how many ranks there
 *   are.  The state is the struct itself (seed, id, purpose, block, and the unused words of the
 *   current block): a checkpoint saves it whole and resumes exactly.
 *   Streams with different `purpose` tags under the same (seed, id) are independent; later issues
 *   use the tag to keep e.g. initialisation and sampling apart.
 */
#ifndef BOUNDOPT_RNG_H
#define BOUNDOPT_RNG_H
#include <stdint.h>

typedef struct {
  uint64_t seed;     /* Philox key */
  uint64_t id;       /* counter words 0-1 */
  uint32_t purpose;  /* counter word 2 */
  uint32_t block;    /* counter word 3: which block of 4 words comes next */
  uint32_t buf[4];
  int      avail;    /* unused words left in buf */
} bo_rng;

void     bo_rng_init(bo_rng *r, uint64_t seed, uint64_t id, uint32_t purpose);
uint32_t bo_rng_u32(bo_rng *r);
uint64_t bo_rng_u64(bo_rng *r);
double   bo_rng_uniform(bo_rng *r);            /* [0, 1), 53 random bits */
uint64_t bo_rng_below(bo_rng *r, uint64_t n);  /* uniform on [0, n), unbiased; n >= 1 */
double   bo_rng_normal(bo_rng *r);             /* standard normal (Box-Muller, one value per call) */
double   bo_rng_gamma(bo_rng *r, double shape); /* Gamma(shape, 1), shape > 0 (Marsaglia-Tsang) */
#endif
