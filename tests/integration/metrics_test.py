"""metrics_listen checked with the real thing (run by tests/scripts/metrics_prometheus.sh).

A 3-node cluster with metrics_listen set on every node, scraped by Debian's `prometheus`
server started here on a free port (scrape_interval 1s). Checks, awaiting each condition
with a deadline rather than sleeping:
- /metrics passes `promtool check metrics` and names exactly the metrics of docs/metrics.md;
- /status is the `status` reply as JSON;
- through Prometheus's HTTP API: every target up, sum(raftd_is_leader) == 1, and the
  proposals counter increasing after proposals;
- /health: 200 on every node; 503 ("no leader") on a node whose two peers are SIGSTOPped;
  200 again once they continue;
- a taken metrics port stops raftd at start with one line, before it touches its data dir.
Exits 77 (skipped) when prometheus or promtool is not installed.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftd_cluster import Cluster, free_ports  # noqa: E402


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def http_get(url, timeout=5.0):
    """(status, body) of GET url; (None, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def documented_metrics():
    text = open("docs/metrics.md").read()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(raftd_[a-z_]+)` \|", section, re.M))


def exported_metrics(body):
    return set(re.findall(r"^# TYPE (\S+) ", body, re.M))


class Prometheus:
    def __init__(self, targets):
        self.dir = tempfile.mkdtemp(prefix="raftd-prom-")
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: raftd\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={cfg}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def api(self, path, **params):
        st, body = http_get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        if st != 200:
            return None
        r = json.loads(body)
        return r["data"] if r.get("status") == "success" else None

    def scalar(self, expr):
        """The single value of an instant query, or None while it has none."""
        d = self.api("query", query=expr)
        if not d or not d["result"]:
            return None
        return float(d["result"][0]["value"][1])

    def close(self, show_log=False):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if show_log:
            print(open(os.path.join(self.dir, "prometheus.log")).read()[-3000:])
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print(f"skip: {tool} not installed (make deps)")
            return 77
    with Cluster(3) as c:
        ports = dict(zip(c.nodes, free_ports(len(c.nodes))))
        for i, n in c.nodes.items():
            n.extra = ["--metrics-listen", f"127.0.0.1:{ports[i]}"]
        url = {i: f"http://127.0.0.1:{p}" for i, p in ports.items()}
        c.start()
        leader = c.leader()

        # ---- /metrics, /status, /health straight from the nodes ----
        doc = documented_metrics()
        check(len(doc) >= 30, f"docs/metrics.md lists the metrics ({len(doc)} found)")
        for i in c.nodes:
            st, body = http_get(url[i] + "/metrics")
            check(st == 200, f"node {i}: /metrics answers 200 (got {st})")
            lint = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                                  capture_output=True)
            check(lint.returncode == 0,
                  f"node {i}: promtool check metrics: {lint.stdout}{lint.stderr}")
            got = exported_metrics(body)
            check(got == doc, f"node {i}: /metrics and docs/metrics.md differ: only exported "
                              f"{sorted(got - doc)}, only documented {sorted(doc - got)}")
            st, body = http_get(url[i] + "/status")
            check(st == 200, f"node {i}: /status answers 200")
            js = json.loads(body)
            check(js["node_id"] == i and "members" in js and "leader" in js,
                  f"node {i}: /status is the status reply: {js}")

            # /status serves the sample the loop published up to 100 ms ago (docs/metrics.md),
            # which can predate the election c.leader() saw: await the leader in it.
            def names_leader(i=i):
                st, body = http_get(url[i] + "/status")
                return st == 200 and json.loads(body)["leader"] == leader.id
            c.await_(names_leader, f"node {i}: /status names leader {leader.id}")
        for i in c.nodes:
            c.await_(lambda i=i: http_get(url[i] + "/health")[0] == 200, f"node {i}: /health 200")
        # Every node sees its peers connected once the cluster settled.
        for i in c.nodes:
            want = {str(j) for j in c.nodes if j != i}
            c.await_(lambda i=i, want=want: set(re.findall(
                r'^raftd_peer_connected\{peer="(\d+)"\} 1$', http_get(url[i] + "/metrics")[1],
                re.M)) == want, f"node {i}: raftd_peer_connected 1 for each peer")

        # ---- the real Prometheus ----
        prom = Prometheus([f"127.0.0.1:{p}" for p in ports.values()])
        ok = False
        try:
            def all_up():
                d = prom.api("targets")
                if not d:
                    return False
                act = d["activeTargets"]
                return len(act) == 3 and all(t["health"] == "up" for t in act)
            c.await_(all_up, "prometheus to scrape every node (targets up)", timeout=90)
            c.await_(lambda: prom.scalar("sum(raftd_is_leader)") == 1,
                     "prometheus: sum(raftd_is_leader) == 1", timeout=30)
            check(prom.scalar("count(raftd_is_leader)") == 3, "prometheus: three nodes scraped")
            before = prom.scalar('sum(raftd_proposals_total{result="ok"})')
            check(before is not None, "prometheus has raftd_proposals_total")
            for k in range(20):
                c.propose(c.nodes[1 + k % 3], f"m{k}".encode())
            c.await_(lambda: (prom.scalar('sum(raftd_proposals_total{result="ok"})') or 0)
                     >= before + 20, "prometheus: proposals counter up by 20", timeout=30)
            check(prom.scalar("sum(raftd_wal_written_entries_total)") > 0,
                  "prometheus: entries written")
            ok = True
        finally:
            prom.close(show_log=not ok)

        # ---- /health on a node cut off from the others ----
        alone = next(n for n in c.nodes.values() if n.id != leader.id)
        others = [n for n in c.nodes.values() if n.id != alone.id]
        try:
            for n in others:
                n.proc.send_signal(signal.SIGSTOP)
            st, reason = c.await_(
                lambda: (lambda r: r if r[0] == 503 else None)(http_get(url[alone.id] + "/health")),
                f"node {alone.id}: /health 503 with its peers stopped")
            check("no leader" in reason and reason.count("\n") == 1,
                  f"node {alone.id}: one-line reason: {reason!r}")
            st, body = http_get(url[alone.id] + "/metrics")
            check(st == 200, "/metrics answers while the node has no leader")
        finally:
            for n in others:
                n.proc.send_signal(signal.SIGCONT)
        c.leader()
        for i in c.nodes:
            c.await_(lambda i=i: http_get(url[i] + "/health")[0] == 200,
                     f"node {i}: /health 200 again")
        # A taken metrics port is a one-line startup error naming the option and address.
        data_dir = os.path.join(c.root, "taken", "data")
        (peer_port,) = free_ports(1)
        p = subprocess.run([c.raftd, "--node-id", "1", "--data-dir", data_dir,
                            "--socket", os.path.join(c.root, "taken.sock"),
                            "--listen", f"127.0.0.1:{peer_port}",
                            "--metrics-listen", f"127.0.0.1:{ports[1]}"],
                           capture_output=True, text=True, timeout=30)
        line = p.stderr.strip()
        check(p.returncode == 1 and line == f"raftd: error: metrics_listen 127.0.0.1:{ports[1]}: "
                                            "Address already in use",
              f"a taken metrics port: exit {p.returncode}, {line!r}")
        check(not os.path.exists(data_dir), "nothing written before the port was bound")
    print("metrics: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
