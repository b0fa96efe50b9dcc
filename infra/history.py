#!/usr/bin/env python3
"""Release history for deploy.sh / rollback.sh.

Every package deployed is kept, content-addressed, under RELEASES_DIR/<sha256[:12]>/<zip name>, and
RELEASES_DIR/history.json lists what was deployed where and when, newest last:

    {"releases": [{"id": 1, "action": "deploy", "resourceGroup": "rg", "prefix": "ee-prod",
                   "functionApp": "ee-prod-func-abc123", "hostName": "....azurewebsites.net",
                   "label": "0.1.0-0123456789ab", "version": "0.1.0", "gitSha": "0123456789ab",
                   "package": "<sha12>/entra-enrich-0.1.0-0123456789ab.zip", "sha256": "...",
                   "health": "ok", "at": "2026-11-25T04:00:00Z", "by": "oncall@contoso.com"}]}

The last entry for a resource group + prefix is what is deployed there now (as far as this history
knows). Subcommands print JSON on stdout; errors go to stderr with exit status 1.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile

LABEL = re.compile(r"^entra-enrich-(?P<version>.+?)-(?P<sha>[0-9a-f]{7,40}(?:-dirty)?|nogit)\.zip$")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def load(d):
    path = os.path.join(d, "history.json")
    if not os.path.exists(path):
        return {"releases": []}
    try:
        with open(path) as f:
            doc = json.load(f)
    except ValueError as e:
        fail(f"{path} is not valid JSON ({e}); fix or move it aside")
    if not isinstance(doc.get("releases"), list):
        fail(f"{path} has no releases list")
    return doc


def save(d, doc):
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".history-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(d, "history.json"))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(zip_path):
    name = os.path.basename(zip_path)
    m = LABEL.match(name)
    if m:
        return {"label": f"{m['version']}-{m['sha']}", "version": m["version"], "gitSha": m["sha"]}
    return {"label": name[:-4] if name.endswith(".zip") else name, "version": "", "gitSha": ""}


def stored_path(d, digest, zip_path):
    return os.path.join(d, digest[:12], os.path.basename(zip_path))


def for_target(doc, rg, prefix):
    return [r for r in doc["releases"] if r.get("resourceGroup") == rg and r.get("prefix") == prefix]


def cmd_archive(a):
    if not os.path.isfile(a.package):
        fail(f"package not found: {a.package}")
    digest = sha256(a.package)
    dest = stored_path(a.releases_dir, digest, a.package)
    if not os.path.exists(dest):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(a.package, dest + ".tmp")
        os.replace(dest + ".tmp", dest)
    print(json.dumps({"stored": dest, "sha256": digest, **describe(a.package)}))


def cmd_record(a):
    doc = load(a.releases_dir)
    digest = sha256(a.package)
    dest = stored_path(a.releases_dir, digest, a.package)
    if not os.path.exists(dest):
        fail(f"{dest} missing: archive the package first")
    entry = {
        "id": max([r.get("id", 0) for r in doc["releases"]] + [0]) + 1,
        "action": a.action,
        "resourceGroup": a.resource_group,
        "prefix": a.prefix,
        "functionApp": a.app,
        "hostName": a.host,
        **describe(a.package),
        "package": os.path.relpath(dest, a.releases_dir),
        "sha256": digest,
        "health": a.health,
        "at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "by": a.by or "",
    }
    if a.rolled_back_from:
        entry["rolledBackFrom"] = a.rolled_back_from
    doc["releases"].append(entry)
    save(a.releases_dir, doc)
    print(json.dumps(entry))


def cmd_current(a):
    rel = for_target(load(a.releases_dir), a.resource_group, a.prefix)
    print(json.dumps(rel[-1]) if rel else "")


def cmd_select(a):
    """The package to roll back to: --to (label, version, git sha or sha256 prefix), else the newest
    healthy release older than the current one with different content."""
    rel = for_target(load(a.releases_dir), a.resource_group, a.prefix)
    if not rel:
        fail(f"no release history for {a.prefix} in {a.resource_group} under {a.releases_dir}")
    current = rel[-1]
    earlier = rel[:-1]
    if a.to:
        t = a.to
        matches = [
            r for r in rel
            if t in (r.get("label"), r.get("version"), os.path.basename(r.get("package", "")))
            or (len(t) >= 7 and (r.get("gitSha", "").startswith(t) or r.get("sha256", "").startswith(t)))
        ]
        if not matches:
            known = ", ".join(sorted({r.get("label", "?") for r in rel}))
            fail(f"no release matches '{t}'; known: {known}")
        target = matches[-1]
        if target.get("sha256") == current.get("sha256"):
            fail(f"'{t}' ({target.get('label')}) is what is deployed now; nothing to roll back")
    else:
        candidates = [r for r in reversed(earlier)
                      if r.get("health") == "ok" and r.get("sha256") != current.get("sha256")]
        if not candidates:
            fail(f"no earlier healthy release than {current.get('label')} in the history; use --to")
        target = candidates[0]
    path = os.path.join(a.releases_dir, target["package"])
    if not os.path.isfile(path):
        fail(f"the package of {target.get('label')} is missing: {path}")
    if sha256(path) != target.get("sha256"):
        fail(f"{path} does not match its recorded sha256; refusing to deploy it")
    print(json.dumps({**target, "path": path, "current": current}))


def cmd_check_health(a):
    try:
        with open(a.body) as f:
            body = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"health answered something that is not JSON ({e})")
    config = body.get("config") or {}
    if config.get("valid") is not True:
        problems = config.get("problems") or []
        lines = [f"  - {p.get('setting')}: {p.get('problem')} Fix: {p.get('fix')}" for p in problems]
        fail("the app's settings are invalid:\n" + "\n".join(lines or ["  (no details)"]))
    if body.get("initError"):
        fail(f"the app failed to initialise: {body['initError']}")
    print(f"{body.get('name', '?')} {body.get('version', '?')}: settings valid, functions {', '.join(body.get('functions', []))}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--releases-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "releases"))
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("archive")
    s.add_argument("--package", required=True)
    s.set_defaults(fn=cmd_archive)
    s = sub.add_parser("record")
    for k in ("--resource-group", "--prefix", "--app", "--host", "--package", "--action", "--health"):
        s.add_argument(k, required=True)
    s.add_argument("--by", default="")
    s.add_argument("--rolled-back-from", default="")
    s.set_defaults(fn=cmd_record)
    for name, fn in (("current", cmd_current), ("select", cmd_select)):
        s = sub.add_parser(name)
        s.add_argument("--resource-group", required=True)
        s.add_argument("--prefix", required=True)
        if name == "select":
            s.add_argument("--to", default="")
        s.set_defaults(fn=fn)
    s = sub.add_parser("check-health")
    s.add_argument("body")
    s.set_defaults(fn=cmd_check_health)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
