"""The admin-cli double (one-shot mode, `admin-cli -m metas <command> args`, §3.2, §3.5) and the
pegasus-spark offline split double (§4.2); see pegasus_double.py."""

import json
import os
import sys
import time

from pegasus_double import (BOLD, RESET, State, advance_backup, backup_dir, cluster_by_metas, getopt_short, log_call,
                            provider_root, take_fault)


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
