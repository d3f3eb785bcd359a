"""Duplication in the Pegasus double: decrees per partition, and the three outputs that show them
(shell `query_dup -d`, the replica's /replica/duplication, 2.6's partition_states). See
pegasus_double.py. Each behaviour cites the upstream file of apache/incubator-pegasus it follows.

Model (one query_dup = one step of time): every partition has a last committed decree and the
decree the duplication has confirmed (shipped to the remote cluster and acknowledged). While
clients may write to the table (no `replica.deny_client_request` ending in *write or *all) and
traffic reaches it, the committed decree keeps moving, so the confirmed one stays at least one
mutation behind: the duplication only drains to confirmed == last committed once writes are
blocked, which is why admin-cli's table-migrator blocks writes first
(admin-cli/executor/toolkits/tablemigrator/migrator.go, MigrateTable steps 4 and 5)."""

import json
import time

SHIP_PER_POLL = 150  # mutations shipped and confirmed per step


def writes_open(app):
    """replica.deny_client_request <action>*<write|all> rejects writes (replica/replica_2pc.cpp,
    on_client_write checks _deny_client; the env is parsed in replica_config.cpp)."""
    deny = app.get("envs", {}).get("replica.deny_client_request", "")
    return not (deny.endswith("*write") or deny.endswith("*all"))


def clients_write(st, cname, app_name, app):
    t = st.get("traffic")
    return bool(t) and t["source"] == cname and t["table"] == app_name and writes_open(app)


def advance(st, cname, app_name):
    """One step of every duplication of the table."""
    app = st["clusters"][cname]["apps"][app_name]
    flowing = clients_write(st, cname, app_name, app)
    if not writes_open(app) and st.get("faults", {}).get("replicas_drop_dups"):
        for d in app.get("dups", {}).values():
            d["on_replicas"] = False
    for d in app.get("dups", {}).values():
        d["polls"] += 1
        pc = app["partition_count"]
        committed = d.setdefault("committed", [1000 + p for p in range(pc)])
        confirmed = d.setdefault("confirmed", [c - 500 for c in committed])
        if flowing:
            for p in range(pc):
                committed[p] += 10 + p
        if d["status"] == "DS_PREPARE":
            # The checkpoint is copied first (add_dup -s), then the plog (DS_LOG).
            if d["polls"] >= 2:
                d["status"] = "DS_LOG"
                st["clusters"][d["remote"]]["apps"][d["remote_app"]]["rows"].update(app["rows"])
            continue
        if d["status"] != "DS_LOG":
            continue
        for p in range(pc):
            cap = committed[p] - (1 + p % 3) if flowing else committed[p]
            confirmed[p] = max(confirmed[p], min(cap, confirmed[p] + SHIP_PER_POLL))
        st["clusters"][d["remote"]]["apps"][d["remote_app"]]["rows"].update(app["rows"])


def drained(app):
    """Every duplication of the table has confirmed its last committed decree."""
    for d in app.get("dups", {}).values():
        if d.get("status") != "DS_LOG":
            return False
        if any(c < m for c, m in zip(d.get("confirmed", []), d.get("committed", []))):
            return False
    return True


def entry_json(d, dupid, version):
    """duplication_entry_to_json (src/common/duplication_common.cpp; v2.4 under src/rdsn/src/common):
    dupid, create_ts, remote, status, fail_mode, progress {pidx: confirmed decree}; from 2.6 also
    remote_app_name, remote_replica_count and partition_states {pidx: {confirmed_decree,
    last_committed_decree}}."""
    committed = d.get("committed", [])
    confirmed = d.get("confirmed", [])
    e = {"dupid": int(dupid), "create_ts": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(dupid))),
         "remote": d["remote"], "status": d["status"], "fail_mode": "FAIL_SLOW",
         "progress": {str(p): c for p, c in enumerate(confirmed)}}
    if version >= (2, 6):
        e["remote_app_name"] = d["remote_app"]
        e["remote_replica_count"] = 3
        e["partition_states"] = {str(p): {"confirmed_decree": confirmed[p], "last_committed_decree": committed[p]}
                                 for p in range(len(committed))}
    return e


