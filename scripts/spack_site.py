#!/usr/bin/env python3
"""A throw-away Spack site for chanpool: Spack unpacked from a tarball, Debian's packages as
externals, and the recipe in a package repository of its own, all under one work directory.

    spack_site.py --source DIR --work DIR [--tarball PATH] check
    spack_site.py --source DIR --work DIR [--tarball PATH] install

`check` (ctest -L packaging) runs what is quick: `spack audit packages chanpool` and
`spack spec` of the default and of the +mpi, +benchmarks and ~tools variants. `install`
(scripts/spack_install_check.sh) builds for real: `spack install --test=root chanpool`, then
`chanpool +mpi +benchmarks ~tools`, then `spack dev-build chanpool@VERSION ~tools` in a clone of
the checkout, and checks that each install has its CMake package files.

The tarball is --tarball, else $CHANPOOL_SPACK_TARBALL, else ../shared/tools/spack-*.tar.gz
beside the source directory; without one the script exits 77 (ctest: skipped). Nothing is
written outside the work directory: Spack's user configuration and caches are redirected there
(SPACK_USER_CONFIG_PATH, SPACK_USER_CACHE_PATH) and the local scopes disabled
(SPACK_DISABLE_LOCAL_CONFIG); the site configuration is the unpacked Spack's own etc/spack.

The site's "clone" (packages.yaml package_attributes: git) is a bare copy of the checkout whose
`main` is the checkout's HEAD, so the commit under test is what Spack fetches and builds.
Without the clingo Python module (Spack cannot bootstrap it offline), a Spack that still has its
original concretizer (0.x) is told to use it.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

SKIP = 77
# Spack package -> (Debian package whose version it reports, prefix). The Debian version's
# epoch and revision are dropped ("1:2.39.5-0+deb12u3" -> 2.39.5); "+ds" suffixes too.
EXTERNALS = {
    "cmake": "cmake",
    "gmake": "make",
    "ninja": "ninja-build",
    "pkgconf": "pkgconf",
    "python": "python3",
    "git": "git",
    "boost": "libboost-dev",
    "libfabric": "libfabric-dev",
    "hwloc": "libhwloc-dev",
    "cereal": "libcereal-dev",
    "cli11": "libcli11-dev",
    "nlohmann-json": "nlohmann-json3-dev",
    "googletest": "libgtest-dev",
    "benchmark": "libbenchmark-dev",
    "openmpi": "libopenmpi-dev",
}
# The variants `check` concretizes and `install` builds (with the defaults first).
SPECS = ["chanpool", "chanpool+mpi", "chanpool+benchmarks", "chanpool~tools"]


def log(message):
    print(f"spack_site: {message}", flush=True)


def find_tarball(args):
    if args.tarball:
        return args.tarball if os.path.exists(args.tarball) else None
    if os.environ.get("CHANPOOL_SPACK_TARBALL"):
        path = os.environ["CHANPOOL_SPACK_TARBALL"]
        return path if os.path.exists(path) else None
    found = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(args.source)), "shared", "tools",
                                          "spack-*.tar.gz")))
    return found[-1] if found else None


def project_version(source):
    with open(os.path.join(source, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"\bproject\(\s*\w+\s+VERSION\s+([\d.]+)", f.read())
    if not m:
        raise SystemExit("FAIL: no project(... VERSION x.y.z) in CMakeLists.txt")
    return m.group(1)


def debian_version(package):
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout:
        return None
    version = done.stdout.split(":", 1)[-1].split("-", 1)[0]
    return version.split("+", 1)[0].split("~", 1)[0]


class Site:
    def __init__(self, source, work, tarball):
        self.source = os.path.abspath(source)
        self.work = os.path.abspath(work)
        self.tarball = tarball
        self.env = dict(os.environ, SPACK_USER_CONFIG_PATH=os.path.join(self.work, "user"),
                        SPACK_USER_CACHE_PATH=os.path.join(self.work, "cache"), SPACK_DISABLE_LOCAL_CONFIG="1")
        self.root = None

    def spack(self, *args, check=True, capture=False, timeout=None):
        command = [os.path.join(self.root, "bin", "spack"), *args]
        log("$ spack " + " ".join(args))
        done = subprocess.run(command, env=self.env, text=True, timeout=timeout,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.STDOUT if capture else None)
        if check and done.returncode != 0:
            if capture:
                print(done.stdout[-6000:])
            raise SystemExit(f"FAIL: spack {' '.join(args)} exited {done.returncode}")
        return done

    def unpack(self):
        os.makedirs(self.work, exist_ok=True)
        with tarfile.open(self.tarball) as tar:
            top = tar.getmembers()[0].name.split("/", 1)[0]
            self.root = os.path.join(self.work, top)
            if not os.path.exists(os.path.join(self.root, "bin", "spack")):
                tar.extractall(self.work)
        version = self.spack("--version", capture=True).stdout.strip()
        log(f"Spack {version} from {self.tarball} in {self.root}")
        return version

    def etc(self, name):
        return os.path.join(self.root, "etc", "spack", name)

    def write(self, path, text):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def make_clone(self):
        """The site's clone: a bare copy whose main is the commit checked out here."""
        clone = os.path.join(self.work, "chanpool.git")
        if not os.path.exists(clone):
            subprocess.run(["git", "clone", "--quiet", "--bare", self.source, clone], check=True)
        self.head = subprocess.run(["git", "-C", self.source, "rev-parse", "HEAD"], capture_output=True, text=True,
                                   check=True).stdout.strip()
        subprocess.run(["git", "-C", clone, "fetch", "--quiet", self.source, f"+{self.head}:refs/heads/main"],
                       check=True)
        dirty = subprocess.run(["git", "-C", self.source, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        if dirty:
            log(f"the checkout has uncommitted changes: Spack builds the commit {self.head[:12]} without them")
        return clone

    def configure(self, version, clone):

        repo = os.path.join(self.work, "repo")
        if not os.path.exists(repo):
            self.spack("repo", "create", repo, "chanpool_site", capture=True)
        packages = [d for d in glob.glob(os.path.join(repo, "**", "packages"), recursive=True) if os.path.isdir(d)]
        if len(packages) != 1:
            raise SystemExit(f"FAIL: spack repo create made {packages} under {repo}: expected one packages/")
        os.makedirs(os.path.join(packages[0], "chanpool"), exist_ok=True)
        shutil.copy(os.path.join(self.source, "spack", "package.py"), os.path.join(packages[0], "chanpool"))
        self.write(self.etc("repos.yaml"), f"repos:\n- {repo}\n")

        lines = ["packages:", "  all:", "    compiler: [gcc]", "  chanpool:", "    package_attributes:",
                 f"      git: {clone}"]
        for spack_name, debian in EXTERNALS.items():
            v = debian_version(debian)
            if v is None:
                log(f"no Debian package {debian}: Spack would have to build {spack_name} (offline: it cannot)")
                continue
            lines += [f"  {spack_name}:", "    buildable: false", "    externals:",
                      f"    - spec: {spack_name}@{v}", "      prefix: /usr"]
        lines += ["  mpi:", "    buildable: false", "  pkgconfig:", "    buildable: false"]
        self.write(self.etc("packages.yaml"), "\n".join(lines) + "\n")

        config = ["config:", f"  install_tree:", f"    root: {os.path.join(self.work, 'opt')}",
                  f"  build_stage: [{os.path.join(self.work, 'stage')}]",
                  f"  source_cache: {os.path.join(self.work, 'source-cache')}",
                  f"  misc_cache: {os.path.join(self.work, 'cache', 'misc')}",
                  f"  build_jobs: {os.cpu_count() or 2}"]
        if not self.has_clingo() and version.startswith("0."):
            log("no clingo module here (Spack cannot bootstrap it offline): using the original concretizer")
            config.append("  concretizer: original")
        self.write(self.etc("config.yaml"), "\n".join(config) + "\n")

        compilers = glob.glob(self.etc("**/compilers.yaml"), recursive=True)
        if not compilers and version.startswith("0."):  # 1.x finds compilers as externals by itself
            self.spack("compiler", "find", "--scope", "site", os.path.dirname(shutil.which("gcc") or "/usr/bin/gcc"),
                       capture=True)

    def has_clingo(self):
        done = self.spack("python", "-c", "import clingo", check=False, capture=True)
        return done.returncode == 0

    def setup(self, with_clone):
        # `check` fetches nothing: the checkout itself stands for the clone there.
        version = self.unpack()
        self.configure(version, self.make_clone() if with_clone else self.source)


def check(site):
    site.spack("audit", "packages", "chanpool")
    # One process concretizes them all (each separately): Spack's start-up is paid once.
    out = site.spack("spec", "-I", *SPECS, capture=True).stdout
    roots = [line for line in out.splitlines() if line.lstrip(" -[+]e^").startswith("chanpool@")
             and not line.startswith((" " * 8))]
    if len(roots) != len(SPECS):
        print(out[-4000:])
        raise SystemExit(f"FAIL: spack spec printed {len(roots)} chanpool roots for {len(SPECS)} specs")
    for spec, root in zip(SPECS, roots):
        want = next((v for v in ("+mpi", "+benchmarks", "~tools") if v in spec), "+tools")
        if want not in root:
            raise SystemExit(f"FAIL: spack spec {spec}: the root has no {want}: {root.strip()}")
        log(f"ok {spec}: {root.strip()}")
    print(f"PASS: spack audit packages chanpool, and {len(SPECS)} specs concretize")


def install(site):
    t0 = time.monotonic()
    site.spack("install", "--test=root", "--verbose", "chanpool")
    site.spack("install", "chanpool+mpi+benchmarks~tools")
    checkout = os.path.join(site.work, "checkout")
    if os.path.exists(checkout):
        shutil.rmtree(checkout)
    subprocess.run(["git", "clone", "--quiet", os.path.join(site.work, "chanpool.git"), checkout], check=True)
    dev_spec = f"chanpool@{project_version(site.source)}~tools"
    log(f"$ (cd {checkout} && spack dev-build {dev_spec})")
    done = subprocess.run([os.path.join(site.root, "bin", "spack"), "dev-build", dev_spec], cwd=checkout, env=site.env)
    if done.returncode != 0:
        raise SystemExit(f"FAIL: spack dev-build exited {done.returncode}")
    out = site.spack("find", "-v", "chanpool", capture=True).stdout
    print(out)
    prefixes = site.spack("find", "--format", "{prefix}", "chanpool", capture=True).stdout.split()
    for prefix in prefixes:
        config = os.path.join(prefix, "lib", "cmake", "chanpool", "chanpoolConfigVersion.cmake")
        if not os.path.exists(config):
            raise SystemExit(f"FAIL: {prefix} has no {config}")
    print(f"PASS: {len(prefixes)} installs of commit {site.head[:12]} in {time.monotonic() - t0:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="the chanpool checkout")
    parser.add_argument("--work", required=True, help="work directory (created; reused if it exists)")
    parser.add_argument("--tarball")
    parser.add_argument("action", choices=["check", "install"])
    args = parser.parse_args()
    tarball = find_tarball(args)
    if tarball is None:
        print("SKIP: no Spack tarball (give --tarball, set CHANPOOL_SPACK_TARBALL, or put spack-*.tar.gz in "
              "../shared/tools beside the checkout)")
        return SKIP
    site = Site(args.source, args.work, tarball)
    site.setup(with_clone=args.action == "install")
    check(site) if args.action == "check" else install(site)
    return 0


if __name__ == "__main__":
    sys.exit(main())
