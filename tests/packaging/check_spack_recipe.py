#!/usr/bin/env python3
"""Checks spack/package.py against the CMake build it drives, without Spack.

    check_spack_recipe.py RECIPE SOURCE_DIR

Reads the recipe with the ast module (Spack is not needed or imported) and every CMakeLists.txt
and *.cmake file of the source tree, and fails when they disagree:

  - a -D option the recipe passes is not an option() or cache variable of the build;
  - a CHANPOOL_* option of the build is not passed by the recipe (variants track options one
    to one: a new option needs a variant or an explicit value);
  - a variant is never used by cmake_args, or a define_from_variant / when= names no variant;
  - a package the build looks for (find_package, pkg_check_modules) has no depends_on, or a
    depends_on matches nothing the build looks for;
  - CHANPOOL_BUILD_TESTS is not tied to self.run_tests, check() does not run ctest, the
    project's version is not a recipe version, or the CMake minimum differs.
"""
import ast
import os
import re
import sys

# CMake package (find_package) or pkg-config module -> Spack package; None: nothing to depend on.
DEPENDENCIES = {
    "Threads": None,
    "chanpool": None,  # tests/install/consumer finds the package under test
    "Boost": "boost",
    "CLI11": "cli11",
    "nlohmann_json": "nlohmann-json",
    "GTest": "googletest",
    "benchmark": "benchmark",
    "MPI": "mpi",
    "Python3": "python",
    "PkgConfig": "pkgconfig",
    "hwloc": "hwloc",
    "libfabric": "libfabric",
    "cereal": "cereal",
}
# Dependencies no find_package stands for: compilers and the build tool itself.
IMPLICIT = {"c", "cxx", "cmake"}
PKG_KEYWORDS = {"REQUIRED", "QUIET", "IMPORTED_TARGET", "GLOBAL", "NO_CMAKE_PATH", "NO_CMAKE_ENVIRONMENT_PATH"}

errors = []


def fail(message):
    errors.append(message)


# ---- the CMake side ----------------------------------------------------------------------------

def cmake_files(source_dir):
    for root, dirs, files in os.walk(source_dir):
        rel = os.path.relpath(root, source_dir)
        # Build trees (build/, out/, spack-build-*) and hidden directories are not the project.
        dirs[:] = [d for d in dirs if not d.startswith((".", "build", "out", "spack-build"))]
        if rel.startswith(("build", "out")):
            continue
        for f in files:
            if f == "CMakeLists.txt" or f.endswith(".cmake"):
                yield os.path.join(root, f)


def strip_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def read_cmake(source_dir):
    options, finds, project_version, cmake_min = set(), set(), None, None
    for path in cmake_files(source_dir):
        with open(path, encoding="utf-8") as f:
            text = strip_comments(f.read())
        options.update(re.findall(r"\boption\(\s*(\w+)", text))
        for name, kind in re.findall(r"\bset\(\s*(\w+)\b[^)]*?\bCACHE\s+(\w+)", text):
            if kind != "INTERNAL":
                options.add(name)
        finds.update(re.findall(r"\bfind_package\(\s*(\w+)", text))
        for args in re.findall(r"\bpkg_(?:check_modules|search_module)\(\s*\w+([^)]*)\)", text):
            for token in args.split():
                if token not in PKG_KEYWORDS:
                    finds.add(re.split(r"[<>=]", token)[0])
        if os.path.dirname(os.path.abspath(path)) == os.path.abspath(source_dir):
            m = re.search(r"\bproject\(\s*\w+\s+VERSION\s+([\d.]+)", text)
            project_version = m.group(1) if m else project_version
            m = re.search(r"cmake_minimum_required\(\s*VERSION\s+([\d.]+)", text)
            cmake_min = m.group(1) if m else cmake_min
    return options, finds, project_version, cmake_min


# ---- the recipe side ---------------------------------------------------------------------------

