#!/usr/bin/env python3
"""Writes the keys the benchmark's gets read: pre-0 .. pre-(KEYS-1), each once, with
VALUE_SIZE-byte values, over a few keep-alive connections. Every write must succeed:
wrk cannot do this exactly (it wastes thread 0's first request on a check, and runs for
its whole duration even when a script stops), so a get phase would read missing keys.

usage: preload.py API URL   (API: dynamo or etcd; KEYS, VALUE_SIZE from the environment)
"""
import base64
import http.client
import os
import sys
import threading
import urllib.parse

api, url = sys.argv[1], sys.argv[2]
keys = int(os.environ.get("KEYS", "10000"))
value = b"x" * int(os.environ.get("VALUE_SIZE", "100"))
parts = urllib.parse.urlsplit(url)
failures = []


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def worker(first: int, step: int) -> None:
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    for i in range(first, keys, step):
        key = f"pre-{i}"
        for attempt in range(5):
            try:
                if api == "etcd":
                    body = '{"key":"%s","value":"%s"}' % (b64(key.encode()), b64(value))
                    connection.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
                else:
                    connection.request("PUT", "/kv/" + key, value)
                response = connection.getresponse()
                response.read()
                if response.status in (200, 204):
                    break
                error = f"{key}: HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                error = f"{key}: {exc}"
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        else:
            failures.append(error)
    connection.close()


threads = [threading.Thread(target=worker, args=(i, 8)) for i in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
if failures:
    print(f"preload: {len(failures)} of {keys} keys failed, e.g. {failures[0]}", file=sys.stderr)
    sys.exit(1)
