#!/usr/bin/env python3
"""Test double of Apache Pegasus for ferry's pegasus-* procedures (not Pegasus itself).

Four roles, one wrapper each (this module holds the shared state, parsers and the backup and
traffic models; shell_double.py, admin_double.py and http_double.py hold the roles):

  pegasus_shell  the C++ shell (`pegasus_shell <config.ini> <cluster>`): commands on stdin, banner on
                 stdout, many results on stderr, exit code always 0 (../shared/reference/pegasus.md §7).
  admin-cli      the Go admin-cli in one-shot mode (`admin-cli -m metas <command> args`), §3.2, §3.5.
  pegasus_http   the meta and replica HTTP endpoints of every cluster (§6, §8): /meta/app, /meta/nodes,
                 /meta/app_envs, /metrics (2.6) or /perfCounter (2.5 and older), /updateConfig.
  pegasus_split  the pegasus-spark offline split (cold backup -> bulk load layout), §4.2.

The cluster state lives in $PEGASUS_DOUBLE_STATE/state.json (locked with flock), written by the
test; "faults" in it make the next operation fail the way the reference says Pegasus fails.
Time does not pass on its own: a backup or bulk load advances one phase per status query, which
keeps the tests fast and deterministic. PEGASUS_DOUBLE_TICK (seconds, default 1) is copy_data's
progress interval.
"""

import fcntl
import json
import os
import re
import sys
import time

STATE_DIR = os.environ.get("PEGASUS_DOUBLE_STATE", "")
BOLD = "\x1b[1m"
GREEN = "\x1b[32m"
RED = "\x1b[31m"
YELLOW = "\x1b[33m"
RESET = "\x1b[0m"


