#!/usr/bin/env python3
"""A Stream Load sink that ingests infinitely fast: it reads every request body (chunked or with
a Content-Length), counts the rows by their delimiter, throws the bytes away and answers the way a
StarRocks BE answers a successful Stream Load (StreamLoadAction's JSON: Status, Label,
NumberTotalRows, NumberLoadedRows, LoadBytes). Used by bench/starrocks/stream.sh to measure
ferry's side of starrocks-sync (read the partition, encode CSV, send) without the double's ingest.

    sink.py PORT ROW_DELIMITER_BYTE   # e.g. sink.py 18031 2  (\\x02)

One line per request on stdout: label rows bytes seconds.
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
DELIM = bytes([int(sys.argv[2])])


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_PUT(self):
        t0 = time.monotonic()
        rows = 0
        size = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip(), 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(n)
                rows += data.count(DELIM)
                size += len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left > 0:
                data = self.rfile.read(min(left, 1 << 20))
                if not data:
                    break
                rows += data.count(DELIM)
                size += len(data)
                left -= len(data)
        label = self.headers.get("label", "")
        body = json.dumps({
            "TxnId": 1, "Label": label, "Status": "Success", "Message": "OK",
            "NumberTotalRows": rows, "NumberLoadedRows": rows, "NumberFilteredRows": 0,
            "NumberUnselectedRows": 0, "LoadBytes": size,
            "LoadTimeMs": int((time.monotonic() - t0) * 1000),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"{label} {rows} {size} {time.monotonic() - t0:.3f}", flush=True)


ThreadingHTTPServer(("127.0.0.1", PORT), Sink).serve_forever()
