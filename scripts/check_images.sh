#!/usr/bin/env bash
# Start the built images and check them; writes bench/results/images/<UTC date>_<commit>.json.
#
#   scripts/check_images.sh            (after scripts/build_images.sh or `make images`)
#
# Server image: its entrypoint must refuse 0.0.0.0 without a token; run with a token on a free loopback port, it
# must answer /healthz and /docs (and / with 200, or 404 while the dashboard does not exist), refuse a measurement
# without the token (401) and measure one block with it, as a non-root user; then it is stopped. Trainer image: its
# entrypoint runs `nas search digits --lut <the shipped 32 px table> ...` and must write a network within the limit.
# The images are started with `buildah from` + `buildah run --isolation chroot` (podman run fails in some
# sandboxes; buildah run shares the host's network, so the server answers on 127.0.0.1), or `docker run` where a
# Docker engine answers. Environment: SERVER_IMAGE, TRAINER_IMAGE, ENGINE=docker|buildah, HEALTH_TIMEOUT_S (300).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SERVER_IMAGE=${SERVER_IMAGE:-localhost/hardcore-nas/latency-server:latest}
export TRAINER_IMAGE=${TRAINER_IMAGE:-localhost/hardcore-nas/trainer:latest}
if [ -z "${ENGINE:-}" ]; then
    if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=buildah; fi
fi
export ENGINE
case "${1:-}" in -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
exec python3 - "$0" "$@" <<'PY'
import datetime, json, os, platform, secrets, signal, socket, subprocess, sys, time, urllib.error, urllib.request
from pathlib import Path

