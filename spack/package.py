# Spack recipe for chanpool (Spack 0.23 or later, 1.x included). spack/README.md says how to use
# it; tests/packaging/check_spack_recipe.py keeps it in step with the CMake options and the
# packages the build looks for.
from spack.package import *

try:  # Spack >= 1.0: the build systems moved into the builtin package repository.
    from spack_repo.builtin.build_systems.cmake import CMakePackage

    _LANGUAGE_VIRTUALS = True  # compilers are dependencies ("c", "cxx") there
except ImportError:  # Spack 0.x: spack.package exports it; compilers come from compilers.yaml.
    _LANGUAGE_VIRTUALS = False


class Chanpool(CMakePackage):
    """Lock-free, crash-safe, cross-process message channels in shared memory (C++20, with a C
    API), a libfabric transport between nodes, and a work-pulling Pool built on them, for HPC
    runtimes."""

    # No public repository or release yet, so no `git` or `url` here: a site names its clone in
    # packages.yaml (spack/README.md), which Spack applies to this class:
    #   packages: {chanpool: {package_attributes: {git: /path/to/chanpool}}}
    # The version is the one CMake's project() declares (tests/packaging checks that they agree),
    # built from the tip of the clone's `main` branch until releases are tagged.
    version("0.1.0", branch="main")

    variant("tools", default=True, description="Build and install pool_map, latency_bench, fanin_bench and chanpool_cleanup")
    variant("mpi", default=False, description="Build the MPI parts: the transport's MPI bootstrap libraries "
            "(chanpool::transport_mpi, chanpool::pool_mpi, and libchanpool_c_mpi.so for C) and the MPI baselines")
    variant("benchmarks", default=False, description="Build the Google Benchmark microbenchmarks and baselines")
    variant("examples", default=False, description="Build the C, Python and C++ examples of the C API (not installed)")
    variant("tests", default=False, description="Build the test suites even without --test (to run them by hand)")

    # Linux only: futexes, /dev/shm, membarrier and /proc start times are part of the design.
    conflicts("platform=darwin", msg="chanpool needs Linux (futexes, POSIX shm in /dev/shm, membarrier)")
    conflicts("platform=windows", msg="chanpool needs Linux (futexes, POSIX shm in /dev/shm, membarrier)")
    # C++20 (std::atomic_ref, std::span, designated initialisers); tested with GCC 12.
    conflicts("%gcc@:10", msg="chanpool needs C++20 as GCC 11 or later implements it")

    if _LANGUAGE_VIRTUALS:
        depends_on("c", type="build")  # project() enables C: the C example, CMake's symbol checks
        depends_on("cxx", type="build")
    depends_on("cmake@3.22:", type="build")
    depends_on("pkgconfig", type="build")  # finds libfabric (and hwloc for the tools)

    # Boost.Interprocess is header-only and used only inside the libraries: the installed package
    # and its CMake config do not need Boost.
    depends_on("boost@1.74:", type="build")
    # The transport layer is always built; chanpool::transport links it publicly.
    depends_on("libfabric@1.9:")
    depends_on("mpi", when="+mpi")
    # The Pool (always built) places its workers with hwloc, and its public headers encode task
    # arguments with cereal (header-only): consumers of chanpool::pool need both.
    depends_on("hwloc")
    depends_on("cereal")

    with when("+tools"):
        depends_on("cli11", type="build")
        depends_on("nlohmann-json@3.10:", type="build")
    with when("+benchmarks"):
        depends_on("benchmark")
        depends_on("cli11", type="build")
        depends_on("nlohmann-json@3.10:", type="build")

    # The suites are configured, built and linked in the build phase whenever they are on: with
    # +tests, or with `spack install --test`, which adds "test" dependencies to the build.
    depends_on("googletest", type=("build", "link"), when="+tests")
    depends_on("python@3.8:", type="build", when="+tests")
    depends_on("googletest", type="test")
    depends_on("python@3.8:", type="test")

    def cmake_args(self):
        return [
            # Spack's standard arguments set BUILD_TESTING from --test; chanpool reads its own.
            self.define("CHANPOOL_BUILD_TESTS", self.run_tests or self.spec.satisfies("+tests")),
            self.define_from_variant("CHANPOOL_BUILD_TOOLS", "tools"),
            self.define_from_variant("CHANPOOL_BUILD_BENCHMARKS", "benchmarks"),
            self.define_from_variant("CHANPOOL_ENABLE_MPI", "mpi"),
            self.define_from_variant("CHANPOOL_BUILD_EXAMPLES", "examples"),
            # Sanitizers and fuzz targets are a developer's switch (CMakePresets.json), never an
            # installed build.
            self.define("CHANPOOL_SANITIZE", ""),
            self.define("CHANPOOL_BUILD_FUZZERS", False),
        ]

    def check(self):
        """Runs the test suites (`spack install --test=root chanpool`), one at a time as
        scripts/test.sh does: they fork processes and time their waits. The stress suites take
        minutes and are left to scripts/test.sh."""
        exclude = []
        if self.spec.satisfies("~tools"):
            exclude.append("install.consumer")  # it checks that the tools were installed
        args = ["--output-on-failure", "-j", "1", "-LE", "stress"]
        if exclude:
            args += ["-E", "|".join(exclude)]
        with working_dir(self._build_directory()):
            Executable(self.spec["cmake"].prefix.bin.ctest)(*args)

    def _build_directory(self):
        try:  # Spack 0.x: the package knows its builder
            return self.builder.build_directory
        except AttributeError:  # Spack 1.x: builders are made by spack.builder
            import spack.builder

            return spack.builder.create(self).build_directory
