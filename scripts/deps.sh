#!/usr/bin/env bash
# Installs the Debian packages boundopt needs, only those missing.  As root it runs apt-get;
# as another user it prints the command to run.  --bench: the benchmark peers instead.
set -euo pipefail
runtime=(libopenmpi-dev openmpi-bin petsc-dev libhdf5-openmpi-dev hdf5-tools libscalapack-openmpi-dev
         libopenblas-dev libfftw3-dev librandom123-dev libcmocka-dev libpng-dev zlib1g-dev libyaml-dev pkg-config
         dataset-fashion-mnist slurmctld slurmd slurm-client python3-matplotlib python3-h5py python3-numpy)
bench=(python3-sklearn python3-h5py python3-numpy python3-threadpoolctl python3-faiss
       python3-skimage python3-torch python3-matplotlib)
want=("${runtime[@]}")
[ "${1:-}" = "--bench" ] && want=("${bench[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "boundopt: deps: missing packages ${missing[*]}; expected them installed: sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists; refresh them when the install cannot find a package.
apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/boundopt-apt.log 2>&1 || {
  apt-get update >>/tmp/boundopt-apt.log 2>&1
  apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/boundopt-apt.log 2>&1 || {
    tail -20 /tmp/boundopt-apt.log >&2; echo "boundopt: deps: apt-get failed; expected the packages to install (log /tmp/boundopt-apt.log)" >&2; exit 1; }
}