ENGINE, SERVER, TRAINER = os.environ["ENGINE"], os.environ["SERVER_IMAGE"], os.environ["TRAINER_IMAGE"]
HEALTH_TIMEOUT_S = float(os.environ.get("HEALTH_TIMEOUT_S", "300"))
LUT = "/opt/hardcore-nas/luts/lut_onnxruntime_32.json"
checks: list[dict] = []


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def check(name: str, ok: bool, detail: str = "") -> bool:
    checks.append({"check": name, "passed": bool(ok), "detail": detail})
    print(f"{'PASS' if ok else 'FAIL'}  {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def sh(*cmd: str, timeout: float = 120, check_rc: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check_rc and proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def image_config(image: str) -> dict:
    if ENGINE == "docker":
        return json.loads(sh("docker", "image", "inspect", image).stdout)[0]["Config"]
    return json.loads(sh("buildah", "inspect", "--type", "image", image).stdout)["Docker"]["config"]


def image_size(image: str) -> int:
    if ENGINE == "docker":
        return int(sh("docker", "image", "inspect", "--format", "{{.Size}}", image).stdout)
    return int(sh("podman", "image", "inspect", "--format", "{{.Size}}", image).stdout)


class Container:
    """One started image: a buildah working container (run commands in it), or `docker run` per command."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.name = sh("buildah", "from", image).stdout.strip() if ENGINE == "buildah" else None

    def command(self, argv: list[str], env: dict[str, str]) -> list[str]:
        flags = [x for k, v in env.items() for x in ("--env", f"{k}={v}")]
        if ENGINE == "docker":
            return ["docker", "run", "--rm", "--network", "host", *flags, "--entrypoint", argv[0], self.image, *argv[1:]]
        return ["buildah", "run", "--isolation", "chroot", *flags, self.name, "--", *argv]

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return sh(*self.command(argv, env or {}), timeout=timeout, check_rc=False)

    def remove(self) -> None:
        if self.name:
            sh("buildah", "rm", self.name, check_rc=False)


def http(method: str, url: str, body: dict | None = None, token: str | None = None, timeout: float = 10):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError as exc:
        return None, str(exc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_pid(root: int) -> int | None:
    """The `latency-server serve` process among the descendants of ``root`` (the top-most one)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    queue = [root]
    while queue:  # breadth first: a parent before its children (the measurement worker)
        pid = queue.pop(0)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            cmdline = []
        if pid != root and b"python" in cmdline[0] and any(a.endswith(b"latency-server") for a in cmdline[1:2]) and b"serve" in cmdline:
            return pid
        queue.extend(children.get(pid, []))
    return None


def check_server() -> None:
    config = image_config(SERVER)
    entry = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    env = dict(e.split("=", 1) for e in config.get("Env") or [])
    check("server: entrypoint is `latency-server serve`", entry[:2] == ["latency-server", "serve"], " ".join(entry))
    check("server: HEALTHCHECK is set", bool((config.get("Healthcheck") or {}).get("Test")),
          " ".join((config.get("Healthcheck") or {}).get("Test") or []))
    check("server: data, database and device lock in the volume",
          "/var/lib/latency-server" in (config.get("Volumes") or {})
          and env.get("LATENCY_SERVER_DEVICE_LOCK", "").startswith("/var/lib/latency-server/")
          and "/var/lib/latency-server/" in env.get("LATENCY_SERVER_DB", ""),
          f"db {env.get('LATENCY_SERVER_DB')}, lock {env.get('LATENCY_SERVER_DEVICE_LOCK')}")
    box = Container(SERVER)
    try:
        uid = box.run(["id", "-u"]).stdout.strip()
        check("server: runs as a non-root user", uid not in ("", "0"), f"uid {uid} (image USER {config.get('User')})")
        refused = box.run(entry, {"LATENCY_SERVER_PORT": str(free_port())}, timeout=120)
        said = next((line for line in refused.stderr.splitlines() if "refusing" in line), refused.stderr.strip()[-300:])
        check("server: refuses 0.0.0.0 without a token", refused.returncode == 2 and "refusing to serve" in said,
              f"exit {refused.returncode}: {said[:160]}")
        port, token = free_port(), secrets.token_hex(16)
        base = f"http://127.0.0.1:{port}"
        argv = box.command([*entry, "--host", "127.0.0.1"], {"LATENCY_SERVER_TOKEN": token, "LATENCY_SERVER_PORT": str(port)})
        log(f"starting the server: {' '.join(argv).replace(token, '<token>')}")
        logfile = open(Path(OUT_DIR) / "server.log", "w")
        proc = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            start = time.monotonic()
            status, text = None, ""
            while time.monotonic() - start < HEALTH_TIMEOUT_S and proc.poll() is None:
                status, text = http("GET", f"{base}/healthz", timeout=5)
                if status == 200:
                    break
                time.sleep(2)
            up_s = time.monotonic() - start
            if not check("server: /healthz answers 200", status == 200, f"after {up_s:.0f} s: {text[:300]}"):
                return
            status, text = http("GET", f"{base}/docs")
            check("server: /docs answers 200", status == 200 and "swagger" in text.lower(), f"{status}")
            status, text = http("GET", f"{base}/")
            check("server: / answers (200, or 404 while no dashboard exists)", status in (200, 404),
                  f"{status}{' (no dashboard yet)' if status == 404 else ''}")
            body = {"backend": "onnxruntime", "batch_size": 1, "threads": 1,
                    "blocks": [{"type": "ir", "in_chs": 16, "out_chs": 24, "stride": 2, "resolution": 32,
                                "exp_ratio": 3, "kernel": 3, "se_ratio": 0, "act": "hard_swish"}]}
            status, text = http("POST", f"{base}/v1/latency/blocks", body)
            check("server: measuring without the token is refused (401)", status == 401, f"{status}")
            t0 = time.monotonic()
            status, text = http("POST", f"{base}/v1/latency/blocks", body, token=token, timeout=600)
            detail = f"{status} in {time.monotonic() - t0:.1f} s"
            ok = status == 200
            if ok:
                result = json.loads(text)["results"][0]
                ok = result["stats"]["median_ms"] > 0 and result["stats"]["samples"] > 0
                detail += f": {result['key']} median {result['stats']['median_ms']:.4f} ms, {result['stats']['samples']} samples"
            else:
                detail += f": {text[:300]}"
            check("server: POST /v1/latency/blocks measures one block", ok, detail)
            status, text = http("GET", f"{base}/healthz")
            check("server: /healthz still 200 after measuring", status == 200, text[:300])
        finally:
            # SIGTERM to the server process itself (as `docker stop` sends it): buildah run answers a signal of its
            # own by killing its child (SIGKILL), which would skip the server's graceful shutdown
            server_pid = _server_pid(proc.pid) if ENGINE == "buildah" else None
            if proc.poll() is None:
                os.kill(server_pid or proc.pid, signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            logfile.close()
            stopped = http("GET", f"{base}/healthz", timeout=3)[0] is None
            # uvicorn re-raises the signal after its shutdown, so buildah run reports the child as terminated
            graceful = "Finished server process" in (Path(OUT_DIR) / "server.log").read_text()
            check("server: stops gracefully on SIGTERM (shutdown logged, port closed)", stopped and graceful,
                  f"exit {proc.returncode} (signal re-raised), server pid {server_pid}")
    finally:
        box.remove()


def check_trainer() -> None:
    config = image_config(TRAINER)
    entry = list(config.get("Entrypoint") or [])
    box = Container(TRAINER)
    try:
        out = "/tmp/check-search"
        argv = [*entry, "search", "digits", "--lut", LUT, "--resolution", "32", "--latency-limit-ms", "0.9",
                "--bcfw-steps", "5", "--no-progress", "--out", out]
        if ENGINE == "docker":  # one container for both commands: a shell reads the result in the same run
            argv = ["sh", "-c", " ".join(argv) + f" && cat {out}/result.json"]
        log(f"trainer: {' '.join(argv)}")
        t0 = time.monotonic()
        proc = box.run(argv, timeout=900)
        secs = time.monotonic() - t0
        (Path(OUT_DIR) / "trainer.log").write_text(proc.stdout + proc.stderr)
        if not check("trainer: `nas search --lut` on the shipped table exits 0", proc.returncode == 0,
                     f"exit {proc.returncode} in {secs:.0f} s" + ("" if proc.returncode == 0 else
                                                                  ": " + proc.stderr.strip()[-500:])):
            return
        text = proc.stdout[proc.stdout.index("{"):] if ENGINE == "docker" else box.run(["cat", f"{out}/result.json"]).stdout
        result = json.loads(text)
        table_ms, limit = result.get("expected_latency_ms"), result.get("latency_limit_ms")
        check("trainer: result.json holds a network within the limit",
              bool(result.get("arch")) and table_ms is not None and table_ms <= limit,
              f"table latency {table_ms:.4f} ms <= {limit} ms after {result.get('steps')} steps: "
              f"{str(result.get('arch'))[:60]}...")
    finally:
        box.remove()


script = sys.argv[1]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                            text=True).stdout.strip())
now = datetime.datetime.now(datetime.timezone.utc)
OUT_DIR = "outputs/images"
Path(OUT_DIR).mkdir(parents=True, exist_ok=True)
images = {}
for role, image in (("server", SERVER), ("trainer", TRAINER)):
    exists = (sh("docker", "image", "inspect", image, check_rc=False) if ENGINE == "docker" else
              sh("buildah", "inspect", "--type", "image", image, check_rc=False)).returncode == 0
    if not exists:
        raise SystemExit(f"error: image {image} is missing: build it with scripts/build_images.sh (make images)")
    images[role] = {"image": image, "size_bytes": image_size(image)}
