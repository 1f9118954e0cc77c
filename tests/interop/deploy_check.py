"""Checks deploy/ (argv[1]) as the tools that read it would: parses every YAML
file with PyYAML, and asserts what the manifests must say (3 replicas, gRPC
readiness and liveness probes, the database URL and password from the Secret,
a termination grace above the drain delay and the shutdown grace, a Service on
the pods' port; PostgreSQL with a health check before the compose replicas).

Prints, as JSON, every healthweb flag and HEALTHWEB_* variable they use and the
ConfigMap's healthweb.toml, for the Rust test to check against the real binary.
Exits 1 with the reason when an assertion fails.
"""

import json
import pathlib
import sys

import yaml


def seconds(text):
    assert text.endswith("s") and text[:-1].isdigit(), f"a duration in seconds: {text!r}"
    return int(text[:-1])


def main():
    root = pathlib.Path(sys.argv[1])
    docs = list(yaml.safe_load_all((root / "kubernetes/healthweb.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in docs}
    secret = yaml.safe_load((root / "kubernetes/secret.example.yaml").read_text())
    deployment, service = kinds["Deployment"], kinds["Service"]

    spec = deployment["spec"]
    assert spec["replicas"] == 3, "three replicas"
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] == labels
    (container,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["service"] == "", f"{probe} asks the pod itself"
    env = {e["name"]: e for e in container["env"]}
    for name, key in (("HEALTHWEB_HISTORY", "url"), ("HEALTHWEB_HISTORY_PASSWORD", "password")):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] == key, name
        assert key in secret["stringData"], f"the Secret has {key}"
    assert secret["stringData"]["url"].startswith("postgres://")
    assert env["HEALTHWEB_REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    drain = seconds(env["HEALTHWEB_DRAIN_DELAY"]["value"])
    grace = seconds(env["HEALTHWEB_SHUTDOWN_GRACE"]["value"])
    assert drain > 0, "a drain delay"
    assert pod["terminationGracePeriodSeconds"] > drain + grace
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] in ports.values()
    assert service["spec"]["selector"] == labels
    assert all(p["targetPort"] in ports for p in service["spec"]["ports"])

    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services = compose["services"]
    postgres = services["postgres"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    replicas = [s for name, s in services.items() if name.startswith("healthweb")]
    assert len(replicas) == 3, "three replicas"
    args, names = list(container.get("args", [])), set(env)
    for replica in replicas:
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert replica["environment"]["HEALTHWEB_HISTORY"].startswith("postgres://")
        args += replica["command"]
        names |= set(replica["environment"])
    for secret_file in compose["secrets"].values():
        assert (root / secret_file["file"]).exists(), secret_file
    print(json.dumps({
        "args": [a for a in args if a.startswith("--")],
        "env": sorted(n for n in names if n.startswith("HEALTHWEB_")),
        "configmap": kinds["ConfigMap"]["data"]["healthweb.toml"],
    }))


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, KeyError, yaml.YAMLError) as err:
        print(f"deploy/ is wrong: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
