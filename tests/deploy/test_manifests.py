"""Render every kustomize overlay, validate it against the Kubernetes schemas offline, and
check that it matches the code: services, ports, settings, secrets, topics."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from turnout.services import SERVICES
from turnout_common.settings import CommonSettings, KafkaSettings
from turnout_common.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
K8S_VERSION = "1.30.0"
SECRET_NAME = "turnout-secrets"
POD_KINDS = {"Deployment", "Job"}


def _renderer() -> list[str]:
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    pytest.fail("neither `kustomize` nor `kubectl` is installed: needed to render deploy/k8s")


def render(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [*_renderer(), str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(K8S / "overlays" / request.param)


def test_there_are_dev_and_prod_overlays() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


def test_overlay_validates_against_kubernetes_schemas(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay  # the base too: scripts/check_deploy.sh (test below)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validation_rejects_an_unknown_field(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_one_deployment_and_service_per_service(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = overlay
    deployments, services = by_kind(docs, "Deployment"), by_kind(docs, "Service")
    assert set(deployments) == set(SERVICES) == set(services)
    images = set()
    for svc, spec in SERVICES.items():
        pod = pod_spec(deployments[svc])
        (container,) = pod["containers"]
        images.add(container["image"])
        assert container["args"] == ["serve", svc]
        assert container["ports"][0]["containerPort"] == spec.default_port
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        service = services[svc]["spec"]
        assert service["type"] == "ClusterIP"
        assert service["ports"][0]["port"] == spec.default_port
        assert selects({"matchLabels": service["selector"]}, pod_labels(deployments[svc]))
    (image,) = images  # one image for every service
    assert not image.endswith((":latest", "turnout")), f"{name}: pin an image tag, not {image}"


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels


def test_pdbs_cover_every_deployment_and_hpa_scales_the_router(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    deployments = by_kind(docs, "Deployment")
    pdbs = list(by_kind(docs, "PodDisruptionBudget").values())
    for svc, deployment in deployments.items():
        assert any(selects(p["spec"]["selector"], pod_labels(deployment)) for p in pdbs), svc
        assert selects(deployment["spec"]["selector"], pod_labels(deployment))
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "router",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # the HPA owns the router's replica count: re-applying must not reset it
    assert "replicas" not in deployments["router"]["spec"]


def test_migrate_job_runs_turnout_migrate(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    (job,) = by_kind(docs, "Job").values()
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["migrate"]
    assert "TURNOUT_DATABASE_URL" in {e["name"] for e in container["env"]}
    images = {pod_spec(d)["containers"][0]["image"] for d in by_kind(docs, "Deployment").values()}
    assert images == {container["image"]}


def test_secrets_are_referenced_never_rendered(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    assert not [d for d in docs if d["kind"] == "Secret"]
    example = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    assert example["metadata"]["name"] == SECRET_NAME
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in base["resources"]
    refs: dict[str, set[str]] = {}
    for doc in docs:
        if doc["kind"] not in POD_KINDS:
            continue
        for container in pod_spec(doc)["containers"]:
            for env in container.get("env", []):
                if ref := env.get("valueFrom", {}).get("secretKeyRef"):
                    assert ref["name"] == SECRET_NAME
                    assert env["name"] == ref["key"]
                    refs.setdefault(doc["metadata"]["name"], set()).add(ref["key"])
    assert set().union(*refs.values()) == set(example["stringData"])
    assert refs["config-api"] == set(example["stringData"])
    assert "TURNOUT_ENCRYPTION_KEYS" in refs["router"]
    assert "TURNOUT_ENCRYPTION_KEYS" not in refs["metering"]  # least privilege


def test_configmap_holds_valid_turnout_settings(
    overlay: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, docs = overlay
    (config,) = by_kind(docs, "ConfigMap").values()
    data: dict[str, str] = config["data"]
    known = {f"TURNOUT_{f.upper()}" for f in CommonSettings.model_fields} | {
        f"TURNOUT_KAFKA_{f.upper()}" for f in KafkaSettings.model_fields
    }
    # the router's own that an overlay sets for every router pod (the others ignore them)
    known |= {"TURNOUT_REDIS_URL"}
    assert set(data) <= known, f"unknown settings: {set(data) - known}"
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = CommonSettings()  # the values parse as the services will parse them
    assert settings.host == "0.0.0.0"
    for spec in SERVICES.values():
        assert getattr(settings, spec.port_setting) == spec.default_port
    assert settings.config_url == f"http://config-api:{SERVICES['config-api'].default_port}"
    deployments = by_kind(docs, "Deployment")
    for deployment in deployments.values():
        (container,) = pod_spec(deployment)["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]


def test_only_the_router_accepts_traffic_from_outside_the_namespace(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    policies = list(by_kind(docs, "NetworkPolicy").values())
    for svc, deployment in by_kind(docs, "Deployment").items():
        labels = pod_labels(deployment)
        applying = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert any(
            p["spec"].get("policyTypes") == ["Ingress"] and not p["spec"].get("ingress")
            for p in applying
        ), f"{svc}: no default-deny ingress policy"
        open_rules = [
            rule
            for p in applying
            for rule in p["spec"].get("ingress", [])
            if not rule.get("from")
            or any("ipBlock" in peer for peer in rule["from"])
            or any(peer.get("namespaceSelector") == {} for peer in rule["from"])
        ]
        if svc == "router":
            assert open_rules, "the router must be reachable from outside the namespace"
        else:
            assert not open_rules, f"{svc} is reachable from outside the namespace"
        port = SERVICES[svc].default_port
        peers = [
            peer
            for p in applying
            for rule in p["spec"].get("ingress", [])
            if any(pt["port"] == port for pt in rule.get("ports", []))
            for peer in rule.get("from", [{}])
        ]
        if svc == "config-api":  # the other services fetch the snapshot from it
            assert {"podSelector": {}} in peers


def test_examples_declare_every_topic_like_the_code() -> None:
    docs = render(K8S / "examples")
    kafka_topics = {d["spec"]["topicName"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    assert set(kafka_topics) == {t.name for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        spec = kafka_topics[topic.name]
        assert spec["partitions"] == topic.partitions, topic.name
        policy = spec["config"]["cleanup.policy"]
        assert policy == ("compact" if topic.compacted else "delete"), topic.name
    (kafka,) = by_kind(docs, "Kafka").values()
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:9092"
    config = (K8S / "base" / "config.env").read_text()
    assert f"TURNOUT_KAFKA_BOOTSTRAP={bootstrap}" in config.splitlines()
    assert by_kind(docs, "Cluster"), "CloudNativePG Cluster example missing"


def test_dockerfile_layers_dependencies_before_source() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    deps = next(i for i, line in enumerate(lines) if "--no-install-workspace" in line)
    first_source = next(i for i, line in enumerate(lines) if line.startswith("COPY src"))
    assert deps < first_source
    members = sorted(p.parent.relative_to(ROOT) for p in ROOT.glob("*/*/pyproject.toml"))
    assert members, "no workspace members found"
    for member in members:  # every member's pyproject is in the dependency layer
        copy = next(
            (i for i, line in enumerate(lines) if line.startswith(f"COPY {member}/pyproject.toml")),
            None,
        )
        assert copy is not None and copy < deps, f"Dockerfile does not copy {member}/pyproject.toml"
    assert "uv sync --locked --no-install-workspace --no-dev" in text
    assert re.search(r"^USER (?!0|root)\S+", text, re.M)
    assert 'ENTRYPOINT ["turnout"]' in text
    assert 'CMD ["serve", "router"]' in text
    exposed = re.search(r"^EXPOSE (.+)$", text, re.M)
    assert exposed is not None
    assert {int(p) for p in exposed.group(1).split()} == {s.default_port for s in SERVICES.values()}
    assert "HEALTHCHECK" not in text


def test_check_deploy_script_passes() -> None:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check_deploy.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "K8S_VERSIONS": K8S_VERSION},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "check_deploy: ok" in out.stdout
