/* bench_support.h - what the C benchmarks share: the median of repetitions and the load average
 * printed beside every timing (the machine is shared; a timing without its load is not read). */
#ifndef BOUNDOPT_BENCH_SUPPORT_H
#define BOUNDOPT_BENCH_SUPPORT_H

#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts v). */
__attribute__((unused)) static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The 1-minute load average, -1 if it cannot be read. */
__attribute__((unused)) static double loadavg(void)
{
  double l = -1;
  FILE  *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

#endif
