#!/usr/bin/env python3
"""A Seafile storage for the benchmark: ROOT/seafile-data/storage/{commits,fs,blocks}/<repo>/<ab>/<cdef...>.
Usage: gen.py ROOT LIBRARIES  (each library: 50 commits, 300 fs objects, 650 blocks)."""
import hashlib, json, os, random, sys, uuid, zlib

root, libs = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
storage = os.path.join(root, "seafile-data", "storage")
def put(dtype, repo, data, oid=None):
    oid = oid or hashlib.sha1(data).hexdigest()
    d = os.path.join(storage, dtype, repo, oid[:2])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, oid[2:]), "wb") as f:
        f.write(data)
    return oid
n = 0
for _ in range(libs):
    repo = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    for _ in range(650):
        put("blocks", repo, rnd.randbytes(rnd.randint(4096, 16384))); n += 1
    for i in range(300):
        obj = json.dumps({"block_ids": [hashlib.sha1(rnd.randbytes(8)).hexdigest() for _ in range(rnd.randint(1, 20))], "size": i, "type": 1, "version": 1}).encode()
        put("fs", repo, zlib.compress(obj), hashlib.sha1(obj).hexdigest()); n += 1
    for i in range(50):
        put("commits", repo, json.dumps({"commit_id": "x", "repo_id": repo, "ctime": i, "description": "c" * rnd.randint(50, 300)}).encode(), "%040x" % rnd.getrandbits(160)); n += 1
print(n)
