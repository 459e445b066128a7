/* reduce.c - exact fixed-point sums in a user MPI_Op (see reduce.h).
 *
 * Why not a library: ReproBLAS-style binned sums are not packaged for Debian; a 128-bit
 * fixed-point accumulator with a caller-given bound is a few lines and exact.
 */
#include "boundopt/reduce.h"
#include "boundopt/error.h"
#include <math.h>

typedef __int128 acc_t;

struct bo_exactsum_s {
  int64_t len;
  int     scale_exp; /* addend v is stored as v * 2^scale_exp, truncated toward zero */
  double  to_hi[2];  /* 2^(scale_exp - 63) as two factors: one alone overflows for tiny bounds */
  acc_t  *acc;
};

/* v * 2^k as a 128-bit integer, from t = v * 2^(k-63) with |t| < 2^61: the integer part and
 * 63 bits of the fraction, each truncated toward zero.  Truncation is as deterministic as
 * rounding and needs only two multiplies and two conversions (this loop runs once per element
 * of every tile partial, so it is hot). */
static inline acc_t to_fixed(double t)
{
  int64_t hi = (int64_t)t;
  int64_t lo = (int64_t)((t - (double)hi) * 0x1p63); /* t - hi is exact, in (-1, 1) */
  return (acc_t)hi * ((acc_t)1 << 63) + lo;
}

static void sum_op(void *in, void *inout, int *len, MPI_Datatype *type)
{
  const acc_t *a = (const acc_t *)in;
  acc_t       *b = (acc_t *)inout;
  for (int i = 0; i < *len; i++) b[i] += a[i];
}

PetscErrorCode bo_exactsum_create(int64_t len, double bound, bo_exactsum *sum)
{
  bo_exactsum s;
  int         e = 0;

  PetscFunctionBeginUser;
  PetscCheck(bound >= 0 && isfinite(bound), PETSC_COMM_SELF, BO_ERR_RUNTIME, "exact sum: bound %g; expected a finite non-negative bound", bound);
  PetscCall(PetscNew(&s));
  PetscCall(PetscCalloc1(len > 0 ? len : 1, &s->acc));
  s->len = len;
  if (bound > 0) frexp(bound, &e); /* bound < 2^e */
  s->scale_exp = 124 - e;          /* every addend and the total stay below 2^124 in magnitude */
  s->to_hi[0]  = ldexp(1.0, (s->scale_exp - 63) / 2);
  s->to_hi[1]  = ldexp(1.0, (s->scale_exp - 63) - (s->scale_exp - 63) / 2);
  *sum = s;
  PetscFunctionReturn(0);
}

static int64_t add_doubles(bo_exactsum s, int64_t offset, int64_t count, const double *v)
{
  const double f0 = s->to_hi[0], f1 = s->to_hi[1];
  acc_t       *acc = s->acc + offset;
  for (int64_t i = 0; i < count; i++) {
    double t = v[i] * f0 * f1; /* exact: powers of two */
    if (!(fabs(t) < 0x1p61)) return i; /* also catches NaN */
    acc[i] += to_fixed(t);
  }
  return -1;
}

static int64_t add_floats(bo_exactsum s, int64_t offset, int64_t count, const float *v)
{
  const double f0 = s->to_hi[0], f1 = s->to_hi[1];
  acc_t       *acc = s->acc + offset;
  for (int64_t i = 0; i < count; i++) {
    double t = (double)v[i] * f0 * f1;
    if (!(fabs(t) < 0x1p61)) return i;
    acc[i] += to_fixed(t);
  }
  return -1;
}

