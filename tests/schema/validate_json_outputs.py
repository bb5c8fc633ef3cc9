#!/usr/bin/python3
# Every --json output of the real procforge binary, on real inputs (a program
# that runs, one that fails in execve, one that fails in ld.so, a #! chain, a
# batch, a run that exits and one killed, a profile, a comparison, a
# benchmark, the version), validated against its schema in docs/schema/ with
# Debian's python3-jsonschema, the library a user of these files would reach
# for. Each document must also name the schema its command promises and the
# version `procforge version --json` reports.
#
# A schema that accepts anything cannot fail this test, so each document is
# also broken on purpose (every top-level field replaced by an object of the
# wrong shape, the two stamps removed, the schema renamed) and every broken
# copy must be rejected.
#
# usage: validate_json_outputs.py PROCFORGE SCHEMA_DIR
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    from jsonschema import RefResolver, validators
except ImportError:
    # A missing validator is a broken harness, not a pass or a skip: scripts/bootstrap installs it.
    sys.exit("validate_json_outputs: python3-jsonschema is not installed (scripts/bootstrap installs it)")

PROCFORGE, SCHEMA_DIR = sys.argv[1], sys.argv[2]
SCHEMAS = {f: json.load(open(os.path.join(SCHEMA_DIR, f))) for f in os.listdir(SCHEMA_DIR) if f.endswith(".schema.json")}
for name, s in SCHEMAS.items():
    validators.validator_for(s).check_schema(s)

failures = []
counts = {"validated": 0, "broken_rejected": 0}
used = set()  # the schema files some output was checked against


def schema_file(schema_name):
    return schema_name.split(".", 1)[1].split("/")[0] + ".schema.json"  # procforge.NAME/1 -> NAME.schema.json


def validator(schema_name):
    """The validator of docs/schema/NAME.schema.json; its $refs to the other files resolve among them."""
    file = schema_file(schema_name)
    if file not in SCHEMAS:
        return None
    s = SCHEMAS[file]
    return validators.validator_for(s)(s, resolver=RefResolver("", s, store=SCHEMAS))


def procforge(args, status, stdin=None, env=None):
    r = subprocess.run([PROCFORGE] + args, input=stdin, capture_output=True, text=True, timeout=120,
                       env=None if env is None else {**os.environ, **env})
    if r.returncode != status:
        failures.append(f"procforge {' '.join(args)}: exit status {r.returncode}, expected {status}\n{r.stderr}")
    return r


def broken_copies(doc):
    for key in doc:
        yield f"{key} of the wrong shape", {**doc, key: {"mutated": True}}
    for key in ("procforge_version", "schema"):
        yield f"without {key}", {k: v for k, v in doc.items() if k != key}
    other = "procforge.version/1" if doc.get("schema") != "procforge.version/1" else "procforge.run/1"
    yield "named as another schema", {**doc, "schema": other}


def why(error):
    """An error's message; for a oneOf that no branch matched, each branch's own reason instead of the document."""
    if not error.context:
        return error.message[:300]
    return "; ".join(f"branch {c.relative_schema_path[0]}: {c.message[:200]}" for c in error.context)


def validate(what, doc, schema_name):
    if doc.get("schema") != schema_name:
        failures.append(f"{what}: schema is {doc.get('schema')!r}, expected {schema_name!r}")
        return
    if doc.get("procforge_version") != VERSION:
        failures.append(f"{what}: procforge_version {doc.get('procforge_version')!r}, version --json says {VERSION!r}")
    v = validator(schema_name)
    if v is None:
        failures.append(f"{what}: no file in {SCHEMA_DIR} for {schema_name}")
        return
    counts["validated"] += 1
    used.add(schema_name)
    for e in list(v.iter_errors(doc))[:5]:
        failures.append(f"{what} breaks {schema_name} at /{'/'.join(map(str, e.absolute_path))}: {why(e)}")
    for how, copy in broken_copies(doc):
        if v.is_valid(copy):
            failures.append(f"{what}: a copy {how} still passes {schema_name}: the schema does not pin it")
        else:
            counts["broken_rejected"] += 1


def validate_json(what, text, schema_name):
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        failures.append(f"{what}: not JSON ({e}): {text[:200]!r}")
        return
    validate(what, doc, schema_name)


