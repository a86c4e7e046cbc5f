#!/usr/bin/env python3
"""Offline check of deploy/k8s/*.yaml (no cluster, no registry): docs/deploy.md, "What was checked".

  deploy/k8s/check-manifests.py [FILE.yaml ...]        (default: every .yaml next to this script)

1. Schema: every field of every object is looked up in the typed models of Debian's python3-kubernetes (the
   Kubernetes API as of its version: 22.6.0 = Kubernetes 1.22). An unknown field (a typo, a field in the wrong
   place) or a value of the wrong type is an error; required fields are checked by building the models. Fields newer
   than that API are listed in NEWER with the release that brought them, reported, and not looked into.
2. What these manifests promise (docs/deploy.md): probes on /ready and /health, a read-only root file system and a
   non-root user, the API key from a Secret volume at the path `serve` reads, selectors that match, the Job's
   `--shard $(JOB_COMPLETION_INDEX)/N` with N = completions, restartPolicy Never.

Exits 1 on any error. `kubectl apply --dry-run=client` needs an API server's discovery and does not run offline.
"""
import glob, os, re, sys

import yaml
import kubernetes
from kubernetes import client

KINDS = {("apps/v1", "Deployment"): "V1Deployment", ("v1", "Service"): "V1Service", ("batch/v1", "Job"): "V1Job"}
# (model, field) -> the Kubernetes release that added it (after the models' API version).
NEWER = {
    ("V1JobSpec", "backoffLimitPerIndex"): "Kubernetes 1.28 (alpha), 1.29 (beta, on by default), 1.33 (GA)",
    ("V1JobSpec", "podFailurePolicy"): "Kubernetes 1.25 (alpha), 1.26 (beta), 1.31 (GA); FailIndex needs backoffLimitPerIndex",
}
PRIMITIVES = {"int": int, "str": str, "bool": bool, "float": (int, float)}

errors, notes = [], []


def check(value, typ, path):
    """Checks value against a python3-kubernetes type name ('V1PodSpec', 'list[V1Container]', 'int', ...)."""
    if value is None:
        return
    m = re.fullmatch(r"list\[(.+)\]|dict\(str, (.+)\)", typ)
    if m:
        is_list = m.group(1) is not None
        if not isinstance(value, list if is_list else dict):
            errors.append(f"{path}: expected a {'list' if is_list else 'map'} ({typ}), got {type(value).__name__}")
            return
        for k, v in (enumerate(value) if is_list else value.items()):
            check(v, m.group(1) or m.group(2), f"{path}[{k}]" if is_list else f"{path}.{k}")
        return
    if typ == "object":  # IntOrString, Quantity, free-form
        return
    if typ in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[typ]) and not (typ == "int" and isinstance(value, bool))
        if not ok:
            errors.append(f"{path}: expected {typ}, got {type(value).__name__} {value!r}")
        return
    if typ == "datetime":
        return
    model = getattr(client, typ)
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({typ}), got {type(value).__name__}")
        return
    by_json = {j: a for a, j in model.attribute_map.items()}
    for key, v in value.items():
        if key in by_json:
            check(v, model.openapi_types[by_json[key]], f"{path}.{key}")
        elif (typ, key) in NEWER:
            notes.append(f"{path}.{key}: newer than the models' API ({NEWER[(typ, key)]}); not checked here")
        else:
            errors.append(f"{path}.{key}: no such field in {typ}")


def strip_newer(value, typ):
    """The object without the NEWER fields, for building the models (which would reject them)."""
    if not isinstance(value, dict) or not hasattr(client, typ):
        m = re.fullmatch(r"list\[(.+)\]", typ)
        if m and isinstance(value, list):
            return [strip_newer(v, m.group(1)) for v in value]
        return value
    model = getattr(client, typ)
    by_json = {j: a for a, j in model.attribute_map.items()}
    return {k: strip_newer(v, model.openapi_types[by_json[k]]) for k, v in value.items() if k in by_json}


def build(doc, typ, where):
    """Builds the typed model: the constructors raise on a missing required field."""
    api = client.ApiClient()
    try:
        api._ApiClient__deserialize(strip_newer(doc, typ), typ)
    except (ValueError, TypeError) as e:
        errors.append(f"{where}: {e}")


