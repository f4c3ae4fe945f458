#!/usr/bin/env bash
# The Spack check that builds: with the Spack tarball of ../shared/tools (or
# $CHANPOOL_SPACK_TARBALL), offline and with Debian's packages as externals, runs
#   spack install --test=root chanpool          (builds, runs the suites but the stress ones, installs)
#   spack install chanpool +mpi +benchmarks ~tools
#   spack dev-build chanpool@VERSION ~tools     (in a clone of the checkout)
# against the commit checked out here (scripts/spack_site.py says how). Takes tens of minutes
# on two cores: ctest runs only the quick Spack checks (ctest -L packaging).
#   scripts/spack_install_check.sh [WORK_DIR]   (default /tmp/chanpool-spack-<uid>; reused)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/chanpool-spack-$(id -u)}
exec python3 scripts/spack_site.py --source . --work "$work" install