VERSION = json.loads(procforge(["version", "--json"], 0).stdout)["procforge_version"]
validate_json("version --json", procforge(["version", "--json"], 0).stdout, "procforge.version/1")

with tempfile.TemporaryDirectory(prefix="procforge-schema-") as d:
    script = os.path.join(d, "script.sh")  # a #! chain to /bin/sh
    with open(script, "w") as f:
        f.write("#!/bin/sh -e\necho hello\n")
    bad_interp = os.path.join(d, "bad-interp.sh")  # execve fails: ENOENT for the interpreter
    with open(bad_interp, "w") as f:
        f.write("#!/nonexistent/interpreter\n")
    os.chmod(script, 0o755)
    os.chmod(bad_interp, 0o755)
    # A program whose library is gone: the kernel's half runs, ld.so stops.
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        sys.exit("validate_json_outputs: no C compiler to build the ld.so-failure case (scripts/bootstrap installs one)")
    lib, prog = os.path.join(d, "libpfschema.so"), os.path.join(d, "needs-missing-lib")
    subprocess.run([cc, "-shared", "-fPIC", "-o", lib, "-x", "c", "-"], input="int pf(void){return 0;}\n",
                   text=True, check=True)
    subprocess.run([cc, "-o", prog, "-x", "c", "-", "-L" + d, "-lpfschema"],
                   input="int pf(void);\nint main(void){return pf();}\n", text=True, check=True)
    os.unlink(lib)

    explained = [("/usr/bin/ls", 0), ("/nonexistent", 1), (script, 0), (bad_interp, 1), (prog, 1)]
    outcomes = set()
    for path, status in explained:
        r = procforge(["explain", "--json", path], status)
        validate_json(f"explain --json {path}", r.stdout, "procforge.explain/1")
        if r.stdout.startswith("{"):
            outcomes.add(json.loads(r.stdout)["result"]["outcome"])
    if outcomes != {"runs", "execve_fails", "ldso_fails"}:
        failures.append(f"explain's inputs gave the outcomes {sorted(outcomes)}: the cases no longer cover what they should")

    r = procforge(["explain", "--json", "--bindings", "/usr/bin/ls"], 0)
    validate_json("explain --json --bindings /usr/bin/ls", r.stdout, "procforge.explain/1")
    if not json.loads(r.stdout)["loader"].get("bindings"):
        failures.append("explain --json --bindings /usr/bin/ls: no bindings")
    # A function its library no longer defines: lazily its first call fails
    # (first_call_errors); with LD_BIND_NOW=1 the start does (error, stage relocating).
    lib2, prog2 = os.path.join(d, "libpfgone.so"), os.path.join(d, "calls-gone-function")
    subprocess.run([cc, "-shared", "-fPIC", "-o", lib2, "-x", "c", "-"], input="int pf(void){return 0;}\n",
                   text=True, check=True)
    subprocess.run([cc, "-o", prog2, "-x", "c", "-", "-L" + d, "-lpfgone", "-Wl,-rpath," + d],
                   input="int pf(void);\nint main(void){return pf();}\n", text=True, check=True)
    subprocess.run([cc, "-shared", "-fPIC", "-o", lib2, "-x", "c", "-"], input="int kept;\n", text=True, check=True)
    for env, status, key in [([], 0, "first_call_errors"), (["--env=LD_BIND_NOW=1"], 1, "error")]:
        r = procforge(["explain", "--json", "--bindings"] + env + [prog2], status)
        validate_json(f"explain --json --bindings {' '.join(env)} {prog2}", r.stdout, "procforge.explain/1")
        if r.stdout.startswith("{") and not json.loads(r.stdout)["loader"].get(key):
            failures.append(f"explain --json --bindings {' '.join(env)} {prog2}: no {key}")
    # glibc's ld.so run as a command: a list, a refused command line, a run that stops.
    ldso = "/lib64/ld-linux-x86-64.so.2"
    if os.access(ldso, os.X_OK):
        for args, status in [(["--list", "/usr/bin/ls"], 0), (["--bogus"], 1), (["--library-path", d, prog], 1)]:
            r = procforge(["explain", "--json", ldso] + args, status)
            validate_json(f"explain --json {ldso} {' '.join(args)}", r.stdout, "procforge.explain/1")

    listing = "".join(p + "\n" for p, _ in explained) + "/etc/passwd\n"
    r = procforge(["explain", "--json", "--batch", "-"], 1, stdin=listing)
    lines = r.stdout.splitlines()
    if len(lines) != listing.count("\n"):
        failures.append(f"explain --batch: {len(lines)} lines for {listing.count(chr(10))} paths")
    for i, line in enumerate(lines):
        validate_json(f"explain --json --batch line {i + 1}", line, "procforge.explain-batch/1")

    # ldd: a program, a library, one with a library gone, a text file, a missing file.
    r = procforge(["ldd", "--json", "--", "/usr/bin/ls", "/usr/lib/x86_64-linux-gnu/libc.so.6", prog,
                   script, os.path.join(d, "missing")], 1)
    validate_json("ldd --json", r.stdout, "procforge.ldd/1")
    if r.stdout.startswith("{"):
        seen = {f["outcome"] for f in json.loads(r.stdout)["files"]}
        if seen != {"traced", "not_dynamic", "no_such_file"}:
            failures.append(f"ldd's inputs gave the outcomes {sorted(seen)}: the cases no longer cover what they should")

    # ldd as musl's ldd (its loader run as ldd): a glibc program, a text file, a missing file.
    if os.access("/lib/ld-musl-x86_64.so.1", os.X_OK):
        r = procforge(["ldd", "--json", "--loader=musl", "--", "/usr/bin/ls", script, os.path.join(d, "missing")], 127)
        validate_json("ldd --json --loader=musl", r.stdout, "procforge.ldd/1")

    # batch: cold, warm, a failure, a signal, a program that is not there.
    commands = "/bin/true\necho 'two words'\nls /nonexistent\n/bin/sh -c 'kill -KILL $$'\n/nonexistent\n"
    for flags in ([], ["--warm"]):
        r = procforge(["batch", "--json"] + flags + ["-"], 3, stdin=commands)
        lines = r.stdout.splitlines()
        if len(lines) != 5:
            failures.append(f"batch --json {flags}: {len(lines)} lines for 5 commands")
        for i, line in enumerate(lines):
            validate_json(f"batch --json {' '.join(flags)} line {i + 1}", line, "procforge.batch/1")

    r = procforge(["run", "--json", "--", "/bin/true"], 0)  # the report goes to stderr
    validate_json("run --json /bin/true", r.stderr, "procforge.run/1")
    for name, command, status in [("not-found", ["/nonexistent"], 127),
                                  ("killed", ["/bin/sh", "-c", "kill -KILL $$"], 128 + 9)]:
        report = os.path.join(d, f"run-{name}.json")
        procforge(["run", "--report-file", report, "--"] + command, status)
        with open(report) as f:
            validate_json(f"run --report-file ({name})", f.read(), "procforge.run/1")

    r = procforge(["profile", "--json", "--runs", "1", "--warmup", "0", "--", "/bin/true"], 0)
    validate_json("profile --json /bin/true", r.stdout, "procforge.profile/1")
    r = procforge(["profile", "--json", "--runs", "1", "--warmup", "0", "--compare", "/bin/true", "/bin/sh -c :"], 0)
    validate_json("profile --json --compare", r.stdout, "procforge.profile-compare/1")

    bench = ["bench", "spawn", "--json", "--runs", "3", "--rss", "0"]
    if not os.path.exists(os.path.join(os.path.dirname(PROCFORGE), "bench", "procforge-exit0")):
        bench += ["--static-target", "/bin/true"]  # built without the benchmarks
    validate_json("bench spawn --json", procforge(bench, 0).stdout, "procforge.bench-spawn/1")
    r = procforge(["bench", "warm", "--json", "--runs", "3", "--program", "/bin/true", "--program", "ls /"], 0)
    validate_json("bench warm --json", r.stdout, "procforge.bench-warm/1")
    r = procforge(["bench", "create", "claims", "--quick", "--runs", "1", "--json"], 0)
    validate_json("bench create claims --quick --json", r.stdout, "procforge.bench/1")

unused = set(SCHEMAS) - {schema_file(n) for n in used}
if unused:
    failures.append(f"no output was checked against {sorted(unused)}: add the command that produces it")
for f in failures:
    print("FAIL", f)
print(f"{counts['validated']} documents validated against {len(SCHEMAS)} schemas; "
      f"{counts['broken_rejected']} broken copies rejected; {len(failures)} failures")
sys.exit(1 if failures or counts["validated"] == 0 else 0)