def const_str(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def call_name(call):
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def keyword(call, name):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def variant_refs(spec):
    """Variant names a spec string tests: +name, ~name, name=value."""
    return set(re.findall(r"[+~]([A-Za-z_][\w-]*)", spec)) | set(re.findall(r"(?:^|\s)([A-Za-z_][\w-]*)=", spec))


def directives(body, when=None):
    """Yields (call, enclosing `with when(...)` spec) for every directive call in a class body."""
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            yield stmt.value, when
        elif isinstance(stmt, ast.With):
            inner = when
            for item in stmt.items:
                ctx = item.context_expr
                if isinstance(ctx, ast.Call) and call_name(ctx) == "when" and ctx.args:
                    inner = const_str(ctx.args[0])
            yield from directives(stmt.body, inner)
        elif isinstance(stmt, ast.If):  # e.g. directives only some Spack versions know
            yield from directives(stmt.body, when)
            yield from directives(stmt.orelse, when)


def main():
    recipe_path, source_dir = sys.argv[1:3]
    with open(recipe_path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), recipe_path)
    classes = [c for c in tree.body if isinstance(c, ast.ClassDef)
               and any(isinstance(b, ast.Name) and b.id == "CMakePackage" for b in c.bases)]
    if len(classes) != 1:
        print(f"FAIL: expected one CMakePackage class in {recipe_path}, found {len(classes)}")
        return 1
    cls = classes[0]
    methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}

    variants, versions, depends, whens = set(), set(), {}, []
    for call, when in directives(cls.body):
        name = call_name(call)
        first = const_str(call.args[0]) if call.args else None
        if when:
            whens.append((f"with when({when!r})", when))
        cond = const_str(keyword(call, "when")) if keyword(call, "when") is not None else None
        if cond:
            whens.append((f"{name}({first!r}, when={cond!r})", cond))
        if name == "variant" and first:
            variants.add(first)
        elif name == "version" and first:
            versions.add(first)
        elif name == "depends_on" and first:
            depends.setdefault(re.split(r"[@+~%\s]", first)[0], []).append(first)
        elif name == "conflicts" and first:
            whens.append((f"conflicts({first!r})", first))

    options, finds, project_version, cmake_min = read_cmake(source_dir)

    # cmake_args: what it defines, which variants it reads.
    if "cmake_args" not in methods:
        fail("the recipe has no cmake_args()")
        defined, used_variants = {}, set()
    else:
        defined, used_variants = {}, set()
        for node in ast.walk(methods["cmake_args"]):
            if isinstance(node, ast.Call) and call_name(node) in ("define", "define_from_variant") and node.args:
                var = const_str(node.args[0])
                if var is None:
                    fail(f"line {node.lineno}: {call_name(node)}() with a computed variable name cannot be checked")
                    continue
                defined[var] = node
                if call_name(node) == "define_from_variant":
                    v = const_str(node.args[1]) if len(node.args) > 1 else var.lower()
                    used_variants.add(v)
                    if v not in variants:
                        fail(f"define_from_variant({var!r}, {v!r}): no variant {v!r}")
            s = const_str(node)
            if s:
                m = re.match(r"-D(\w+)", s)
                if m:
                    defined.setdefault(m.group(1), node)
                if not s.startswith("-D"):
                    used_variants |= variant_refs(s) & variants

    for var in sorted(defined):
        if var not in options:
            fail(f"cmake_args passes {var}, which no CMakeLists.txt declares with option() or set(... CACHE)")
    for opt in sorted(o for o in options if o.startswith("CHANPOOL_")):
        if opt not in defined:
            fail(f"the build's option {opt} is not passed by cmake_args: add a variant (or an explicit value)")
    for v in sorted(variants - used_variants):
        fail(f"variant {v!r} is never used by cmake_args")
    for where, spec in whens:
        for v in sorted(variant_refs(spec) - variants - {"platform", "target", "os", "arch", "build_type",
                                                          "generator", "build_system"}):
            fail(f"{where} names {v!r}, which is not a variant")

    tests = defined.get("CHANPOOL_BUILD_TESTS")
    if tests is None or not any(isinstance(n, ast.Attribute) and n.attr == "run_tests" for n in ast.walk(tests)):
        fail("CHANPOOL_BUILD_TESTS must follow self.run_tests (spack install --test)")
    if "check" not in methods or "ctest" not in ast.unparse(methods["check"]):
        fail("check() must run ctest")

    # Dependencies both ways.
    needed = set()
    for pkg in sorted(finds):
        if pkg not in DEPENDENCIES:
            fail(f"the build looks for {pkg!r}, which has no Spack mapping: add it to DEPENDENCIES in "
                 f"{os.path.basename(__file__)} and a depends_on to the recipe")
        elif DEPENDENCIES[pkg]:
            needed.add(DEPENDENCIES[pkg])
    for dep in sorted(needed - depends.keys()):
        fail(f"the build needs {dep!r} but the recipe has no depends_on({dep!r})")
    for dep in sorted(depends.keys() - needed - IMPLICIT):
        fail(f"depends_on({depends[dep][0]!r}) matches nothing the build looks for")

    if project_version not in versions:
        fail(f"the project's version {project_version} is not a version() of the recipe ({sorted(versions)})")
    if cmake_min and not any(s.startswith(f"cmake@{cmake_min}:") for s in depends.get("cmake", [])):
        fail(f"cmake_minimum_required is {cmake_min}: the recipe should depend on cmake@{cmake_min}:")

    for e in errors:
        print(f"FAIL: {e}")
    if errors:
        return 1
    print(f"PASS: {len(variants)} variants, {len(defined)} CMake options passed, "
          f"{len(needed)} dependencies matched ({', '.join(sorted(needed))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