PetscErrorCode bo_exactsum_add(bo_exactsum s, const double *v)
{
  PetscFunctionBeginUser;
  PetscCall(bo_exactsum_add_at(s, 0, s->len, v));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_exactsum_add_at(bo_exactsum s, int64_t offset, int64_t count, const double *v)
{
  int64_t bad = add_doubles(s, offset, count, v);

  PetscFunctionBeginUser;
  PetscCheck(bad < 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "exact sum: addend %g at %lld exceeds the declared bound; expected |addends| within the bound (internal error)", v[bad], (long long)(offset + bad));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_exactsum_add_float_at(bo_exactsum s, int64_t offset, int64_t count, const float *v)
{
  int64_t bad = add_floats(s, offset, count, v);

  PetscFunctionBeginUser;
  PetscCheck(bad < 0, PETSC_COMM_SELF, BO_ERR_RUNTIME, "exact sum: addend %g at %lld exceeds the declared bound; expected |addends| within the bound (internal error)", (double)v[bad], (long long)(offset + bad));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_exactsum_replace_at(bo_exactsum s, int64_t offset, int64_t count, const double *v, bo_exactsum held, int64_t held_offset)
{
  const double f0 = s->to_hi[0], f1 = s->to_hi[1];

  PetscFunctionBeginUser;
  PetscCheck(held->scale_exp == s->scale_exp, PETSC_COMM_SELF, BO_ERR_RUNTIME, "exact sum: replacing on grid 2^-%d with addends held on 2^-%d; expected the same bound (internal error)", s->scale_exp, held->scale_exp);
  PetscCheck(offset >= 0 && offset + count <= s->len && held_offset >= 0 && held_offset + count <= held->len, PETSC_COMM_SELF, BO_ERR_RUNTIME,
             "exact sum: elements [%lld, +%lld) of %lld, held [%lld, +%lld) of %lld; expected ranges inside both (internal error)", (long long)offset, (long long)count, (long long)s->len, (long long)held_offset, (long long)count, (long long)held->len);
  for (int64_t i = 0; i < count; i++) {
    double t = v[i] * f0 * f1;
    PetscCheck(fabs(t) < 0x1p61, PETSC_COMM_SELF, BO_ERR_RUNTIME, "exact sum: addend %g at %lld exceeds the declared bound; expected |addends| within the bound (internal error)", v[i], (long long)(offset + i));
    acc_t f = to_fixed(t);
    s->acc[offset + i] += f - held->acc[held_offset + i];
    held->acc[held_offset + i] = f;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode bo_exactsum_allreduce(MPI_Comm comm, bo_exactsum s, double *out)
{
  MPI_Datatype type;
  MPI_Op       op;
  acc_t       *total;
  int64_t      done = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(s->len > 0 ? s->len : 1, &total));
  PetscCallMPI(MPI_Type_contiguous((int)sizeof(acc_t), MPI_BYTE, &type));
  PetscCallMPI(MPI_Type_commit(&type));
  PetscCallMPI(MPI_Op_create(sum_op, 1, &op));
  while (done < s->len) { /* MPI counts are int: reduce in slices */
    int count = (int)PetscMin(s->len - done, (int64_t)1 << 26);
    PetscCallMPI(MPI_Allreduce(s->acc + done, total + done, count, type, op, comm));
    done += count;
  }
  PetscCallMPI(MPI_Op_free(&op));
  PetscCallMPI(MPI_Type_free(&type));
  for (int64_t i = 0; i < s->len; i++) out[i] = ldexp((double)total[i], -s->scale_exp);
  PetscCall(PetscFree(total));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_exactsum_destroy(bo_exactsum *s)
{
  PetscFunctionBeginUser;
  if (!*s) PetscFunctionReturn(0);
  PetscCall(PetscFree((*s)->acc));
  PetscCall(PetscFree(*s));
  PetscFunctionReturn(0);
}

PetscErrorCode bo_reduce_max_abs(MPI_Comm comm, int64_t len, const double *v, double *maxabs)
{
  double m = 0;

  PetscFunctionBeginUser;
  for (int64_t i = 0; i < len; i++) m = PetscMax(m, fabs(v[i]));
  PetscCallMPI(MPI_Allreduce(&m, maxabs, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscFunctionReturn(0);
}