def query_response(app, version):
    """duplication_query_response_to_string: json["appid"] and json[std::to_string(i)] for the
    i-th entry counting from 1 (a sequence number, NOT the dupid); nlohmann's json.dump() is
    compact with sorted keys, and prints `null` when the table has no duplication (nothing was
    assigned to the json value)."""
    dups = app.get("dups", {})
    if not dups:
        return "null"
    out = {"appid": app["app_id"]}
    for i, dupid in enumerate(sorted(dups, key=int), start=1):
        out[str(i)] = entry_json(dups[dupid], dupid, version)
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def on_replicas(d):
    """The duplications the replica servers hold. A replica learns of a duplication, and forgets
    it, only through duplication_sync with the meta server every DUPLICATION_SYNC_PERIOD_SECOND
    (10 s; replica/duplication/duplication_sync_timer.cpp), and drops a duplicator whose entry the
    meta no longer covers (replica_duplicator_manager.cpp sync_duplication, "state is inconsistent
    with meta-server": _duplications.erase). "on_replicas": false in a dup's state is such a
    duplication: removed on the replica servers while the shell's query_dup still lists it (the
    meta erases it from app->duplications only once its ZooKeeper node is deleted,
    meta_duplication_service.cpp do_modify_duplication). The "replicas_drop_dups" fault drops every
    duplication of the table that way as soon as its writes are blocked."""
    return d.get("on_replicas", True)


def replica_states(st, cname, node, app_id, version):
    """GET /replica/duplication?appid=N on one replica server (replica/replica_http_service.cpp
    query_duplication_handler, v2.4.0 src/rdsn/src/replica/replica_http_service.cpp:27-70, v2.5.0
    src/replica/replica_http_service.cpp:39-82; duplication_sync_timer.cpp get_dup_states): the
    primaries of the table on this node, json[dupid][gpid] = {duplicating,
    not_confirmed_mutations_num = last_committed - confirmed, not_duplicated_mutations_num,
    fail_mode} (+ remote_app_name on 2.6). 404 "no primary for app [appid=N]" when the node holds
    no primary of the table (get_dup_states leaves app_found false, v2.4.0 :48-51), and 404 "no
    duplication assigned for app [appid=N]" when its primaries hold no duplicator at all (states
    empty, v2.4.0 :53-56): a duplication the replica servers no longer hold (see on_replicas)."""
    c = st["clusters"][cname]
    nodes = c["replicas"]
    app = next((a for a in c["apps"].values() if a["app_id"] == app_id), None)
    idx = nodes.index(node)
    primaries = [] if app is None else [p for p in range(app["partition_count"]) if p % len(nodes) == idx]
    if not primaries:
        return 404, "no primary for app [appid=%d]" % app_id
    held = {k: d for k, d in app.get("dups", {}).items() if on_replicas(d)}
    if not held:
        return 404, "no duplication assigned for app [appid=%d]" % app_id
    out = {}
    for dupid, d in held.items():
        committed = d.get("committed") or [1000 + p for p in range(app["partition_count"])]
        confirmed = d.get("confirmed") or [x - 500 for x in committed]
        for p in primaries:
            gap = max(0, committed[p] - confirmed[p])
            s = {"duplicating": d["status"] != "DS_PAUSE", "not_confirmed_mutations_num": gap,
                 "not_duplicated_mutations_num": gap, "fail_mode": "FAIL_SLOW"}
            if version >= (2, 6):
                s["remote_app_name"] = d["remote_app"]
            out.setdefault(str(dupid), {})["%d.%d" % (app_id, p)] = s
    return 200, json.dumps(out, separators=(",", ":"), sort_keys=True)


def data_versions(st, cname, app_id):
    """GET /replica/data_version?app_id=N on one replica server (replica/replica_http_service.cpp
    query_app_data_version_handler, v2.4.0 src/rdsn/src/replica/replica_http_service.cpp:72-107,
    v2.5.0 src/replica/replica_http_service.cpp:84-119; replica_stub.cpp query_app_data_version):
    every replica of the table on the node (the double's nodes hold every partition: 3 replicas
    on at most 3 nodes), json[pidx] = {"data_version": "<n>"} (std::to_string: a string),
    nlohmann's compact dump with sorted keys; 404 "app_id=N not found" when the node holds no
    replica of it. The version is the table's "data_version" in the state (default 1,
    PEGASUS_DATA_VERSION_MAX, which pegasus_server_impl.cpp writes on a new replica; tables from
    before 1.11 keep 0)."""
    c = st["clusters"][cname]
    app = next((a for a in c["apps"].values() if a["app_id"] == app_id), None)
    if app is None:
        return 404, "app_id=%d not found" % app_id
    v = str(app.get("data_version", 1))
    out = {str(p): {"data_version": v} for p in range(app["partition_count"])}
    return 200, json.dumps(out, separators=(",", ":"), sort_keys=True)
