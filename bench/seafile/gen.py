#!/usr/bin/env python3
"""A Seafile installation for the benchmark, in the layout `ferry demo --generate-only` writes.

Usage: gen.py ROOT LIBRARIES [COMMITS FS BLOCKS]   (per library; default 50 300 650)

Writes ROOT/seafile-data/storage/{commits,fs,blocks}/<repo-uuid>/<id[0:2]>/<id[2:40]>:
- blocks: random bytes, 4-64 KiB, id = SHA-1 of the bytes (as Seafile's blocks);
- fs: zlib-compressed JSON file objects (type 1, the block ids of 1-30 of the library's blocks)
  and directory objects (type 3, 2-20 dirents), id = SHA-1 of the uncompressed JSON;
  about 200 B - 2 KiB stored;
- commits: uncompressed JSON of about 400 B with Seafile's fields, a random 40-hex id.
Deterministic (seeded). Prints "objects bytes" of what it wrote. The seafile.conf files are
written by run.sh (they need the server's port and keys).
"""
import hashlib
import json
import os
import random
import sys
import uuid
import zlib

root, libs = sys.argv[1], int(sys.argv[2])
n_commits, n_fs, n_blocks = (int(x) for x in (sys.argv[3:6] or (50, 300, 650)))
rnd = random.Random(0x5EAF11E5)
storage = os.path.join(root, "seafile-data", "storage")
count = 0
total = 0


def put(dtype, repo, oid, data):
    global count, total
    d = os.path.join(storage, dtype, repo, oid[:2])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, oid[2:]), "wb") as f:
        f.write(data)
    count += 1
    total += len(data)


def hex40():
    return "%040x" % rnd.getrandbits(160)


for _ in range(libs):
    repo = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    blocks = []
    for _ in range(n_blocks):
        data = rnd.randbytes(rnd.randint(4 << 10, 64 << 10))
        oid = hashlib.sha1(data).hexdigest()
        put("blocks", repo, oid, data)
        blocks.append((oid, len(data)))
    files, seen = [], set()
    i = 0
    while len(seen) < n_fs:
        i += 1
        if i % 5 == 4 and files:  # a directory object every fifth fs object
            ents = rnd.sample(files, min(len(files), rnd.randint(2, 30)))
            obj = {"dirents": [{"id": fid, "mode": 33188, "modifier": "user@example.com",
                                "mtime": 1700000000 + rnd.randint(0, 10**7),
                                "name": "document-%d.bin" % k, "size": size}
                               for k, (fid, size) in enumerate(ents)],
                   "type": 3, "version": 1}
        else:
            picked = rnd.sample(blocks, rnd.randint(min(4, len(blocks)), min(60, len(blocks))))
            obj = {"block_ids": [b for b, _ in picked], "size": sum(s for _, s in picked),
                   "type": 1, "version": 1}
        raw = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        oid = hashlib.sha1(raw).hexdigest()
        if oid in seen:  # the same content is one object (Seafile deduplicates too)
            continue
        seen.add(oid)
        put("fs", repo, oid, zlib.compress(raw))
        if obj["type"] == 1:
            files.append((oid, obj["size"]))
    parent = None
    for c in range(n_commits):
        oid = hex40()
        obj = {"commit_id": oid, "root_id": hex40(), "repo_id": repo, "creator_name": "user@example.com",
               "creator": "0" * 40, "description": "Modified \"report-%d.docx\"" % rnd.randint(0, 999),
               "ctime": 1700000000 + c * 60, "parent_id": parent, "second_parent_id": None,
               "repo_name": "Library %s" % repo[:8], "repo_desc": "", "repo_category": None,
               "device_name": "laptop-%d" % rnd.randint(1, 9), "client_version": "9.0.4",
               "version": 1}
        put("commits", repo, oid, json.dumps(obj, separators=(",", ":")).encode())
        parent = oid
print(count, total)