def pod_checks(name, pod, labels):
    spec = pod["spec"]
    sc = spec.get("securityContext", {})
    if not sc.get("runAsNonRoot") or not sc.get("runAsUser"):
        errors.append(f"{name}: the pod must run as a non-root user (securityContext.runAsNonRoot, runAsUser)")
    if labels is not None and any(pod["metadata"].get("labels", {}).get(k) != v for k, v in labels.items()):
        errors.append(f"{name}: the selector {labels} does not match the pod template's labels")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec["containers"]:
        csc = c.get("securityContext", {})
        if not csc.get("readOnlyRootFilesystem"):
            errors.append(f"{name}/{c['name']}: readOnlyRootFilesystem must be true")
        if csc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{name}/{c['name']}: allowPrivilegeEscalation must be false")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        for m in mounts.values():
            if m["name"] not in volumes:
                errors.append(f"{name}/{c['name']}: volumeMount {m['name']} has no volume")
        if "/tmp" not in mounts:
            errors.append(f"{name}/{c['name']}: /tmp must be a volume (the root file system is read-only)")
        if not c.get("resources", {}).get("requests", {}).get("memory"):
            errors.append(f"{name}/{c['name']}: no memory request")
    return volumes


def deployment_checks(d):
    name = f"Deployment/{d['metadata']['name']}"
    pod = d["spec"]["template"]
    volumes = pod_checks(name, pod, d["spec"]["selector"]["matchLabels"])
    c = pod["spec"]["containers"][0]
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/ready":
        errors.append(f"{name}: readinessProbe must GET /ready")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/health":
        errors.append(f"{name}: livenessProbe must GET /health")
    args = c.get("args", [])
    if "--api-key-file" not in args:
        errors.append(f"{name}: serve needs --api-key-file (a non-loopback address needs an API key)")
    else:
        key = args[args.index("--api-key-file") + 1]
        mount = next((m for m in c["volumeMounts"] if key.startswith(m["mountPath"].rstrip("/") + "/")), None)
        if mount is None or "secret" not in volumes.get(mount["name"], {}):
            errors.append(f"{name}: --api-key-file {key} is not on a Secret volume")
    return {p["name"]: p["containerPort"] for p in c.get("ports", [])}, pod["metadata"]["labels"]


def service_checks(s, deployments):
    name = f"Service/{s['metadata']['name']}"
    sel = s["spec"].get("selector", {})
    match = [(ports, labels) for ports, labels in deployments if all(labels.get(k) == v for k, v in sel.items())]
    if not match:
        errors.append(f"{name}: its selector {sel} matches no Deployment here")
    for p in s["spec"]["ports"]:
        t = p.get("targetPort")
        if isinstance(t, str) and not any(t in ports for ports, _ in match):
            errors.append(f"{name}: targetPort {t!r} is no named port of the pods it selects")


def job_checks(j):
    name = f"Job/{j['metadata']['name']}"
    spec = j["spec"]
    pod_checks(name, spec["template"], None)
    if spec.get("completionMode") != "Indexed":
        errors.append(f"{name}: completionMode must be Indexed")
    if spec["template"]["spec"].get("restartPolicy") != "Never":
        errors.append(f"{name}: restartPolicy must be Never (backoffLimitPerIndex needs it)")
    if "backoffLimitPerIndex" not in spec:
        errors.append(f"{name}: no backoffLimitPerIndex")
    args = " ".join(spec["template"]["spec"]["containers"][0].get("args", []))
    m = re.search(r"--shard \$\(JOB_COMPLETION_INDEX\)/(\d+)", args)
    if not m:
        errors.append(f"{name}: args must contain --shard $(JOB_COMPLETION_INDEX)/N")
    elif int(m.group(1)) != spec.get("completions"):
        errors.append(f"{name}: --shard .../{m.group(1)} differs from completions {spec.get('completions')}")


def main(files):
    here = os.path.dirname(os.path.abspath(__file__))
    files = files or sorted(glob.glob(os.path.join(here, "*.yaml")))
    docs = []
    for f in files:
        with open(f) as fh:
            for i, d in enumerate(yaml.safe_load_all(fh)):
                if d:
                    docs.append((f"{os.path.basename(f)}#{i}", d))
    deployments = []
    for where, d in docs:
        typ = KINDS.get((d.get("apiVersion"), d.get("kind")))
        if typ is None:
            errors.append(f"{where}: {d.get('apiVersion')} {d.get('kind')} is not one of {sorted(KINDS)}")
            continue
        check(d, typ, f"{where} {d['kind']}")
        build(d, typ, f"{where} {d['kind']}")
        if d["kind"] == "Deployment":
            deployments.append(deployment_checks(d))
        elif d["kind"] == "Job":
            job_checks(d)
    for where, d in docs:
        if d.get("kind") == "Service":
            service_checks(d, deployments)
    print(f"check-manifests: {len(docs)} objects in {len(files)} files, schema of python3-kubernetes {kubernetes.__version__}")
    for n in notes:
        print(f"  note: {n}")
    for e in errors:
        print(f"  ERROR: {e}")
    print("check-manifests: " + ("FAILED" if errors else "OK"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
