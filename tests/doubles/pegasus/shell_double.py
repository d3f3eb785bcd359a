"""The Pegasus shell double (see pegasus_double.py): `pegasus_shell <config.ini> <cluster>`,
commands on stdin, banner on stdout, many results on stderr, exit code always 0
(../shared/reference/pegasus.md §2, §4.1, §5.2, §7)."""

import json
import os
import sys
import time

import dup_double
from pegasus_double import (GREEN, RED, RESET, VOLATILE, YELLOW, State, advance_traffic, getopt_short, hash_partition,
                            log_call, note_zk, perf_values, provider_root, read_ini, snapshot_counters, split_args,
                            take_fault, version_tuple)


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
            note_zk(st)
            apps[self.app].setdefault("envs", {})[rest[0]] = rest[1]
            st.setdefault("events", []).append("%s.%s %s=%s" % (self.cluster, self.app, rest[0], rest[1]))
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
            if opts.get("l"):  # -l host:port,...: only these nodes (shell/commands/node_management.cpp remote_command)
                nodes = [n for n in nodes if n in opts["l"].split(",")]
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
                elif cmd == "perf-counters-by-substr" and self.version < (2, 6):
                    # perf_counter/perf_counters.cpp: list_snapshot_by_literal reads the snapshot the
                    # reporter took last (it resets nothing); perf_counter_utils.h perf_counter_info
                    # {result, timestamp, timestamp_str, counters: [{name, type, value}]}.
                    advance_traffic(st)
                    ts, values = snapshot_counters(st, self.cluster, n, perf_values(st, c, self.cluster))
                    counters = [{"name": k, "type": "COUNTER_TYPE_VOLATILE_NUMBER" if k in VOLATILE else
                                 ("COUNTER_TYPE_RATE" if "_qps@" in k else "COUNTER_TYPE_NUMBER"), "value": float(v)}
                                for k, v in sorted(values.items()) if any(sub in k for sub in cargs)]
                    results[n] = (True, json.dumps({"result": "OK", "timestamp": ts, "timestamp_str": time.strftime(
                        "%Y-%m-%d %H:%M:%S", time.localtime(ts)), "counters": counters}, separators=(",", ":")))
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
        if o.get("u"):
            # data_operations.cpp copy_data (v2.4: dsn_config_get_value_int64(
            # "threadpool.THREAD_POOL_DEFAULT", "worker_count", 0, ...); v2.5 and master:
            # DSN_DEFINE_int32(threadpool.THREAD_POOL_DEFAULT, worker_count, 0, ...)): a config
            # without the key reads 0. The refusal is an INFO line without a newline, and the
            # command returns true (no USAGE).
            e("WARN: used multi_set will lose accurate ttl time per value! ttl time will be assign the max value of "
              "this batch data.", True)
            workers = int(self.config.get("threadpool.THREAD_POOL_DEFAULT", {}).get("worker_count", "0"))
            e("INFO: THREAD_POOL_DEFAULT worker_count = %d" % workers, True)
            if workers <= len(splits):
                self.err.write("INFO: THREAD_POOL_DEFAULT worker_count should greater than source app scanner count "
                               "%d" % len(splits))
                self.err.flush()
                return
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
        """src/shell/commands/data_operations.cpp count_data, identical from v2.0.0 to master:
        getopt "cp:b:t:h:x:s:y:v:z:dan:r:"; `precise = false` by default, which prints the
        RocksDB estimate per partition (table_printer "count_data", title pidx, column
        estimate_count, a "(total:N)" row, tabular on stdout) without scanning; any other
        option without -c is refused; -c scans and ends with "Count done, total N rows." on
        stderr (print_current_scan_state)."""
        try:
            o, _ = getopt_short(rest, "cp:b:t:h:x:s:y:v:z:dan:r:")
        except ValueError as ex:
            self.p("count_data: %s" % ex, err=True)
            self.p("USAGE: count_data [-c|--precise] [-p|--partition num] ...", err=True)
            return
        if not o.get("c") and o:
            self.p("ERROR: you must input [-c|--precise] flag when you expect to get precise result by scaning all "
                   "record online", err=True)
            self.p("USAGE: count_data [-c|--precise] [-p|--partition num] ...", err=True)
            return
        with State() as st:
            app = st["clusters"][self.cluster]["apps"].get(self.app)
        if app is None:
            self.p("ERROR: get app %s partition count failed: ERR_OBJECT_NOT_FOUND" % self.app, err=True)
            return
        pc, keys = app["partition_count"], sorted(app["rows"])
        if not o.get("c"):
            # rdb_estimate_num_keys: RocksDB's estimate, which counts overwritten and deleted keys
            # until compaction (here: 7 more than there are per partition).
            rows = [(str(i), sum(1 for k in keys if hash_partition(k, pc) == i) + 7) for i in range(pc)]
            rows.append(("(total:%d)" % pc, sum(n for _, n in rows)))
            w0 = max(len("pidx"), *(len(r[0]) for r in rows)) + 2
            w1 = max(len("estimate_count"), *(len(str(r[1])) for r in rows)) + 2
            self.p("[count_data]")
            for name, n in [("pidx", "estimate_count")] + rows:
                self.p(str(name).ljust(w0) + str(n).ljust(w1))
            return
        e = self.p
        e("INFO: cluster_name = %s" % self.cluster, True)
        e("INFO: app_name = %s" % self.app, True)
        e("INFO: prepare scanners succeed, split_count = %d" % pc, True)
        e("INFO: processed for 1 seconds, (%d/%d) splits, total %d rows, last second %d rows"
          % (pc, pc, len(keys), len(keys)), True)
        for i in range(pc):
            e("INFO: split[%d]: %d rows" % (i, sum(1 for k in keys if hash_partition(k, pc) == i)), True)
        e("Count done, total %d rows." % len(keys), True)

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
        """src/shell/commands/duplication.cpp add_dup: 2.3 `-f` (freeze), 2.4/2.5 `-s|--sst`,
        2.6 also `-a|--remote_app_name` and `-r|--remote_replica_count`, with their messages."""
        flags = "sa:r:" if self.version >= (2, 6) else ("s" if self.version >= (2, 4) else "f")
        try:
            o, pos = getopt_short(rest, flags)
        except ValueError as ex:
            self.p("unknown flag %s" % ex, err=True)
            self.p("USAGE: add_dup <app_name> <remote_cluster_name> [-s|--sst]", err=True)
            return
        if len(pos) != 2:
            self.p("missing param <remote_cluster_name>" if len(pos) == 1 else "missing param <app_name>", err=True)
            self.p("USAGE: add_dup <app_name> <remote_cluster_name> [-s|--sst]", err=True)
            return
        app_name, remote = pos
        if remote == self.cluster:
            self.p("illegal operation: adding duplication to itself [remote: %s]" % remote, err=True)
            return
        remote_app = o.get("a", app_name)
        ckpt = "true" if o.get("s") else "false"
        if self.version >= (2, 6):
            self.p("trying to add duplication [app_name: %s, remote_cluster_name: %s, is_duplicating_checkpoint: %s, "
                   "remote_app_name: %s, remote_replica_count: 0]" % (app_name, remote, ckpt, remote_app))

        def failed(code):
            if self.version >= (2, 6):
                self.p(RED + "adding duplication failed [app_name: %s, remote_cluster_name: %s, "
                       "is_duplicating_checkpoint: %s, remote_app_name: %s, remote_replica_count: 0, error: %s]"
                       % (app_name, remote, ckpt, remote_app, code) + RESET, err=True)
            else:
                self.p("adding duplication failed [app: %s, remote: %s, %s: %s, error: %s]"
                       % (app_name, remote, "checkpoint" if self.version >= (2, 4) else "freeze",
                          ckpt if self.version >= (2, 4) else "false", code), err=True)

        with State() as st:
            c = st["clusters"][self.cluster]
            app = c["apps"].get(app_name)
            if app is None:
                return failed("ERR_APP_NOT_EXIST")
            rc = st["clusters"].get(remote)
            if rc is None:
                return failed("ERR_INVALID_PARAMETERS")
            for dupid, d in app.get("dups", {}).items():
                if d["remote"] == remote:
                    if self.version >= (2, 6):
                        self.p(YELLOW + "duplication has been existing" + RESET + GREEN +
                               " [app_name: %s, remote_cluster_name: %s, appid: %d, dupid: %s, remote_app_name: %s, "
                               "remote_replica_count: 3]" % (app_name, remote, app["app_id"], dupid, d["remote_app"])
                               + RESET)
                    else:
                        failed("ERR_DUP_EXIST")
                    return
            if o.get("s"):
                if remote_app in rc["apps"]:
                    return failed("ERR_APP_EXIST")
                rc["apps"][remote_app] = {"app_id": rc.get("next_app_id", 10), "partition_count":
                                          app["partition_count"], "rows": {}, "envs": {}}
                rc["next_app_id"] = rc.get("next_app_id", 10) + 1
            elif remote_app not in rc["apps"]:
                return failed("ERR_APP_NOT_EXIST")
            # meta_duplication_service.cpp add_duplication: the dupid is the creation time in seconds.
            dupid = str(max([int(time.time())] + [int(k) + 1 for k in app.get("dups", {})]))
            app.setdefault("dups", {})[dupid] = {"remote": remote, "remote_app": remote_app,
                                                 "status": "DS_PREPARE" if o.get("s") else "DS_LOG", "polls": 0}
            appid = app["app_id"]
        if self.version >= (2, 6):
            self.p(GREEN + "adding duplication succeed [app_name: %s, remote_cluster_name: %s, appid: %d, dupid: %s, "
                   "is_duplicating_checkpoint: %s, remote_app_name: %s, remote_replica_count: 3]"
                   % (app_name, remote, appid, dupid, ckpt, remote_app) + RESET)
        else:
            self.p("adding duplication succeed [app: %s, remote: %s, appid: %d, dupid: %s], checkpoint: %s"
                   % (app_name, remote, appid, dupid, ckpt))

    def cmd_query_dup(self, rest):
        """duplication.cpp query_dup: `-d` prints "duplications of app [X] in detail:" and
        duplication_query_response_to_string's JSON (keyed by sequence number, see dup_double)."""
        try:
            o, pos = getopt_short(rest, "d")
        except ValueError as ex:
            self.p("unknown flag %s" % ex, err=True)
            return
        name = pos[0] if pos else None
        with State() as st:
            app = st["clusters"][self.cluster]["apps"].get(name)
            if app is None:
                self.p("querying duplications of app [%s] failed, error=ERR_APP_NOT_EXIST" % name, err=True)
                return
            dup_double.advance(st, self.cluster, name)
            text = dup_double.query_response(app, self.version)
        if o.get("d"):
            self.p("duplications of app [%s] in detail:" % name)
            self.p(text + "\n")
        else:
            self.p("duplications of app [%s] are listed as below:" % name)

    def cmd_remove_dup(self, rest):
        """duplication.cpp change_dup_status / handle_duplication_modify_response:
        "removing duplication(<id>) for app <X> succeed" (stdout), or "... failed, error=<e>"
        with " [duplication not found]" for ERR_OBJECT_NOT_FOUND (stderr)."""
        if len(rest) < 2:
            self.p("USAGE: remove_dup <app_name> <dup_id>", err=True)
            return
        name, dupid = rest[0], rest[1]
        op = "removing duplication(%s) for app %s" % (dupid, name)
        with State() as st:
            app = st["clusters"][self.cluster]["apps"].get(name)
            if app is None:
                self.p("%s failed, error=ERR_APP_NOT_EXIST" % op, err=True)
                return
            if dupid not in app.get("dups", {}):
                self.p("%s failed, error=ERR_OBJECT_NOT_FOUND [duplication not found]" % op, err=True)
                return
            del app["dups"][dupid]
            st.setdefault("events", []).append("remove_dup %s %s" % (name, dupid))
        self.p((GREEN if self.version >= (2, 6) else "") + "%s succeed" % op + (RESET if self.version >= (2, 6) else ""))


def shell_main(argv):
    config = argv[1] if len(argv) > 1 else "config.ini"
    cluster = argv[2] if len(argv) > 2 else "mycluster"
    Shell(config, cluster).run()
    sys.exit(0)  # dsn_exit(0): the exit code never says whether a command worked
