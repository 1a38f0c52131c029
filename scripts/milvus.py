#!/usr/bin/env python3
"""A Milvus standalone server for clipsight's tests and benches, without Milvus's Python package.

  milvus.py install         unpacks Milvus 2.3.5 (the only release with a Linux x86_64 build on
                            PyPI, the `milvus` wheel) into .milvus/2.3.5 beside this checkout
  milvus.py run DIR         writes DIR/configs/milvus.yaml with a free loopback port for every
                            listener (gRPC, coordinators, embedded etcd, metrics) — the same
                            ports again when DIR held a server before, so a restarted server
                            is found where it was — prints "grpc PORT" and "metrics PORT" on
                            one line each, then becomes the server (exec: its pid is the
                            server's, so a kill stops it)

The wheel holds the server binary and its libraries xz-compressed and a config template with
`{{ name(type): default }}` placeholders; the embedded etcd does not follow `etcd.endpoints` for
its own listeners, so it gets its own YAML through `etcd.config.path` (see STACK-NOTES, Milvus).
Only the standard library is used, so any python3 runs it.
"""

import json
import lzma
import os
import re
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "2.3.5"
ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("CLIPSIGHT_MILVUS_HOME", ROOT / ".milvus")) / VERSION


def install() -> Path:
    """Downloads the wheel with pip and unpacks the server into HOME (once)."""
    if (HOME / "bin" / "milvus").exists():
        return HOME
    pip = [str(ROOT / ".venv/bin/python"), "-m", "pip"] if (ROOT / ".venv/bin/python").exists() else [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(pip + ["download", "-q", "--disable-pip-version-check", "--no-deps", f"milvus=={VERSION}", "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("milvus-*.whl"))
        staging = HOME.with_name(HOME.name + ".partial")
        (staging / "bin").mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith("milvus/data/bin/") and name.endswith(".lzma"):
                    target = staging / "bin" / Path(name).name[: -len(".lzma")]
                    target.write_bytes(lzma.decompress(zf.read(name)))
                    target.chmod(0o755)
                elif name in ("milvus/data/config.yaml.template", "milvus/data/glog.conf"):
                    (staging / Path(name).name).write_bytes(zf.read(name))
        os.replace(staging, HOME)
    return HOME


def free_ports(n: int) -> list:
    """n distinct free loopback ports (held open together while they are chosen)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


PORT_NAMES = ["proxy_port", "proxy_internal_port", "root_coord_port", "query_coord_port", "query_node_port", "index_coord_port", "index_node_port", "data_coord_port", "data_node_port", "etcd_port"]


def run(data: Path) -> None:
    """Configures a server whose files all live under `data` and execs it."""
    home = install()
    data = data.resolve()
    for sub in ("configs", "logs", "data", "run"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    saved = data / "configs/ports.json"
    if saved.exists():
        ports = json.loads(saved.read_text())
    else:
        ports = dict(zip(PORT_NAMES + ["etcd_peer", "metrics"], free_ports(len(PORT_NAMES) + 2)))
        saved.write_text(json.dumps(ports))
    values = {
        **{k: str(v) for k, v in ports.items()},
        "etcd_log_path": str(data / "logs/etcd.log"),
        "etcd_log_level": "warn",
        "etcd_data_dir": str(data / "data/etcd.data"),
        "local_storage_dir": str(data / "data"),
        "rocksmq_data_dir": str(data / "data/rocksmq"),
        "system_log_path": str(data / "logs"),
    }

    def fill(m):
        name, default = m.group(1), (m.group(3) or "").strip()
        return values.get(name, default)

    config = re.sub(r"\{\{\s*(\w+)(\([a-z]+\))?\s*(?::([^}]*))?\}\}", fill, (home / "config.yaml.template").read_text())
    etcd_yaml = data / "configs/etcd.yaml"
    etcd_yaml.write_text(
        "\n".join(
            [
                f"data-dir: {data / 'data/etcd.data'}",
                f"listen-client-urls: http://127.0.0.1:{ports['etcd_port']}",
                f"advertise-client-urls: http://127.0.0.1:{ports['etcd_port']}",
                f"listen-peer-urls: http://127.0.0.1:{ports['etcd_peer']}",
                f"initial-advertise-peer-urls: http://127.0.0.1:{ports['etcd_peer']}",
                f"initial-cluster: default=http://127.0.0.1:{ports['etcd_peer']}",
                "log-level: warn",
                "",
            ]
        )
    )
    config = config.replace("etcd:\n", f"etcd:\n  config:\n    path: {etcd_yaml}\n", 1)
    (data / "configs/milvus.yaml").write_text(config)
    (data / "configs/glog.conf").write_bytes((home / "glog.conf").read_bytes())
    print(f"grpc {ports['proxy_port']}\nmetrics {ports['metrics']}", flush=True)
    env = dict(os.environ, DEPLOY_MODE="STANDALONE", METRICS_PORT=str(ports["metrics"]), MILVUS_RUN_DIR=str(data / "run"), LD_LIBRARY_PATH=f"{home / 'bin'}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    os.chdir(data)
    log = os.open(data / "logs/milvus.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.execve(str(home / "bin/milvus"), [str(home / "bin/milvus"), "run", "standalone"], env)


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(install())
    elif len(sys.argv) == 3 and sys.argv[1] == "run":
        run(Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
