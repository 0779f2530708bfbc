//! The Kubernetes base in `deploy/kubernetes/`, checked without a cluster:
//!
//! - every manifest, and the ConfigMap that kustomize generates, is valid against the
//!   Kubernetes schemas (`kubernetes-validate --strict` from PyPI, installed into
//!   `target/kubernetes-validate-venv`); with kubectl on the machine, its `kustomize`
//!   rendering of the whole base is validated too. The schemas have no custom resources:
//!   the ServiceMonitor and the PrometheusRule get a structural check here instead, and
//!   the PrometheusRule must carry exactly the groups of `conf/prometheus/`;
//! - the manifests agree with the config they mount: it passes `mcp-edge check` with the
//!   pod's environment and nothing else; ports, probe paths, the grace period against
//!   `shutdown_delay` + `grace_period_seconds`, the readiness probe against the delay, the
//!   affinity key's Secret, the mount path, the writable `/tmp`.

mod support;

use serde_yaml::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::edge::binary;
use support::python::{ensure_venv, workspace};

/// The runtimes' stop after the grace period (`graceful_shutdown_timeout_seconds`).
const RUNTIME_SHUTDOWN_SECONDS: u64 = 5;
/// The kinds the Kubernetes schemas do not know (Prometheus Operator's).
const CUSTOM_KINDS: [&str; 2] = ["ServiceMonitor", "PrometheusRule"];

fn base_dir() -> PathBuf {
    workspace().join("deploy/kubernetes")
}

fn yaml(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|value| !value.is_null())
        .collect()
}

use serde::Deserialize;

fn string(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value:?}"))
}

/// The base's kustomization, its resources by kind (`Kind/name`), and its config file.
struct Base {
    kustomization: Value,
    resources: BTreeMap<String, Value>,
    files: Vec<PathBuf>,
    config_file: PathBuf,
}

impl Base {
    fn load() -> Base {
        let kustomization = yaml(&base_dir().join("kustomization.yaml")).remove(0);
        let files: Vec<PathBuf> = kustomization["resources"]
            .as_sequence()
            .expect("resources")
            .iter()
            .map(|file| base_dir().join(string(file)))
            .collect();
        let mut resources = BTreeMap::new();
        for file in &files {
            for resource in yaml(file) {
                let key = format!(
                    "{}/{}",
                    string(&resource["kind"]),
                    string(&resource["metadata"]["name"])
                );
                assert!(
                    resources.insert(key.clone(), resource).is_none(),
                    "{key} twice"
                );
            }
        }
        let generator = &kustomization["configMapGenerator"][0];
        let config_file = base_dir().join(string(&generator["files"][0]));
        Base {
            kustomization,
            resources,
            files,
            config_file,
        }
    }

    fn get(&self, key: &str) -> &Value {
        self.resources
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in the base"))
    }

    fn container(&self) -> &Value {
        &self.get("Deployment/mcp-edge")["spec"]["template"]["spec"]["containers"][0]
    }

    /// The ConfigMap kustomize generates from `configMapGenerator` (without its hash).
    fn config_map(&self) -> String {
        let generator = &self.kustomization["configMapGenerator"][0];
        let name = self.config_file.file_name().unwrap().to_str().unwrap();
        let content = fs::read_to_string(&self.config_file).unwrap();
        let indented: String = content
            .lines()
            .map(|line| format!("    {line}\n"))
            .collect();
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\ndata:\n  {name}: |\n{indented}",
            string(&generator["name"])
        )
    }
}

/// `target/kubernetes-validate-venv/bin/kubernetes-validate`, installed on first use from
/// `tests/python/requirements-kubernetes.txt`.
fn kubernetes_validate() -> PathBuf {
    let python = ensure_venv("kubernetes-validate-venv", "requirements-kubernetes.txt");
    python.with_file_name("kubernetes-validate")
}

/// Validates `files` strictly; only the custom kinds may lack a schema.
fn validate(files: &[PathBuf]) -> String {
    let output = Command::new(kubernetes_validate())
        .arg("--strict")
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "kubernetes-validate:\n{report}");
    for line in report.lines().filter(|line| !line.starts_with("INFO")) {
        assert!(
            CUSTOM_KINDS
                .iter()
                .any(|kind| line.contains(&format!("Couldn't find schema for kind {kind} "))),
            "kubernetes-validate: {line}\n{report}"
        );
    }
    report
}

