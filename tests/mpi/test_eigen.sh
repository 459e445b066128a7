#!/usr/bin/env bash
# The ScaLAPACK eigensolver on forced grids agrees with LAPACK to 1e-10 (eigen_mpi_check).
source "$(dirname "$0")/../lib.sh"
for p in 2 3; do
  if timeout 300 mpirun -q -n "$p" "$TOOLS/eigen_mpi_check" >"$SCRATCH/eig.txt" 2>&1 && grep -q ' 0 failed' "$SCRATCH/eig.txt"; then
    pass "ScaLAPACK pdsyevd matches LAPACK dsyevd to 1e-10 on every grid of $p ranks ($(tail -1 "$SCRATCH/eig.txt"))"
  else fail "ScaLAPACK against LAPACK at $p ranks" "$(tail -5 "$SCRATCH/eig.txt" | tr '\n' ' ')"; fi
done
