#!/usr/bin/env python3
"""Lints, renders and strictly validates the Helm chart for several value sets.

Uses helm-python-sdk (Helm's Go SDK through a C ABI, no helm binary) and
kubernetes-validate. Exits non-zero on the first problem.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "esign-gateway"
KUBE_VERSION = "1.31.0"
# Custom resources kubernetes-validate has no schema for; checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}

VALUE_SETS = {
    "default": None,
    "all-on": CHART / "ci" / "all-on-values.yaml",
    "existing-secret": CHART / "ci" / "existing-secret-values.yaml",
}


def fail(message):
    print(f"chart: FAIL: {message}")
    sys.exit(1)


def load_values(path):
    return helm.values_from_yaml(path.read_text()) if path else None


def lint(name, values):
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
    if problems or report.get("errors"):
        fail(f"lint of {name}: {problems or report['errors']}")
    print(f"chart: lint ({name}) clean")


def render(name, values):
    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(values, name="esign", namespace="esign", is_install=True)
    documents = []
    for path, text in sorted(rendered.items()):
        if not path.endswith(".yaml"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                documents.append(document)
    return documents


def validate(name, documents):
    builtin = [d for d in documents if d["kind"] not in CUSTOM_KINDS]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for index, document in enumerate(builtin):
            file = pathlib.Path(tmp) / f"{index:02d}-{document['kind']}.yaml"
            file.write_text(yaml.safe_dump(document))
            files.append(str(file))
        result = subprocess.run(
            ["kubernetes-validate", "--strict", "-k", KUBE_VERSION, *files],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or "ERROR" in result.stdout:
            fail(f"kubernetes-validate ({name}):\n{result.stdout}{result.stderr}")
    for document in documents:
        if document["kind"] == "ServiceMonitor":
            endpoint = document["spec"]["endpoints"][0]
            if document["apiVersion"] != "monitoring.coreos.com/v1" or endpoint["port"] != "metrics":
                fail(f"ServiceMonitor shape ({name}): {document}")
        if document["kind"] == "PrometheusRule":
            groups = document["spec"]["groups"]
            if not groups or not all(g.get("name") and g.get("rules") for g in groups):
                fail(f"PrometheusRule shape ({name}): {document}")
    kinds = sorted(d["kind"] for d in documents)
    print(f"chart: {name} renders {kinds}, valid for Kubernetes {KUBE_VERSION}")


def promql_of(documents):
    """Every PromQL expression of the dashboard and the alert rules."""
    expressions = []
    for document in documents:
        if document["kind"] == "PrometheusRule":
            for group in document["spec"]["groups"]:
                expressions += [rule["expr"] for rule in group["rules"]]
        if document["kind"] == "ConfigMap" and document["metadata"]["name"].endswith("-dashboard"):
            for text in document["data"].values():
                dashboard = json.loads(text)
                for panel in dashboard["panels"]:
                    expressions += [target["expr"] for target in panel["targets"]]
    return expressions


def check_observability(documents):
    """The dashboard is valid JSON for the Grafana sidecar and the rules have
    the PrometheusRule shape, with what an on-call engineer needs."""
    dashboards = [
        d for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")
    ]
    if len(dashboards) != 1:
        fail("all-on: no dashboard ConfigMap")
    dashboard = dashboards[0]
    if dashboard["metadata"]["labels"].get("grafana_dashboard") != "1":
        fail("all-on: the dashboard lacks the sidecar label")
    board = json.loads(dashboard["data"]["esign-gateway.json"])
    titles = {panel["title"] for panel in board["panels"]}
    for wanted in ["RPC rate by method", "Errors by reason", "RPC latency",
                   "Provider latency p99 by provider and operation", "Circuit breakers open",
                   "Shed calls", "Events recorded"]:
        if wanted not in titles:
            fail(f"all-on: the dashboard has no panel {wanted!r}")
    rule = by_kind(documents, "PrometheusRule")
    if rule is None or rule["apiVersion"] != "monitoring.coreos.com/v1":
        fail("all-on: no PrometheusRule")
    alerts = {}
    for group in rule["spec"]["groups"]:
        for item in group["rules"]:
            if not {"alert", "expr", "for", "labels", "annotations"} <= item.keys():
                fail(f"all-on: alert rule incomplete: {item}")
            if item["labels"].get("severity") != "critical" or "summary" not in item["annotations"]:
                fail(f"all-on: alert {item['alert']} lacks severity or summary")
            alerts[item["alert"]] = item["expr"]
    for wanted in ["EsignGatewayBreakerOpen", "EsignGatewayErrorRatioHigh",
                   "EsignGatewayShedding", "EsignGatewayWebhooksRefused"]:
        if wanted not in alerts:
            fail(f"all-on: no alert {wanted}")
    if "> 0.02" not in alerts["EsignGatewayErrorRatioHigh"]:
        fail("all-on: the error ratio value does not reach the rule")
    print(f"chart: dashboard ({len(board['panels'])} panels) and {len(alerts)} alerts render")


def by_kind(documents, kind):
    found = [d for d in documents if d["kind"] == kind]
    return found[0] if found else None


def check_deployment(name, documents, values):
    deployment = by_kind(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    tls = ((values or {}).get("tls") or {}).get("existingSecret")
    if tls:
        # The kubelet's gRPC probe cannot speak TLS: plain HTTP on the admin port.
        if container["livenessProbe"]["httpGet"] != {"path": "/healthz", "port": "metrics"}:
            fail(f"{name}: with TLS, liveness must use the admin /healthz")
        if container["readinessProbe"]["httpGet"] != {"path": "/readyz", "port": "metrics"}:
            fail(f"{name}: with TLS, readiness must use the admin /readyz")
        env = {e["name"]: e.get("value") for e in container["env"]}
        for variable in ["GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "GATEWAY_TLS_CLIENT_CA"]:
            if not (env.get(variable) or "").startswith("/etc/esign-gateway/tls/"):
                fail(f"{name}: {variable} does not point into the TLS secret mount")
        if env.get("GATEWAY_AUTH_TOKENS_FILE") != "/etc/esign-gateway/auth/callers.toml":
            fail(f"{name}: the callers file is not mounted")
    else:
        if container["livenessProbe"]["grpc"] != {"port": 50051, "service": "liveness"}:
            fail(f"{name}: liveness probe is not the gRPC health check")
        if container["readinessProbe"]["grpc"]["service"] != "esign.v1.InvitationService":
            fail(f"{name}: readiness probe is not the service's gRPC health")
    security = container["securityContext"]
    if not (
        security["readOnlyRootFilesystem"]
        and security["allowPrivilegeEscalation"] is False
        and security["capabilities"]["drop"] == ["ALL"]
        and pod["securityContext"]["runAsNonRoot"]
        and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    ):
        fail(f"{name}: security context is not hardened")
    gateway = (values or {}).get("gateway", {})
    drain = gateway.get("drainSeconds", 5) + gateway.get("shutdownGraceSeconds", 20)
    if pod["terminationGracePeriodSeconds"] <= drain:
        fail(f"{name}: termination grace {pod['terminationGracePeriodSeconds']} <= drain {drain}")
    budget = gateway.get("maxInflightBytes", 167772160)
    env = {e["name"]: e.get("value") for e in container["env"]}
    if env.get("GATEWAY_MAX_INFLIGHT_BYTES") != str(budget):
        fail(f"{name}: GATEWAY_MAX_INFLIGHT_BYTES is {env.get('GATEWAY_MAX_INFLIGHT_BYTES')!r}")
    memory = (values or {}).get("memory", {})
    expected = f"{memory.get('baselineMi', 64) + budget // 1048576 + memory.get('headroomMi', 32)}Mi"
    if container["resources"]["limits"]["memory"] != expected:
        fail(f"{name}: memory limit {container['resources']['limits']['memory']} is not {expected}")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    if "checksum/config" not in annotations:
        fail(f"{name}: no config checksum annotation")
    service = by_kind(documents, "Service")
    grpc_port = [p for p in service["spec"]["ports"] if p["name"] == "grpc"][0]
    if grpc_port.get("appProtocol") != "grpc":
        fail(f"{name}: gRPC port lacks appProtocol grpc")
    return deployment


def main():
    rendered = {}
    for name, path in VALUE_SETS.items():
        values = load_values(path)
        lint(name, values)
        documents = render(name, values)
        validate(name, documents)
        check_deployment(name, documents, values)
        rendered[name] = documents

    all_on = {d["kind"] for d in rendered["all-on"]}
    for kind in ["HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PrometheusRule", "ConfigMap", "Secret", "Ingress"]:
        if kind not in all_on:
            fail(f"all-on: {kind} missing")
    check_observability(rendered["all-on"])
    if promql_of(rendered["default"]):
        fail("default: dashboard or rules rendered though off by default")
    # Redis: the URL (it may carry a password) and the CA come from Secrets,
    # and the NetworkPolicy lets the pods reach it.
    deployment = by_kind(rendered["all-on"], "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    if env["GATEWAY_REDIS_URL"].get("valueFrom") != {
        "secretKeyRef": {"name": "esign-redis", "key": "url"}
    }:
        fail(f"all-on: GATEWAY_REDIS_URL is not read from its Secret: {env['GATEWAY_REDIS_URL']}")
    if env["GATEWAY_REDIS_CA_FILE"].get("value") != "/etc/esign-gateway/redis/ca.crt":
        fail("all-on: GATEWAY_REDIS_CA_FILE does not point into the CA mount")
    if env["GATEWAY_CLAIM_LEASE_SECONDS"].get("value") != "20":
        fail("all-on: GATEWAY_CLAIM_LEASE_SECONDS not passed on")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    if volumes.get("redis-ca", {}).get("secret", {}).get("secretName") != "esign-redis":
        fail("all-on: the Redis CA Secret is not mounted")
    egress = by_kind(rendered["all-on"], "NetworkPolicy")["spec"]["egress"]
    if not any(p.get("port") == 6379 for rule in egress for p in rule.get("ports", [])):
        fail("all-on: the NetworkPolicy does not allow Redis")
    print("chart: Redis URL and CA from Secrets, NetworkPolicy egress to Redis")

    # The webhook intake: its own Service port, an Ingress for it alone,
    # and NetworkPolicy ingress to it.
    ingress = by_kind(rendered["all-on"], "Ingress")
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    if [p["backend"]["service"]["port"]["name"] for p in paths] != ["webhooks"]:
        fail(f"all-on: the webhook Ingress reaches more than the intake: {paths}")
    ports = {p["name"] for p in by_kind(rendered["all-on"], "Service")["spec"]["ports"]}
    if "webhooks" not in ports:
        fail("all-on: no webhooks Service port")
    policy_ports = [
        p["port"] for rule in by_kind(rendered["all-on"], "NetworkPolicy")["spec"]["ingress"]
        for p in rule["ports"]
    ]
    if "webhooks" not in policy_ports:
        fail("all-on: the NetworkPolicy does not admit the webhook port")
    print("chart: webhook port, its own Ingress and NetworkPolicy ingress")

    existing = rendered["existing-secret"]
    if by_kind(existing, "Secret"):
        fail("existing-secret: the chart made a Secret anyway")
    env_from = by_kind(existing, "Deployment")["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    if env_from != [{"secretRef": {"name": "esign-provider-credentials"}}]:
        fail(f"existing-secret: envFrom is {env_from}")

    # A changed config must change the pod template, so pods roll.
    values = load_values(VALUE_SETS["all-on"])
    before = by_kind(render("all-on", values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    values["config"] += "\n# changed\n"
    after = by_kind(render("all-on", values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    if before["checksum/config"] == after["checksum/config"]:
        fail("a config change does not change checksum/config")
    print("chart: config changes roll the pods")

    bad = load_values(CHART / "ci" / "bad-values.yaml")
    try:
        helm.Chart.load(str(CHART)).validate_schema(bad)
    except helm.HelmValuesError as error:
        message = str(error)
        for expected in ["replicaCount", "logFormat", "unknownTopLevel"]:
            if expected not in message:
                fail(f"schema error does not name {expected}: {message}")
        print("chart: bad values refused by the schema")
    else:
        fail("bad values were accepted by the schema")
    print("chart: all checks passed")


if __name__ == "__main__":
    main()
