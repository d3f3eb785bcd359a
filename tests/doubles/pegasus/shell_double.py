"""The Pegasus shell double (see pegasus_double.py): `pegasus_shell <config.ini> <cluster>`,
commands on stdin, banner on stdout, many results on stderr, exit code always 0
(../shared/reference/pegasus.md §2, §4.1, §5.2, §7)."""

import json
import os
import sys
import time

from pegasus_double import (GREEN, RESET, YELLOW, State, getopt_short, hash_partition, log_call, provider_root,
                            read_ini, split_args, take_fault, version_tuple)


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


def shell_main(argv):
    config = argv[1] if len(argv) > 1 else "config.ini"
    cluster = argv[2] if len(argv) > 2 else "mycluster"
    Shell(config, cluster).run()
    sys.exit(0)  # dsn_exit(0): the exit code never says whether a command worked
