#!/usr/bin/env python3
"""Hostile-client probes against one running node, reporting its resident memory.

    scripts/resource-probes.py HTTP_PORT PEER_PORT PID

1. unread: 3 connections pipeline 700 GETs of a 1 MiB value each and never read;
2. prehello: 40 peer connections each send 15 MiB of one frame before any hello;
3. slowloris: a connection sends a header byte every 0.5 s: how long until closed;
4. short body: Content-Length 100 with 3 bytes sent: what comes back, and when.
Loopback only; every probe stops by itself.
"""
import socket, sys, time, urllib.request

http_port, peer_port, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def rss_mb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024

def watch(seconds):
    peak, end = rss_mb(), time.time() + seconds
    while time.time() < end:
        time.sleep(0.2)
        peak = max(peak, rss_mb())
    return peak

def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s

request = urllib.request.Request(f"http://127.0.0.1:{http_port}/kv/big", data=b"a" * (1 << 20), method="PUT")
urllib.request.urlopen(request).read()
print(f"baseline: {rss_mb()} MB")

clients = [connect(http_port, 4096) for _ in range(3)]
for c in clients:
    c.sendall(b"GET /kv/big HTTP/1.1\r\nHost: n\r\n\r\n" * 700)
print(f"unread 1 MiB responses (3 x 700 pipelined GETs): peak {watch(6)} MB")
for c in clients:
    c.close()

peers = []
for _ in range(40):
    s = connect(peer_port)
    try:
        s.sendall((15 << 20).to_bytes(4, "big"))
        s.sendall(b"\0" * (15 << 20))
    except OSError:
        pass
    peers.append(s)
print(f"40 peer connections sending 15 MiB before hello: peak {watch(3)} MB")
for s in peers:
    s.close()

slow, start, closed = connect(http_port), time.time(), False
try:
    for b in b"GET /kv/x HTTP/1.1\r\nX-Slow: " + b"a" * 200:
        slow.send(bytes([b]))
        time.sleep(0.5)
        if time.time() - start > 90:
            break
except OSError:
    closed = True
print(f"slowloris: closed after {time.time() - start:.1f} s" if closed else "slowloris: still open after 90 s")

short, start = connect(http_port), time.time()
short.sendall(b"PUT /kv/x HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
short.settimeout(90)
try:
    answer = short.recv(4096).split(b"\r\n")[0].decode(errors="replace")
    print(f"short body: {answer!r} after {time.time() - start:.1f} s")
except TimeoutError:
    print("short body: no answer in 90 s")
print(f"after the probes: {rss_mb()} MB")
