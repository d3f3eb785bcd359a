"""The meta and replica HTTP endpoints of every cluster (§6, §8); see pegasus_double.py."""

import json
import os
import time

import dup_double
from pegasus_double import (STATE_DIR, VOLATILE, State, advance_traffic, fails_of, perf_values, read_live_counter,
                            traffic_of, upload_metric, version_tuple)


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
                values = perf_values(st, c, cname, upload=name == "replica*eon.replica_stub*cold.backup.max.upload.file.size")
                if name in VOLATILE:
                    values[name] = read_live_counter(st, cname, me, name)
                if name not in values:
                    return 200, json.dumps({"name": name, "value": 0, "type": "", "description": "not found"})
                return 200, json.dumps({"name": name, "value": values[name], "type": "NUMBER",
                                        "description": ""}, separators=(",", ":"))
            if path == "/replica/duplication" and v >= (2, 4):
                # replica/replica_http_service.cpp query_duplication_handler (see dup_double).
                appid = q.get("appid", [""])[0]
                if not appid:
                    return 400, "appid should not be empty"
                if not appid.isdigit():
                    return 400, "invalid appid=%s" % appid
                return dup_double.replica_states(st, cname, me, int(appid), v)
            if path == "/replica/data_version" and v >= (2, 4):
                # replica/replica_http_service.cpp query_app_data_version_handler (see dup_double).
                appid = q.get("app_id", [""])[0]
                if not appid:
                    return 400, "app_id should not be empty"
                if not appid.isdigit():
                    return 400, "invalid app_id=%s" % appid
                return dup_double.data_versions(st, cname, int(appid))
            if path == "/config" and v >= (2, 4):
                # http/config_http_service.cpp get_config: the flag as a table_printer JSON whose
                # values are strings (utils/flags.cpp to_json); an unknown one gives the error text
                # with status 200. hdfs_write_limit_rate_mb_per_sec: DSN_DEFINE_uint32(replication,
                # ..., 200, ...) in block_service/hdfs/hdfs_service.cpp.
                name = q.get("name", [""])[0]
                if name not in ("hdfs_write_limit_rate_mb_per_sec", "hdfs_read_limit_rate_mb_per_sec"):
                    return 200, "ERR_OBJECT_NOT_FOUND: %s is not found" % name
                value = cfg.get(name, c.get("config_defaults", {}).get(name, 200))
                return 200, json.dumps({"name": name, "section": "replication", "type": "FV_UINT32",
                                        "tags": "flag_tag::FT_MUTABLE", "description": "hdfs write limit(MB/s)",
                                        "value": str(value)}, separators=(",", ":"))
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