#[test]
fn every_manifest_is_valid_against_the_kubernetes_schemas() {
    let base = Base::load();
    // Every manifest of the directory is in the base.
    for entry in fs::read_dir(base_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.ends_with(".yaml") && name != "kustomization.yaml" && path != base.config_file {
            assert!(
                base.files.contains(&path),
                "{name} is not in kustomization.yaml"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config_map = dir.path().join("configmap.yaml");
    fs::write(&config_map, base.config_map()).unwrap();
    let mut files = base.files.clone();
    files.push(config_map);
    let report = validate(&files);
    let passed = report
        .lines()
        .filter(|line| line.contains(" passed "))
        .count();
    println!("kubernetes-validate --strict: {passed} resources passed; custom kinds checked structurally: {CUSTOM_KINDS:?}");
    assert_eq!(passed, base.resources.len() + 1 - CUSTOM_KINDS.len());

    // kubectl's kustomize, where it is installed: the rendered base, hashed names and all.
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok()
    {
        let rendered = Command::new("kubectl")
            .arg("kustomize")
            .arg(base_dir())
            .output()
            .expect("kubectl kustomize");
        assert!(rendered.status.success(), "{rendered:?}");
        let file = dir.path().join("rendered.yaml");
        fs::write(&file, &rendered.stdout).unwrap();
        let report = validate(&[file]);
        let passed = report
            .lines()
            .filter(|line| line.contains(" passed "))
            .count();
        println!("kubectl kustomize: {passed} rendered resources passed");
        assert_eq!(passed, base.resources.len() + 1 - CUSTOM_KINDS.len());
    } else {
        println!("kubectl is not installed: the kustomize rendering was not validated");
    }
}

#[test]
fn the_custom_resources_are_structurally_sound() {
    let base = Base::load();
    let admin_service = base.get("Service/mcp-edge-admin");
    let monitor = base.get("ServiceMonitor/mcp-edge");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    for (label, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(
            &admin_service["metadata"]["labels"][label], value,
            "{label:?}"
        );
    }
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["port"], admin_service["spec"]["ports"][0]["name"]);

    let rule = base.get("PrometheusRule/mcp-edge");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let rules_file = workspace().join("conf/prometheus/mcp-edge.rules.yml");
    let source = yaml(&rules_file).remove(0);
    assert_eq!(
        rule["spec"]["groups"],
        source["groups"],
        "prometheusrule.yaml differs from {}: run deploy/kubernetes/prometheusrule.sh",
        rules_file.display()
    );
    for group in rule["spec"]["groups"].as_sequence().unwrap() {
        assert!(group["name"].is_string());
        for alert in group["rules"].as_sequence().unwrap() {
            assert!(
                alert["alert"].is_string() && alert["expr"].is_string(),
                "{alert:?}"
            );
        }
    }
}

/// `text` with `${NAME}` and `${NAME:-default}` replaced from `env`, as mcp-edge expands
/// its file; panics naming a variable the pod does not set.
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let inner = &rest[start + 2..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let value = env.get(name).map(String::as_str).or(default);
        out.push_str(value.unwrap_or_else(|| {
            panic!("the config reads ${{{name}}}, which the Deployment does not set")
        }));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The container's environment, as the pod would see it: literal values, the Secret's
/// values for `secretKeyRef`, and a pod address for the downward API.
fn pod_env(base: &Base) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for variable in base.container()["env"].as_sequence().unwrap() {
        let name = string(&variable["name"]).to_owned();
        let value = if let Some(value) = variable["value"].as_str() {
            value.to_owned()
        } else if let Some(secret) = variable["valueFrom"]["secretKeyRef"].as_mapping() {
            let secret_name = string(&secret[&Value::from("name")]);
            let key = &secret[&Value::from("key")];
            let stored = &base.get(&format!("Secret/{secret_name}"))["stringData"][key];
            assert!(stored.is_string(), "Secret {secret_name} has no {key:?}");
            string(stored).to_owned()
        } else if variable["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP" {
            "10.244.1.7".to_owned()
        } else {
            panic!("an env entry this test cannot resolve: {variable:?}")
        };
        env.insert(name, value);
    }
    env
}

fn port_of(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|port| port["name"] == name)
        .and_then(|port| port["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port {name}"))
}

#[test]
fn the_manifests_agree_with_the_config_they_mount() {
    let base = Base::load();
    let container = base.container();
    let pod = &base.get("Deployment/mcp-edge")["spec"]["template"]["spec"];
    let env = pod_env(&base);
    let raw = fs::read_to_string(&base.config_file).unwrap();
    let expanded = expand(&raw, &env);

    // The real check, with the pod's environment and nothing else.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcp-edge.yaml");
    fs::write(&file, &raw).unwrap();
    let check = Command::new(binary())
        .arg("check")
        .arg("-c")
        .arg(&file)
        .env_clear()
        .envs(&env)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let config = mcp_edge::config::load_str(&base.config_file, &expanded)
        .unwrap_or_else(|errors| panic!("{errors}"))
        .config;

    // The config is mounted where the container reads it.
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|mount| mount["name"] == "config")
        .expect("the config mount");
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|volume| volume["name"] == "config")
        .expect("the config volume");
    assert_eq!(
        volume["configMap"]["name"],
        base.kustomization["configMapGenerator"][0]["name"]
    );
    let path = format!(
        "{}/{}",
        string(&mount["mountPath"]),
        base.config_file.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(container["args"][1], path.as_str(), "-c {path}");

    // Ports: the listener is the `http` port the Service targets; the admin listener, on
    // the pod address, is the `admin` port of the probes, the metrics and the policy.
    let listen_port: u64 = config.listeners[0]
        .address
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(port_of(container, "http"), listen_port);
    let service = base.get("Service/mcp-edge");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let admin = config.admin.as_ref().expect("an admin listener");
    assert!(admin.allow_non_loopback);
    assert!(
        raw.contains("address: \"${POD_IP}:"),
        "the admin listens on the pod address"
    );
    assert_eq!(env["POD_IP"], "10.244.1.7");
    let admin_port: u64 = admin.address.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(port_of(container, "admin"), admin_port);
    assert_eq!(
        base.get("Service/mcp-edge-admin")["spec"]["ports"][0]["targetPort"],
        "admin"
    );
    let policy = &base.get("NetworkPolicy/mcp-edge")["spec"]["ingress"];
    let admin_rule = policy
        .as_sequence()
        .unwrap()
        .iter()
        .find(|rule| rule["ports"][0]["port"] == "admin")
        .expect("a rule for the admin port");
    assert!(
        admin_rule["from"].is_sequence(),
        "the admin port is limited to some peers"
    );
    for rule in policy.as_sequence().unwrap() {
        if rule["from"].is_null() {
            assert_eq!(
                rule["ports"][0]["port"], "http",
                "only the proxy port is open"
            );
        }
    }

    // Probes: readiness on /readyz, liveness on /healthz, both on the admin port.
    for (probe, path) in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "admin", "{probe}");
    }

    // The stop: the kubelet waits for the delay, the drain and the runtimes' stop; the
    // readiness probe sees the 503 well within the delay.
    let delay = config.server.shutdown_delay.or_zero().as_secs();
    let grace = config.server.grace_period_seconds.or_zero().as_secs();
    let termination = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let needed = delay + grace + RUNTIME_SHUTDOWN_SECONDS;
    println!(
        "terminationGracePeriodSeconds {termination} >= shutdown_delay {delay} + \
         grace_period_seconds {grace} + runtime shutdown {RUNTIME_SHUTDOWN_SECONDS} = {needed}"
    );
    assert!(termination >= needed, "{termination} < {needed}");
    assert!(delay > 0, "a Kubernetes pod needs a shutdown delay");
    let readiness = &container["readinessProbe"];
    let noticed = readiness["periodSeconds"].as_u64().unwrap()
        * readiness["failureThreshold"].as_u64().unwrap();
    assert!(
        noticed < delay,
        "readiness drops after {noticed} s, the delay is {delay} s"
    );

    // The affinity key comes from the Secret, by the variable the config reads.
    let affinity = &yaml(&base.config_file)[0]["upstreams"]["mcp"]["affinity"];
    let keys: Vec<&str> = match affinity["keys"].as_sequence() {
        Some(keys) => keys.iter().map(string).collect(),
        None => vec![string(&affinity["key"])],
    };
    for key in keys {
        let variable = key
            .strip_prefix("${")
            .and_then(|key| key.strip_suffix('}'))
            .unwrap_or_else(|| panic!("the affinity key `{key}` is not a ${{VAR}}"));
        let entry = container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|entry| entry["name"] == variable)
            .unwrap_or_else(|| panic!("the Deployment does not set {variable}"));
        let secret = &entry["valueFrom"]["secretKeyRef"];
        assert!(secret.is_mapping(), "{variable} is not read from a Secret");
        assert_eq!(
            base.get(&format!("Secret/{}", string(&secret["name"])))["kind"],
            "Secret"
        );
    }

    // Non-root, read-only root, no capabilities; the writable files live in /tmp.
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    assert!(container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|mount| mount["mountPath"] == "/tmp"));
    assert!(config.server.pid_file.starts_with("/tmp"));
    assert!(config.server.upgrade_sock.starts_with("/tmp"));
    assert!(config.server.container);
    assert_eq!(
        env.get("MCP_EDGE_IN_CONTAINER").map(String::as_str),
        Some("1")
    );

    // The Service, the budget and the autoscaler select the Deployment's pods.
    let labels = &base.get("Deployment/mcp-edge")["spec"]["template"]["metadata"]["labels"];
    for (kind, selector) in [
        ("Service/mcp-edge", &service["spec"]["selector"]),
        (
            "PodDisruptionBudget/mcp-edge",
            &base.get("PodDisruptionBudget/mcp-edge")["spec"]["selector"]["matchLabels"],
        ),
    ] {
        for (label, value) in selector.as_mapping().unwrap() {
            assert_eq!(&labels[label], value, "{kind} selects {label:?}");
        }
    }
    let target = &base.get("HorizontalPodAutoscaler/mcp-edge")["spec"]["scaleTargetRef"];
    assert_eq!(target["kind"], "Deployment");
    assert_eq!(target["name"], "mcp-edge");
}
