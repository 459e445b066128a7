/* memory.c - per-rank memory pre-flight (see memory.h). */
#include "boundopt/memory.h"
#include "boundopt/error.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void bo_memory_plan_add(bo_memory_plan *plan, const char *name, double bytes)
{
  if (plan->nparts >= BO_MEMORY_MAX_PARTS) return;
  plan->part_name[plan->nparts]  = name;
  plan->part_bytes[plan->nparts] = bytes;
  plan->nparts++;
}

void bo_memory_format(double bytes, char *buf, size_t len)
{
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int         u      = 0;
  while (bytes >= 1024 && u < 5) { bytes /= 1024; u++; }
  snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

double bo_memory_parse(const char *text)
{
  char  *end;
  double v = strtod(text, &end);
  if (end == text || !(v >= 0) || isinf(v)) return -1;
  while (isspace((unsigned char)*end)) end++;
  double scale = 1;
  switch (toupper((unsigned char)*end)) {
  case 'K': scale = 1024.0; break;
  case 'M': scale = 1024.0 * 1024; break;
  case 'G': scale = 1024.0 * 1024 * 1024; break;
  case 'T': scale = 1024.0 * 1024 * 1024 * 1024; break;
  case 0:   return v;
  case 'B': return end[1] ? -1 : v; /* "4096B", and "100 B" as bo_memory_format prints it */
  default:  return -1;
  }
  end++;
  if (!*end || !strcasecmp(end, "B") || !strcasecmp(end, "iB")) return v * scale;
  return -1;
}

/* MemAvailable from /proc/meminfo, in bytes (0 if unknown). */
static double node_mem_available(void)
{
  FILE  *f = fopen("/proc/meminfo", "r");
  char   line[256];
  double kb = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
  fclose(f);
  return kb * 1024;
}

/* cgroup v2 (memory.max) or v1 limit, 0 if none. */
static double cgroup_limit(void)
{
  const char *paths[] = {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
  for (int i = 0; i < 2; i++) {
    FILE  *f = fopen(paths[i], "r");
    double v = 0;
    if (!f) continue;
    if (fscanf(f, "%lf", &v) != 1) v = 0;
    fclose(f);
    if (v > 0 && v < 1e18) return v;
  }
  return 0;
}

PetscErrorCode bo_memory_available_per_rank(MPI_Comm comm, double *bytes, PetscMPIInt *ranks_on_node)
{
  MPI_Comm node;
  double   avail = 0;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  PetscCallMPI(MPI_Comm_size(node, ranks_on_node));
  avail = node_mem_available();
  double limit = cgroup_limit();
  if (limit > 0 && limit < avail) avail = limit;
  /* Ranks of one node read /proc at slightly different times: agree on the smallest value. */
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &avail, 1, MPI_DOUBLE, MPI_MIN, node));
  PetscCallMPI(MPI_Comm_free(&node));
  *bytes = avail / *ranks_on_node;
  PetscFunctionReturn(0);
}

PetscErrorCode bo_memory_preflight(MPI_Comm comm, const bo_memory_plan *plan, double limit)
{
  double      need = 0, worst[2], mine[2], avail;
  PetscMPIInt ranks_on_node = 1;
  char        details[512] = "", a[32], b[32], source[160];

  PetscFunctionBeginUser;
  for (int i = 0; i < plan->nparts; i++) need += plan->part_bytes[i];
  if (limit > 0) {
    avail = limit;
    bo_memory_format(limit, a, sizeof a);
    snprintf(source, sizeof source, "-memory_limit %s", a);
  } else {
    PetscCall(bo_memory_available_per_rank(comm, &avail, &ranks_on_node));
    bo_memory_format(avail * ranks_on_node, a, sizeof a);
    snprintf(source, sizeof source, "%s available on the node / %d ranks", a, ranks_on_node);
  }
  /* The verdict must be the same on every rank: reduce need - avail and the need itself. */
  mine[0] = need - avail;
  mine[1] = need;
  PetscCallMPI(MPI_Allreduce(mine, worst, 2, MPI_DOUBLE, MPI_MAX, comm));
  if (worst[0] <= 0) PetscFunctionReturn(0);
  for (int i = 0; i < plan->nparts; i++) {
    char part[96];
    bo_memory_format(plan->part_bytes[i], a, sizeof a);
    snprintf(part, sizeof part, "%s%s %s", i ? ", " : "", plan->part_name[i], a);
    strncat(details, part, sizeof details - strlen(details) - 1);
  }
  bo_memory_format(worst[1], a, sizeof a);
  bo_memory_format(worst[1] - worst[0], b, sizeof b);
  SETERRQ(comm, BO_ERR_INPUT, "memory: %s needs %s per rank (%s), %s available per rank (%s); expected a job that fits: more ranks or nodes, or a smaller input", plan->task, a, details, b, source);
}