builds = Path(OUT_DIR, "build.json")
builds = json.loads(builds.read_text())["images"] if builds.exists() else {}
for entry in images.values():
    entry["size_gb"] = round(entry["size_bytes"] / 1e9, 2)
    entry["build"] = builds.get(entry["image"])
    entry["build_s"] = (builds.get(entry["image"]) or {}).get("build_s")

t0 = time.monotonic()
check_server()
check_trainer()
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
# the same fields as bench/record.py writes, so docs/benchmarks.md renders this run beside the benches
record = {
    "bench": "images",
    "command": " ".join([script, *sys.argv[2:]]),
    "commit": commit, "dirty": dirty,
    "date": now.isoformat(timespec="seconds"),
    "machine": {"cpu_model": cpu, "cores": os.cpu_count(), "os": platform.platform(), "engine": ENGINE},
    "state": {"label": "unknown", "source": "none", "loadavg": list(os.getloadavg())},
    "figures": {
        **{f"{role}_size_gb": entry["size_gb"] for role, entry in images.items()},
        **{f"{role}_build_s": entry["build_s"] for role, entry in images.items()},
        "checks_passed": sum(c["passed"] for c in checks), "checks": len(checks),
        "check_s": round(time.monotonic() - t0, 1),
    },
    "rows": checks,
    "images": images,
    "passed": all(c["passed"] for c in checks),
}
path = Path("bench/results/images") / f"{now:%Y-%m-%d}_{commit}.json"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(record, indent=1) + "\n")
print(f"\n{sum(c['passed'] for c in checks)}/{len(checks)} checks passed; "
      + "; ".join(f"{r} {e['image']} {e['size_gb']} GB, built in {e['build_s']} s" for r, e in images.items()))
print(f"result: {path}")
sys.exit(0 if record["passed"] else 1)
PY
