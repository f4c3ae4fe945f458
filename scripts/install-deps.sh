#!/usr/bin/env bash
# Installs everything chanpool needs to build, test and benchmark on Debian 12.
# Idempotent: skips apt entirely when every package is already present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git python3
  libfabric-dev libfabric-bin
  libhwloc-dev
  libboost-dev
  libopenmpi-dev openmpi-bin
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libcereal-dev
  clang-14 libclang-rt-14-dev libfuzzer-14-dev
  iproute2 util-linux procps   # tests/cluster: ip netns, unshare and nsenter, ps
  # tests/cluster under srun (scripts/cluster/slurm.sh): slurmctld, slurmd, srun/sinfo and munged.
  # The harness starts its own daemons per run (in the emulated hosts' namespaces, with its own
  # key, socket and state in the run's temporary directory); the system services the packages
  # install (munge, slurmctld, slurmd) are not used, and without /etc/slurm/slurm.conf the Slurm
  # ones do not start.
  slurm-wlm munge
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
