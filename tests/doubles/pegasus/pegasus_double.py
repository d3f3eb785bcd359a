#!/usr/bin/env python3
"""Test double of Apache Pegasus for ferry's pegasus-* procedures (not Pegasus itself).

One module plays four roles, chosen by the wrapper that imports it:

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


# ------------------------------------------------------------------------------------------------
# pegasus_shell
# ------------------------------------------------------------------------------------------------

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


class Shell:
    def __init__(self, config, cluster):
        self.config_path = config
        self.config = read_ini(config)
        self.cluster = cluster
        self.app = None
        self.out = sys.stdout
        self.err = sys.stderr

    def p(self, text, err=False):
        (self.err if err else self.out).write(text + "\n")
        (self.err if err else self.out).flush()

    def banner(self, st):
        if os.environ.get("PEGASUS_DOUBLE_NO_BANNER"):
            return  # a wrapper that swallows the banner: ferry then needs pegasus_version
        c = st["clusters"].get(self.cluster)
        self.p("Pegasus Shell %s" % st.get("version", "2.5.0"))
        self.p('Type "help" for more information.')
        self.p("The config file is: %s" % self.config_path)
        self.p("The cluster name is: %s" % self.cluster)
        self.p("The cluster meta list is: %s" % (c["metas"] if c else ""))

    def run(self):
        with State() as st:
            self.banner(st)
            self.version = version_tuple(st.get("version"))
        for raw in sys.stdin:
            line = raw.strip()
            log_call("shell", line)
            if not line:
                self.p("Invalid argument(s)", err=True)
                continue
            args = split_args(line)
            cmd, rest = args[0], args[1:]
            handler = getattr(self, "cmd_" + cmd, None)
            if handler is None:
                self.p("ERROR: invalid subcommand '%s'" % cmd, err=True)
                self.p("Usage:\n\thelp\n\tuse <app_name>\n\tcopy_data ...", err=True)
                continue
            handler(rest)

    # -- generic --
    def cmd_use(self, rest):
        self.app = rest[0] if rest else None
        self.p("OK", err=True)

    def cmd_set_app_envs(self, rest):
        with State() as st:
            apps = st["clusters"][self.cluster]["apps"]
            if self.app not in apps:
                self.p("set app env failed with error ERR_APP_NOT_EXIST", err=True)
                return
            if len(rest) != 2:
                self.p("USAGE: set_app_envs <key> <value> [key value...]", err=True)
                return
            apps[self.app].setdefault("envs", {})[rest[0]] = rest[1]
        self.p("set app env succeed")

    def cmd_remote_command(self, rest):
        try:
            opts, pos = getopt_short(rest, "t:l:r")
        except ValueError as e:
            self.p("ERROR: %s" % e, err=True)
            return
        with State() as st:
            c = st["clusters"][self.cluster]
            nodes = c["replicas"]
            cmd, cargs = pos[0], pos[1:]
            results = {}
            for n in nodes:
                cfg = c.setdefault("node_config", {}).setdefault(n, {})
                if cmd in ("nfs.max_send_rate_megabytes", "nfs.max_send_rate_megabytes_per_disk"):
                    if self.version >= (2, 4) and cmd == "nfs.max_send_rate_megabytes":
                        results[n] = (False, "unknown command '%s'" % cmd)
                        continue
                    if not cargs:
                        results[n] = (True, str(cfg.get(cmd, 0)))
                    elif not cargs[0].isdigit() or int(cargs[0]) <= 0:
                        results[n] = (True, "ERR: invalid arguments")
                    else:
                        cfg[cmd] = int(cargs[0])
                        results[n] = (True, "OK")
                else:
                    results[n] = (False, "unknown command '%s'" % cmd)
        if self.version >= (2, 6):
            details = {}
            for n, (ok, msg) in results.items():
                m = {"error": "ok"} if msg == "OK" else msg
                details[n] = {"role": "replica-server", "acked": ok, "message": m}
            self.p(json.dumps({"command": " ".join(pos), "details": details,
                               "succeed_count": sum(1 for ok, _ in results.values() if ok),
                               "failed_count": sum(1 for ok, _ in results.values() if not ok)}, indent=4))
        else:
            self.p("COMMAND: %s" % " ".join(pos), err=True)
            for n, (ok, msg) in results.items():
                if ok:
                    self.p("CALL [replica-server] [%s] succeed: %s" % (n, msg), err=True)
                else:
                    self.p("CALL [replica-server] [%s] failed: %s" % (n, msg), err=True)
            self.p("", err=True)
            self.p("Succeed count: %d" % sum(1 for ok, _ in results.values() if ok), err=True)
            self.p("Failed count: %d" % sum(1 for ok, _ in results.values() if not ok), err=True)

    # -- copy_data (§2) --
    def cmd_copy_data(self, rest):
        try:
            o, _ = getopt_short(rest, "c:a:p:b:t:h:x:s:y:v:z:m:o:nigeu")
        except ValueError as e:
            self.p("copy_data: %s" % e, err=True)
            self.p("USAGE: copy_data <-c|--target_cluster_name str> <-a|--target_app_name str> ...", err=True)
            return
        if self.version < (2, 4) and any(k in o for k in "mou"):
            self.p("USAGE: copy_data <-c|--target_cluster_name str> <-a|--target_app_name str> ...", err=True)
            return
        if "c" not in o or "a" not in o:
            self.p("ERROR: target_cluster_name or target_app_name not specified", err=True)
            return
        if o.get("u") and o.get("n"):
            self.p("ERROR: copy with multi_set not support no_overwrite!", err=True)
            return
        if o["c"] == self.cluster and o["a"] == self.app:
            self.p("ERROR: source app and target app is the same", err=True)
            return
        if o["c"] not in self.config.get("pegasus.clusters", {}):
            self.p("ERROR: get meta list of cluster %s failed" % o["c"], err=True)
            return
        with State() as st:
            src = st["clusters"][self.cluster]["apps"].get(self.app)
            tgt_cluster = st["clusters"].get(o["c"], {"apps": {}})
            tgt = tgt_cluster["apps"].get(o["a"])
            fault = take_fault(st, "copy_fail")
            multi_set_blocked = bool(o.get("n")) and tgt is not None and tgt.get("dup_master")
        if src is None:
            self.p("ERROR: get app %s partition count failed: ERR_OBJECT_NOT_FOUND" % self.app, err=True)
            return
        if tgt is None:
            self.p("ERROR: test target app failed: ERR_OBJECT_NOT_FOUND", err=True)
            return
        pc = src["partition_count"]
        if o.get("u"):
            workers = int(self.config.get("threadpool.THREAD_POOL_DEFAULT", {}).get("worker_count", "20"))
            if workers <= pc:
                self.p("ERROR: THREAD_POOL_DEFAULT worker_count should greater than source app partition count %d"
                       % pc, err=True)
                return
        e = self.p
        e("INFO: source_cluster_name = %s" % self.cluster, True)
        e("INFO: source_app_name = %s" % self.app, True)
        e("INFO: target_cluster_name = %s" % o["c"], True)
        e("INFO: target_app_name = %s" % o["a"], True)
        e("INFO: partition = %s" % o.get("p", "all"), True)
        e("INFO: max_batch_count = %s" % o.get("b", "500"), True)
        e("INFO: timeout_ms = %s" % o.get("t", "5000"), True)
        e("INFO: hash_key_filter_type = no_filter", True)
        e("INFO: sort_key_filter_type = no_filter", True)
        e("INFO: value_filter_type = no_filter", True)
        e("INFO: no_overwrite = %s" % ("true" if o.get("n") else "false"), True)
        e("INFO: no_value = %s" % ("true" if o.get("i") else "false"), True)
        e("INFO: open source app scanner succeed, partition_count = %d" % pc, True)
        splits = [int(o["p"])] if "p" in o else list(range(pc))
        e("INFO: prepare scanners succeed, split_count = %d" % len(splits), True)
        rows = dict(src["rows"])
        keys = sorted(rows)
        if "p" in o:
            keys = [k for k in keys if hash_partition(k, pc) == int(o["p"])]
        per_tick = int(os.environ.get("PEGASUS_DOUBLE_COPY_RATE", "100"))
        tick = float(os.environ.get("PEGASUS_DOUBLE_TICK", "1"))
        fail_at = None
        if fault is not None:
            fail_at = fault.get("after_rows", 0) if isinstance(fault, dict) else 0
        if multi_set_blocked:
            fail_at = 0
            fault = {"error": "ERR_OPERATION_DISABLED", "op": "check and set"}
        done, secs, copied_total = 0, 0, 0
        per_split = {s: 0 for s in splits}
        error = None
        while done < len(keys) and error is None:
            time.sleep(tick)
            secs += 1
            batch = keys[done:done + per_tick]
            if fail_at is not None and done + len(batch) > fail_at:
                batch = keys[done:fail_at] if fail_at > done else []
                error = fault
            copied = 0
            with State() as st:
                target_rows = st["clusters"][o["c"]]["apps"][o["a"]]["rows"]
                for k in batch:
                    if o.get("n") and k in target_rows:
                        continue
                    target_rows[k] = "" if o.get("i") else rows[k]
                    copied += 1
                    per_split[splits[0] if len(splits) == 1 else hash_partition(k, pc)] += 1
            done += len(batch)
            copied_total += copied
            line = "INFO: processed for %d seconds, (%d/%d) splits, total %d rows, last second %d rows" % (
                secs, len(splits) if done >= len(keys) and error is None else 0, len(splits),
                copied_total, copied)
            if error is not None:
                line += ", error occurred, terminating..."
            e(line, True)
        if error is not None:
            op = error.get("op", "async set") if isinstance(error, dict) else "async set"
            code = error.get("error", "ERR_TIMEOUT") if isinstance(error, dict) else "ERR_TIMEOUT"
            e("ERROR: split[%d] %s failed: %s" % (splits[0], op, code), True)
            e("ERROR: error occurred, processing terminated", True)
        for s in splits:
            e("INFO: split[%d]: %d rows" % (s, per_split[s]), True)
        e("", True)
        if error is not None:
            e("Copy terminated, total %d rows." % copied_total, True)
        else:
            e("Copy done, total %d rows." % copied_total, True)

    def cmd_count_data(self, rest):
        try:
            o, _ = getopt_short(rest, "cp:b:t:h:x:s:y:v:z:dna" if self.version >= (2, 5) else "p:b:t:h:x:s:y:v:z:dna")
        except ValueError as ex:
            self.p("count_data: %s" % ex, err=True)
            self.p("USAGE: count_data [-p|--partition num] ...", err=True)
            return
        with State() as st:
            app = st["clusters"][self.cluster]["apps"].get(self.app)
        if app is None:
            self.p("ERROR: get app %s partition count failed: ERR_OBJECT_NOT_FOUND" % self.app, err=True)
            return
        n = len(app["rows"])
        if self.version >= (2, 5) and not o.get("c"):
            # RocksDB estimate per partition, not the precise count.
            self.p("partition  estimate_count\n0          %d\nTotal      %d" % (n + 7, n + 7))
            return
        self.p("INFO: processed for 1 seconds, (%d/%d) splits, total %d rows, last second %d rows"
               % (app["partition_count"], app["partition_count"], n, n), err=True)
        self.p("", err=True)
        self.p("Count done, total %d rows." % n, err=True)

    # -- bulk load (§4.1) --
    def cmd_start_bulk_load(self, rest):
        ingest_behind = "--ingest_behind" in rest
        if ingest_behind and self.version < (2, 4):
            self.p("start_bulk_load: unrecognized option '--ingest_behind'", err=True)
            self.p("USAGE: start_bulk_load <-a --app_name str> <-c --cluster_name str> "
                   "<-p --file_provider_type str> <-r --root_path>", err=True)
            return
        try:
            o, _ = getopt_short([a for a in rest if a != "--ingest_behind"], "a:c:p:r:i")
        except ValueError as ex:
            self.p("start_bulk_load: %s" % ex, err=True)
            return
        ingest_behind = ingest_behind or bool(o.get("i"))
        with State() as st:
            c = st["clusters"][self.cluster]
            app = c["apps"].get(o.get("a"))
            fault = take_fault(st, "bulk_load_start")
            if app is None:
                self.p("start bulk load failed, error=ERR_APP_NOT_EXIST", err=True)
                return
            if fault:
                self.p("start bulk load failed, error=%s" % fault, err=True)
                return
            for name, other in c["apps"].items():
                bl = other.get("bulk_load")
                if bl and bl["status"] not in ("SUCCEED", "FAILED", "CANCELED"):
                    if name == o["a"]:
                        self.p('start bulk load failed, error=ERR_BUSY [hint:"app(%s) is already executing bulk '
                               'load"]' % name, err=True)
                    else:
                        self.p('start bulk load failed, error=ERR_BUSY [hint:"meta server is busy now, please '
                               'wait"]', err=True)
                    return
            root = provider_root(st, o.get("p"))
            if root is None:
                self.p("start bulk load failed, error=ERR_INVALID_PARAMETERS", err=True)
                return
            base = os.path.join(root + o["r"], o["c"], o["a"])
            try:
                with open(os.path.join(base, "bulk_load_info")) as f:
                    info = json.load(f)
            except OSError:
                self.p('start bulk load failed, error=ERR_OBJECT_NOT_FOUND [hint:"bulk_load_info is not '
                       'existed"]', err=True)
                return
            if info.get("app_id") != app["app_id"] or info.get("partition_count") != app["partition_count"]:
                self.p('start bulk load failed, error=ERR_INCONSISTENT_STATE [hint:"app_id or partition_count is '
                       'inconsistent"]', err=True)
                return
            if ingest_behind and app.get("envs", {}).get("rocksdb.allow_ingest_behind") != "true":
                self.p('start bulk load failed, error=ERR_INCONSISTENT_STATE [hint:"inconsistent ingestion behind '
                       'option"]', err=True)
                return
            app["bulk_load"] = {"status": "DOWNLOADING", "polls": 0, "dir": base, "ingest_behind": ingest_behind,
                                "scenario_at_start": app.get("envs", {}).get("rocksdb.usage_scenario", "normal")}
        self.p("start bulk load succeed")

    def cmd_query_bulk_load_status(self, rest):
        try:
            o, _ = getopt_short(rest, "a:i:d")
        except ValueError as ex:
            self.p("query_bulk_load_status: %s" % ex, err=True)
            return
        with State() as st:
            app = st["clusters"][self.cluster]["apps"].get(o.get("a"))
            if app is None:
                self.p("query bulk load status failed, error=ERR_APP_NOT_EXIST", err=True)
                return
            bl = app.get("bulk_load")
            if bl is None:
                self.p("[summary]\nis_bulk_loading : NO\napp_bulk_load_status : INVALID")
                return
            if bl["status"] not in ("SUCCEED", "FAILED", "CANCELED"):
                bl["polls"] += 1
                fail = st.get("faults", {}).get("bulk_load_fail")
                if fail and bl["polls"] >= 2:
                    take_fault(st, "bulk_load_fail")
                    bl["status"], bl["err"] = "FAILED", fail
                elif bl["polls"] >= 4:
                    bl["status"] = "SUCCEED"
                    with open(os.path.join(bl["dir"], "data.json")) as f:
                        data = json.load(f)
                    for k, v in data.items():
                        if bl["ingest_behind"] and k in app["rows"]:
                            continue  # ingested below newer (dual-written) data
                        app["rows"][k] = v
                elif bl["polls"] >= 3:
                    bl["status"] = "INGESTING"
                else:
                    bl["status"] = "DOWNLOADING"
            lines = ["[summary]", "is_bulk_loading : %s" % ("YES" if bl["status"] not in (
                "SUCCEED", "FAILED", "CANCELED") else "NO"), "app_bulk_load_status : %s" % bl["status"]]
            if bl["status"] == "FAILED":
                lines.append("bulk_load_err : %s" % bl.get("err"))
            if bl["status"] == "DOWNLOADING":
                lines.append("app_total_download_progress : %d" % (50 * bl["polls"]))
            if bl["status"] == "INGESTING":
                lines.append("app_total_ingestion_progress : 50")
        self.p("\n".join(lines))

    # -- duplication (§5.2) --
    def cmd_add_dup(self, rest):
        flags = "sa:r:" if self.version >= (2, 6) else ("s" if self.version >= (2, 4) else "f")
        try:
            o, pos = getopt_short(rest, flags)
        except ValueError as ex:
            self.p("add_dup: %s" % ex, err=True)
            self.p("USAGE: add_dup <app_name> <remote_cluster_name> [-s|--sst]", err=True)
            return
        if len(pos) != 2:
            self.p("USAGE: add_dup <app_name> <remote_cluster_name> [-s|--sst]", err=True)
            return
        app_name, remote = pos
        with State() as st:
            c = st["clusters"][self.cluster]
            app = c["apps"].get(app_name)
            if app is None:
                self.p("adding duplication failed: ERR_APP_NOT_EXIST", err=True)
                return
            if remote == self.cluster:
                self.p("adding duplication failed: illegal operation: adding duplication to itself", err=True)
                return
            remote_app = o.get("a", app_name)
            rc = st["clusters"].get(remote)
            if rc is None:
                self.p("adding duplication failed: ERR_INVALID_PARAMETERS", err=True)
                return
            for dupid, d in app.get("dups", {}).items():
                if d["remote"] == remote:
                    if self.version >= (2, 6):
                        self.p(YELLOW + "duplication has been existing [app_name: %s, remote_cluster_name: %s, "
                               "dupid: %s]" % (app_name, remote, dupid) + RESET, err=True)
                    else:
                        self.p("adding duplication failed: ERR_DUP_EXIST", err=True)
                    return
            if o.get("s"):
                if remote_app in rc["apps"]:
                    self.p("adding duplication failed: ERR_APP_EXIST", err=True)
                    return
                rc["apps"][remote_app] = {"app_id": rc.get("next_app_id", 10), "partition_count":
                                          app["partition_count"], "rows": {}, "envs": {}}
                rc["next_app_id"] = rc.get("next_app_id", 10) + 1
            elif remote_app not in rc["apps"]:
                self.p("adding duplication failed: ERR_APP_NOT_EXIST", err=True)
                return
            dupid = str(int(time.time()))
            app.setdefault("dups", {})[dupid] = {"remote": remote, "remote_app": remote_app,
                                                 "status": "DS_PREPARE" if o.get("s") else "DS_LOG", "polls": 0}
            appid = app["app_id"]
        if self.version >= (2, 6):
            self.p(GREEN + "adding duplication succeed [app_name: %s, remote_cluster_name: %s, appid: %d, dupid: "
                   "%s, checkpoint: %s]" % (app_name, remote, appid, dupid, "true" if o.get("s") else "false")
                   + RESET)
        else:
            self.p("adding duplication succeed [app: %s, remote: %s, appid: %d, dupid: %s]"
                   % (app_name, remote, appid, dupid))

    def cmd_query_dup(self, rest):
        try:
            o, pos = getopt_short(rest, "d")
        except ValueError as ex:
            self.p("query_dup: %s" % ex, err=True)
            return
        with State() as st:
            c = st["clusters"][self.cluster]
            app = c["apps"].get(pos[0] if pos else None)
            if app is None:
                self.p("querying duplications of app [%s] failed, error=ERR_APP_NOT_EXIST" % (pos or [""])[0],
                       err=True)
                return
            out = {"appid": app["app_id"]}
            for dupid, d in app.get("dups", {}).items():
                d["polls"] += 1
                lag = max(0, 300 - 150 * d["polls"]) if d["status"] != "DS_PREPARE" else 500
                if d["status"] == "DS_PREPARE" and d["polls"] >= 2:
                    d["status"] = "DS_LOG"
                    rc = st["clusters"][d["remote"]]
                    rc["apps"][d["remote_app"]]["rows"].update(app["rows"])
                if d["status"] == "DS_LOG":
                    st["clusters"][d["remote"]]["apps"][d["remote_app"]]["rows"].update(app["rows"])
                committed = 1000 + 10 * d["polls"]
                entry = {"dupid": int(dupid), "create_ts": "2026-12-01 06:00:00", "remote": d["remote"],
                         "status": d["status"], "fail_mode": "FAIL_SLOW",
                         "progress": {str(i): committed - lag for i in range(app["partition_count"])}}
                if self.version >= (2, 6):
                    entry["remote_app_name"] = d["remote_app"]
                    entry["remote_replica_count"] = 3
                    entry["partition_states"] = {str(i): {"confirmed_decree": committed - lag,
                                                          "last_committed_decree": committed}
                                                 for i in range(app["partition_count"])}
                out[dupid] = entry
        self.p(json.dumps(out, separators=(",", ":")))


def hash_partition(key, pc):
    h = 0
    for ch in key:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return h % pc


def shell_main(argv):
    config = argv[1] if len(argv) > 1 else "config.ini"
    cluster = argv[2] if len(argv) > 2 else "mycluster"
    Shell(config, cluster).run()
    sys.exit(0)  # dsn_exit(0): the exit code never says whether a command worked


# ------------------------------------------------------------------------------------------------
# admin-cli (one-shot)
# ------------------------------------------------------------------------------------------------

def table(headers, rows):
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [sep, "|" + "|".join(" %s%s%s%s " % (BOLD, h.upper(), RESET, " " * (w - len(h)))
                               for h, w in zip(headers, widths)) + "|", sep]
    for r in rows:
        out.append("|" + "|".join(" %s%s " % (str(c), " " * (w - len(str(c)))) for c, w in zip(r, widths)) + "|")
    out.append(sep)
    return "\n".join(out)


def admin_main(argv):
    args = argv[1:]
    metas = None
    if len(args) >= 2 and args[0] == "-m":
        metas, args = args[1], args[2:]
    log_call("admin-cli", " ".join(args))
    if not args:
        print("admin-cli interactive mode is not supported by the double", file=sys.stderr)
        sys.exit(1)
    with State() as st:
        name, c = cluster_by_metas(st, metas or "")
        if c is None:
            print("Error: failed to connect to meta servers %s" % metas, file=sys.stderr)
            sys.exit(1)
        cmd, rest = args[0], args[1:]
        if cmd == "backup":
            return admin_backup(st, name, c, rest)
        if cmd == "query-backup-status":
            return admin_query_backup(st, name, c, rest)
        if cmd == "restore":
            return admin_restore(st, name, c, rest)
    print('Error: unknown command "%s"' % cmd, file=sys.stderr)
    sys.exit(1)


def app_by_id(c, app_id):
    for name, a in c["apps"].items():
        if str(a["app_id"]) == str(app_id):
            return name, a
    return None, None


def admin_backup(st, cname, c, rest):
    if len(rest) < 2:
        print("Error: invalid arguments, usage: backup <TABLE_ID> <PROVIDER_TYPE> [SPECIFIC_BACKUP_PATH]")
        sys.exit(1)
    app_id, provider = rest[0], rest[1]
    path = rest[2] if len(rest) > 2 else ""
    name, app = app_by_id(c, app_id)
    if app is None:
        print("Error: Backup failed: ERR_INVALID_PARAMETERS invalid app id %s" % app_id)
        sys.exit(1)
    if provider_root(st, provider) is None:
        print("Error: Backup failed: ERR_INVALID_PARAMETERS invalid backup_provider_type: %s" % provider)
        sys.exit(1)
    for b in c.setdefault("backups", {}).values():
        if str(b["app_id"]) == str(app_id) and b["status"] == "in progress" and not b.get("forgotten"):
            print('Error: Backup failed: ERR_INVALID_STATE "app %s is actively being backed up"' % app_id)
            sys.exit(1)
    bid = str(int(time.time() * 1000))
    while bid in c["backups"]:
        bid = str(int(bid) + 1)
    fail = take_fault(st, "backup_fail")
    lost = take_fault(st, "backup_lost")
    stall = take_fault(st, "backup_stall")
    c["backups"][bid] = {"app_id": int(app_id), "app_name": name, "provider": provider, "path": path,
                         "status": "in progress", "polls": 0, "fail": fail, "lost": lost, "stall": stall,
                         "start": time.strftime("%Y-%m-%d %H:%M:%S"), "end": "-"}
    d = backup_dir(st, c, bid)
    os.makedirs(os.path.join(d, "%s_%s" % (name, app_id), "meta"), exist_ok=True)
    with open(os.path.join(d, "%s_%s" % (name, app_id), "meta", "app_metadata"), "w") as f:
        json.dump({"app_name": name, "app_id": int(app_id), "partition_count": app["partition_count"]}, f)
    print("[hint]: Backup succeed: metadata of app %s has been successfully backed up and backup request has been "
          "sent to replica servers." % app_id)
    print("BackupID: %s" % bid)


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
    denied = src.get("envs", {}).get("replica.deny_client_request", "").startswith("reconfig")
    try:
        with open(os.path.join(STATE_DIR, "zk", t["table"])) as f:
            zk = json.load(f).get("cluster_name")
    except (OSError, ValueError):
        zk = t["source"]
    rates = {t["source"]: 0, t["target"]: 0}
    fails = {t["source"]: 0, t["target"]: 0}
    if not denied:
        rates[t["source"]] = t["qps"]
    elif zk == t["target"] and t["target_table"] in st["clusters"][t["target"]]["apps"]:
        rates[t["target"]] = t["qps"]
    else:
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


def admin_query_backup(st, cname, c, rest):
    app_id = rest[0] if rest else None
    rows = []
    for bid, b in sorted(c.get("backups", {}).items()):
        if str(b["app_id"]) != str(app_id) or (len(rest) > 1 and rest[1] != bid):
            continue
        advance_backup(st, c, bid)
        if b.get("lost") and b["polls"] >= 2:
            b["forgotten"] = True
            continue  # the primary meta restarted: the backup state was in memory only
        rows.append([bid, b["app_name"], b["start"], b["end"], b["status"], b["provider"], b["path"]])
    print(table(["BackupID", "AppName", "StartTime", "EndTime", "Status", "BackupProviderType", "BackupPath"],
                rows))


def admin_restore(st, cname, c, rest):
    try:
        o, _ = getopt_short(rest, "c:a:i:t:b:n:r:sp:")
    except ValueError as ex:
        print("Error: %s" % ex)
        sys.exit(1)
    for k in "caitb":
        if k not in o:
            print("Error: missing required flag -%s" % k)
            sys.exit(1)
    new_name = o.get("n", o["a"])
    if new_name in c["apps"]:
        print("Error: restore app failed: ERR_INVALID_PARAMETERS")
        sys.exit(1)
    root = provider_root(st, o["b"])
    base = os.path.join((root or "/nonexistent") + o.get("r", ""), o["c"], o["t"], "%s_%s" % (o["a"], o["i"]))
    try:
        with open(os.path.join(base, "meta", "app_metadata")) as f:
            meta = json.load(f)
        with open(os.path.join(base, "data.json")) as f:
            data = json.load(f)
    except OSError:
        print("Error: restore app failed: couldn't find valid app metadata (ERR_OBJECT_NOT_FOUND)")
        sys.exit(1)
    if take_fault(st, "restore_fail"):
        print("Error: restore app failed: ERR_FILE_OPERATION_FAILED")
        sys.exit(1)
    new_id = c.get("next_app_id", 10)
    c["next_app_id"] = new_id + 1
    c["apps"][new_name] = {"app_id": new_id, "partition_count": meta["partition_count"], "rows": data,
                           "envs": {"restore.app_id": o["i"], "restore.backup_id": o["t"],
                                    "restore.cluster_name": o["c"], "restore.app_name": o["a"]}}
    print("new AppID: %d" % new_id)
    print("table %s is healthy now" % new_name)


# ------------------------------------------------------------------------------------------------
# pegasus_split: the pegasus-spark offline split double
# ------------------------------------------------------------------------------------------------

def split_main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--backup", required=True, help="<provider dir>/<path>/<root>/<backup_id>/<app>_<id>")
    ap.add_argument("--out", required=True, help="<provider dir>/<root_path>/<cluster>/<app>")
    ap.add_argument("--app-id", type=int, required=True)
    ap.add_argument("--partition-count", type=int, required=True)
    a = ap.parse_args(argv[1:])
    with open(os.path.join(a.backup, "data.json")) as f:
        data = json.load(f)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "bulk_load_info"), "w") as f:
        json.dump({"cluster": "", "app_id": a.app_id, "app_name": os.path.basename(a.out),
                   "partition_count": a.partition_count}, f)
    with open(os.path.join(a.out, "data.json"), "w") as f:
        json.dump(data, f)
    print("split %d rows into %d partitions" % (len(data), a.partition_count))


# ------------------------------------------------------------------------------------------------
# pegasus_http: meta and replica HTTP endpoints of every cluster
# ------------------------------------------------------------------------------------------------

def http_main(argv):
    import http.server
    import socketserver
    import threading
    import urllib.parse

    roles = {}  # port -> (cluster, "meta" | "replica")
    servers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, status, body, ctype="application/json"):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            port = self.server.server_address[1]
            cname, role = roles[port]
            u = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
            with open(os.path.join(STATE_DIR, "http.log"), "a") as f:
                f.write("%s %s %s\n" % (cname, role, self.path))
            with State() as st:
                c = st["clusters"][cname]
                status, body = route(st, c, cname, role, port, u.path, q)
            self.reply(status, body)

    def route(st, c, cname, role, port, path, q):
        v = version_tuple(st.get("version"))
        me = "127.0.0.1:%d" % port
        if role == "meta" and path.startswith("/meta/"):
            if path == "/meta/app":
                name = q.get("name", [None])[0]
                if not name:
                    return 400, "name should not be empty"
                app = c["apps"].get(name)
                if app is None:
                    return 404, 'table not found: "%s"' % name
                out = {"general": {"app_name": name, "app_id": str(app["app_id"]),
                                   "partition_count": str(app["partition_count"]), "max_replica_count": "3"}}
                if "detail" in q:
                    bad = app.get("unhealthy", 0)
                    out["healthy"] = {"fully_healthy_partition_count": str(app["partition_count"] - bad),
                                      "unhealthy_partition_count": str(bad),
                                      "write_unhealthy_partition_count": str(bad),
                                      "read_unhealthy_partition_count": "0"}
                return 200, json.dumps(out)
            if path == "/meta/nodes":
                details = {n: {"address": n, "status": "ALIVE"} for n in c["replicas"]}
                return 200, json.dumps({"details": details, "summary": {"total_node_count": str(len(details)),
                                        "alive_node_count": str(len(details)), "unalive_node_count": "0"}})
            if path == "/meta/app_envs":
                app = c["apps"].get(q.get("name", [""])[0])
                if app is None:
                    return 404, 'table not found: "%s"' % q.get("name", [""])[0]
                return 200, json.dumps(app.get("envs", {}))
            return 404, "not found"
        if role == "replica":
            cfg = c.setdefault("node_config", {}).setdefault(me, {})
            if path == "/updateConfig":
                if v < (2, 4):
                    return 404, "not found"
                for k, vals in q.items():
                    if k not in ("hdfs_write_limit_rate_mb_per_sec", "hdfs_read_limit_rate_mb_per_sec"):
                        return 200, json.dumps({"update_status": "ERR_OBJECT_NOT_FOUND: %s is not found" % k})
                    cfg[k] = int(vals[0])
                    cfg.setdefault("history", []).append("%s=%s" % (k, vals[0]))
                return 200, json.dumps({"update_status": "ERR_OK"})
            m = c.setdefault("metrics", {})
            advance_traffic(st)
            failed_total, failed_rate = fails_of(st, cname)
            rejected = st.get("faults", {}).get("non_idempotent", {}).get(cname, 0)
            if path == "/metrics" and v >= (2, 6):
                ents = []
                upload = upload_metric(st, c) if "backup_file_upload_max_bytes" in q.get("metrics", [""])[0] else 0
                for name, app in c["apps"].items():
                    total, _ = traffic_of(st, cname, name)
                    for pidx in range(min(app["partition_count"], 2)):
                        ents.append({"type": "replica", "id": "replica@%d.%d" % (app["app_id"], pidx),
                                     "attributes": {"table_id": str(app["app_id"]), "partition_id": str(pidx)},
                                     "metrics": [{"name": "backup_file_upload_max_bytes",
                                                  "value": upload if pidx == 0 else upload // 2},
                                                 {"name": "dup_pending_mutations", "value": 0},
                                                 {"name": "get_requests", "value": int(total * 0.7 / 2)},
                                                 {"name": "put_requests", "value": int(total * 0.3 / 2)},
                                                 {"name": "dup_rejected_non_idempotent_write_requests",
                                                  "value": int(rejected * 10 * (time.time() - 1.7e9))}]})
                ents.append({"type": "server", "id": "server", "attributes": {},
                             "metrics": [{"name": "read_failed_requests", "value": int(failed_total / 2)},
                                         {"name": "write_failed_requests", "value": int(failed_total / 2)}]})
                want = set((q.get("metrics", [""])[0]).split(",")) - {""}
                types = set((q.get("types", [""])[0]).split(",")) - {""}
                out = []
                for e in ents:
                    if types and e["type"] not in types:
                        continue
                    ms = [x for x in e["metrics"] if not want or x["name"] in want]
                    if ms:
                        out.append(dict(e, metrics=ms))
                return 200, json.dumps({"cluster": cname, "role": "replica", "host": "127.0.0.1", "port": port,
                                        "timestamp_ns": time.time_ns(), "entities": out})
            if path == "/perfCounter" and v < (2, 6):
                name = q.get("name", [""])[0]
                upload_name = "replica*eon.replica_stub*cold.backup.max.upload.file.size"
                values = {upload_name: upload_metric(st, c) if name == upload_name else 0,
                          "replica*eon.replica_stub*recent.read.fail.count": int(failed_rate / 2),
                          "replica*eon.replica_stub*recent.write.fail.count": int(failed_rate / 2),
                          "replica*eon.replica_stub*dup.pending_mutations_count": 0}
                for app_name, app in c["apps"].items():
                    _, rate = traffic_of(st, cname, app_name)
                    for pidx in range(app["partition_count"]):
                        share = rate / app["partition_count"]
                        values["replica*app.pegasus*get_qps@%d.%d" % (app["app_id"], pidx)] = share * 0.7
                        values["replica*app.pegasus*put_qps@%d.%d" % (app["app_id"], pidx)] = share * 0.3
                    values["replica*eon.replica*dup.disabled_non_idempotent_write_count@%s" % app_name] = rejected
                if name not in values:
                    return 200, json.dumps({"name": name, "value": 0, "type": "", "description": "not found"})
                return 200, json.dumps({"name": name, "value": values[name], "type": "NUMBER",
                                        "description": ""}, separators=(",", ":"))
            return 404, "not found"
        return 404, "not found"

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    with State() as st:
        layout = {}
        for cname, c in st["clusters"].items():
            srv = Server(("127.0.0.1", 0), Handler)
            servers.append(srv)
            meta = "127.0.0.1:%d" % srv.server_address[1]
            roles[srv.server_address[1]] = (cname, "meta")
            reps = []
            for _ in range(c.get("replica_count", 2)):
                r = Server(("127.0.0.1", 0), Handler)
                servers.append(r)
                roles[r.server_address[1]] = (cname, "replica")
                reps.append("127.0.0.1:%d" % r.server_address[1])
            c["metas"], c["replicas"] = meta, reps
            layout[cname] = {"metas": meta, "replicas": reps}
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    with open(os.path.join(STATE_DIR, "http.json.tmp"), "w") as f:
        json.dump(layout, f)
    os.replace(os.path.join(STATE_DIR, "http.json.tmp"), os.path.join(STATE_DIR, "http.json"))
    try:
        while os.path.exists(os.path.join(STATE_DIR, "state.json")):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