class State:
    """state.json under an exclusive lock, written back on exit of the with-block."""

    def __enter__(self):
        if not STATE_DIR:
            sys.stderr.write("pegasus double: PEGASUS_DOUBLE_STATE is not set\n")
            sys.exit(2)
        self.lock = open(os.path.join(STATE_DIR, "state.lock"), "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        with open(os.path.join(STATE_DIR, "state.json")) as f:
            self.data = json.load(f)
        return self.data

    def __exit__(self, *exc):
        path = os.path.join(STATE_DIR, "state.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


def log_call(role, line):
    with open(os.path.join(STATE_DIR, "calls.log"), "a") as f:
        f.write("%s: %s\n" % (role, line))


def version_tuple(v):
    m = re.match(r"(\d+)\.(\d+)", v or "2.5.0")
    return (int(m.group(1)), int(m.group(2)))


def cluster_by_metas(st, metas):
    want = set(m.strip() for m in metas.split(",") if m.strip())
    for name, c in st["clusters"].items():
        if want & set(c["metas"].split(",")):
            return name, c
    return None, None


def take_fault(st, name):
    """Consumes a one-shot fault; returns its value or None."""
    faults = st.setdefault("faults", {})
    v = faults.get(name)
    if v is None:
        return None
    if isinstance(v, dict) and v.get("times", 1) > 1:
        v["times"] -= 1
    else:
        del faults[name]
    return v


def provider_root(st, provider):
    root = st.get("providers", {}).get(provider)
    return root


def read_ini(path):
    sections, cur = {}, None
    try:
        with open(path) as f:
            for raw in f:
                line = raw.split("#")[0].split(";")[0].strip()
                if not line:
                    continue
                if line.startswith("[") and line.endswith("]"):
                    cur = sections.setdefault(line[1:-1].strip(), {})
                elif "=" in line and cur is not None:
                    k, v = line.split("=", 1)
                    cur[k.strip()] = v.strip()
    except OSError:
        pass
    return sections


def split_args(line):
    """sdssplitargs-like: whitespace separated, double quotes group (with backslash escapes)."""
    out, cur, i, quoted, has = [], "", 0, False, False
    while i < len(line):
        ch = line[i]
        if quoted:
            if ch == "\\" and i + 1 < len(line):
                i += 1
                cur += line[i]
            elif ch == '"':
                quoted = False
            else:
                cur += ch
        elif ch == '"':
            quoted, has = True, True
        elif ch.isspace():
            if cur or has:
                out.append(cur)
            cur, has = "", False
        else:
            cur += ch
        i += 1
    if cur or has:
        out.append(cur)
    return out


def getopt_short(args, spec):
    """Short options per a getopt string; returns (opts, positionals) or raises ValueError."""
    opts, pos, i = {}, [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            raise ValueError("unrecognized option '%s'" % a)
        if a.startswith("-") and len(a) > 1:
            flag = a[1]
            j = spec.find(flag)
            if j < 0:
                raise ValueError("invalid option -- '%s'" % flag)
            if j + 1 < len(spec) and spec[j + 1] == ":":
                if len(a) > 2:
                    opts[flag] = a[2:]
                else:
                    i += 1
                    if i >= len(args):
                        raise ValueError("option requires an argument -- '%s'" % flag)
                    opts[flag] = args[i]
            else:
                opts[flag] = True
        else:
            pos.append(a)
        i += 1
    return opts, pos


def hash_partition(key, pc):
    h = 0
    for ch in key:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return h % pc


def backup_dir(st, c, bid):
    b = c["backups"][bid]
    return os.path.join(provider_root(st, b["provider"]) + b["path"], c.get("cold_backup_root"), bid)


def advance_backup(st, c, bid):
    """One status query = one step: checkpoint, upload x3, completed (or failed when a fault says so)."""
    b = c["backups"][bid]
    if b["status"] != "in progress":
        if b.get("uploading"):
            b["uploading"] = max(0, b["uploading"] - 1)
        return
    b["polls"] += 1
    if b.get("stall") and b["polls"] > 2:
        b["phase"] = "stalled"  # still "in progress", nothing uploads any more
        if b["polls"] >= 6:
            b["lost"] = True  # until the primary meta fails over and forgets it
        return
    fail = b.get("fail")
    if fail and b["polls"] >= (fail.get("at_poll", 3) if isinstance(fail, dict) else 3):
        b["status"], b["end"] = "failed", time.strftime("%Y-%m-%d %H:%M:%S")
        b["uploading"] = 3  # the failed backup ends on the replicas a few metric reads later
        return
    if b["polls"] <= 1:
        b["phase"] = "checkpoint"
    elif b["polls"] <= 4:
        b["phase"] = "upload"
        name = b["app_name"]
        pdir = os.path.join(backup_dir(st, c, bid), "%s_%s" % (name, b["app_id"]), str(b["polls"] - 2))
        os.makedirs(pdir, exist_ok=True)
        with open(os.path.join(pdir, "1.sst"), "w") as f:
            f.write("sst")
    else:
        b["phase"] = "done"
        b["status"], b["end"] = "completed", time.strftime("%Y-%m-%d %H:%M:%S")
        name = b["app_name"]
        root = os.path.join(backup_dir(st, c, bid), "%s_%s" % (name, b["app_id"]))
        with open(os.path.join(root, "data.json"), "w") as f:
            json.dump(c["apps"][name]["rows"], f)
        with open(os.path.join(backup_dir(st, c, bid), "backup_info"), "w") as f:
            json.dump({"backup_id": int(bid), "app_ids": [b["app_id"]]}, f)


def advance_traffic(st):
    """Client traffic on the migrated table (state "traffic": table, target, target_table, qps).
    Clients find the cluster through MetaProxy's ZooKeeper node ($STATE/zk/<table>, written by the
    procedure's zk command) but keep their cached route until the source denies them with
    reconfig*...; denied with MetaProxy still on the source, every request fails. Counters
    accumulate like 2.6's cumulative metrics; "rate" is the 2.5-style per-second value."""
    t = st.get("traffic")
    if not t:
        return
    now = time.time()
    src = st["clusters"][t["source"]]["apps"][t["table"]]
    deny = src.get("envs", {}).get("replica.deny_client_request", "")
    note_zk(st)
    zk = zk_cluster(t["table"]) or t["source"]
    rates = {t["source"]: 0, t["target"]: 0}
    fails = {t["source"]: 0, t["target"]: 0}
    if not deny:
        rates[t["source"]] = t["qps"]
    elif deny.endswith("*write"):
        # Writes are refused (timeout*: dropped, the client times out and retries; reconfig*:
        # ERR_INVALID_STATE), reads (70 % of the traffic) are served.
        rates[t["source"]] = t["qps"] * 0.7
    elif deny.startswith("reconfig") and zk == t["target"] and t["target_table"] in st["clusters"][t["target"]]["apps"]:
        rates[t["target"]] = t["qps"]
    elif deny.startswith("reconfig"):
        fails[t["source"]] = t["qps"]
    dt = now - t.get("last", now)
    acc = t.setdefault("acc", {})
    for cname in rates:
        a = acc.setdefault(cname, {"requests": 0.0, "fails": 0.0})
        a["requests"] += t.get("rate", {}).get(cname, 0) * dt
        a["fails"] += t.get("fail_rate", {}).get(cname, 0) * dt
    t["rate"], t["fail_rate"], t["last"] = rates, fails, now


def traffic_of(st, cname, app_name):
    """(cumulative requests, per-second rate) of app_name on cname, per replica node."""
    t = st.get("traffic")
    if not t:
        return 0, 0
    table = t["table"] if cname == t["source"] else t["target_table"]
    if app_name != table:
        return 0, 0
    n = len(st["clusters"][cname]["replicas"])
    return t["acc"].get(cname, {}).get("requests", 0) / n, t["rate"].get(cname, 0) / n


def fails_of(st, cname):
    t = st.get("traffic")
    if not t:
        return 0, 0
    n = len(st["clusters"][cname]["replicas"])
    return t["acc"].get(cname, {}).get("fails", 0) / n, t["fail_rate"].get(cname, 0) / n


def upload_metric(st, c):
    """cold.backup.max.upload.file.size: > 0 while a backup uploads, 0 otherwise."""
    for b in c.get("backups", {}).values():
        if b.get("lost"):
            continue
        if b["status"] == "in progress" and b.get("phase") == "upload":
            return 64 * 1024 * 1024
        if b.get("uploading"):
            b["uploading"] -= 1
            return 32 * 1024 * 1024
    return 0


def zk_cluster(table):
    """The cluster_name in MetaProxy's ZooKeeper node of the table (written by the procedure's
    zk command below $STATE/zk), or None."""
    try:
        with open(os.path.join(STATE_DIR, "zk", table)) as f:
            return json.load(f).get("cluster_name")
    except (OSError, ValueError):
        return None


def note_zk(st):
    """Records in "events" when MetaProxy's node of the traffic's table changes, with whether the
    source table's duplications had drained and whether it still took writes at that moment."""
    import dup_double
    t = st.get("traffic")
    if not t:
        return
    now = zk_cluster(t["table"])
    if now and now != t.get("zk_seen"):
        t["zk_seen"] = now
        app = st["clusters"][t["source"]]["apps"][t["table"]]
        st.setdefault("events", []).append("zk %s -> %s (drained: %s, writes open: %s)" % (
            t["table"], now, dup_double.drained(app), dup_double.writes_open(app)))


# -- perf-counters, 2.5 and older -------------------------------------------------------------
# perf_counter/perf_counter_atomic.h: a COUNTER_TYPE_VOLATILE_NUMBER's get_value() does
# _val[i].exchange(0), and a COUNTER_TYPE_RATE's resets on read too; GET /perfCounter calls
# get_value() (http/perf_counter_http_service.cpp), and so does the server's own reporter every
# perf_counter_update_interval_seconds (reporter/pegasus_counter_reporter.cpp update() ->
# perf_counters::take_snapshot()). `remote_command perf-counters*` only reads that snapshot
# (perf_counters.cpp list_snapshot_by_regexp / by_literals), so it zeroes nothing.

SNAPSHOT_INTERVAL = float(os.environ.get("PEGASUS_DOUBLE_SNAPSHOT_INTERVAL", "10"))
VOLATILE = ("replica*eon.replica_stub*recent.read.fail.count", "replica*eon.replica_stub*recent.write.fail.count")


def _live_totals(st, cname, node):
    """Counts that volatile counters of one node have accumulated since the node started."""
    total, _ = fails_of(st, cname)
    # $STATE/burst.json {cluster: n}: n read failures that happened on every node of the cluster
    # at the moment the test wrote it (a short outage).
    try:
        with open(os.path.join(STATE_DIR, "burst.json")) as f:
            burst = json.load(f).get(cname, 0)
    except (OSError, ValueError):
        burst = 0
    return {VOLATILE[0]: total / 2 + burst, VOLATILE[1]: total / 2}


def _take_snapshot_if_due(st, cname, node):
    c = st["clusters"][cname]
    snaps = c.setdefault("snapshots", {})
    consumed = c.setdefault("consumed", {}).setdefault(node, {})
    now = time.time()
    boundary = int(now // SNAPSHOT_INTERVAL * SNAPSHOT_INTERVAL)
    last = snaps.get(node)
    if last is not None and last["timestamp"] >= boundary:
        return last
    values = {}
    for name, total in _live_totals(st, cname, node).items():
        v = int(total - consumed.get(name, 0))
        consumed[name] = consumed.get(name, 0) + v
        values[name] = v
    snap = {"timestamp": boundary, "values": values}
    snaps[node] = snap
    return snap


def read_live_counter(st, cname, node, name):
    """GET /perfCounter?name=... of a volatile counter: what accumulated since the last reader
    (the reporter's snapshot or any other client), which this read takes away."""
    _take_snapshot_if_due(st, cname, node)
    consumed = st["clusters"][cname].setdefault("consumed", {}).setdefault(node, {})
    total = _live_totals(st, cname, node)[name]
    v = int(total - consumed.get(name, 0))
    consumed[name] = consumed.get(name, 0) + v
    return v


def snapshot_counters(st, cname, node, rates):
    """The node's last snapshot: (timestamp, {name: value}); `rates` are the rate counters'
    values (per second over the last interval) to show beside the volatile ones."""
    snap = _take_snapshot_if_due(st, cname, node)
    values = dict(rates)
    values.update(snap["values"])
    return snap["timestamp"], values


def perf_values(st, c, cname, upload=False):
    """Perf-counter values of a replica server of cluster cname (names of §3.7, §5.6)."""
    upload_name = "replica*eon.replica_stub*cold.backup.max.upload.file.size"
    rejected = st.get("faults", {}).get("non_idempotent", {}).get(cname, 0)
    values = {upload_name: upload_metric(st, c) if upload else 0,
              "replica*eon.replica_stub*dup.pending_mutations_count": 0}
    for app_name, app in c["apps"].items():
        _, rate = traffic_of(st, cname, app_name)
        for pidx in range(app["partition_count"]):
            share = rate / app["partition_count"]
            values["replica*app.pegasus*get_qps@%d.%d" % (app["app_id"], pidx)] = share * 0.7
            values["replica*app.pegasus*put_qps@%d.%d" % (app["app_id"], pidx)] = share * 0.3
        values["replica*eon.replica*dup.disabled_non_idempotent_write_count@%s" % app_name] = rejected
    return values
