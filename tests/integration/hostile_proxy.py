#!/usr/bin/env python3
"""SOCKS5 servers that misbehave on purpose, for the shim lab (run on the proxy side).

hostile_proxy.py LOG MODE ADDR PORT [ARGS]
  slow DELAY_MS UP_ADDR UP_PORT  waits DELAY_MS after accepting, then relays both ways to a
                                 real proxy at UP_ADDR:UP_PORT (a slow but working proxy)
  silent                         accepts and reads, never answers
  tarpit                         never accepts: its queue is full, so SYNs are dropped
  reject-auth                    chooses username/password and rejects every attempt
Every accepted connection is logged as "MODE accept PEER"; each authentication attempt as
"auth attempt". Runs until killed.
"""
import socket
import sys
import threading
import time

LOCK = threading.Lock()


def log(path, line):
    with LOCK, open(path, "a") as f:
        f.write(line + "\n")


def relay(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_slow(c, delay_ms, up_addr, up_port):
    time.sleep(delay_ms / 1000.0)
    try:
        u = socket.create_connection((up_addr, up_port), 5)
    except OSError:
        c.close()
        return
    threading.Thread(target=relay, args=(u, c), daemon=True).start()
    relay(c, u)


def serve_silent(c):
    while c.recv(4096):
        pass


def recv_exact(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def serve_reject_auth(c, logpath):
    try:
        head = recv_exact(c, 2)
        recv_exact(c, head[1])
        c.sendall(b"\x05\x02")
        ver_ulen = recv_exact(c, 2)
        recv_exact(c, ver_ulen[1])
        plen = recv_exact(c, 1)[0]
        recv_exact(c, plen)
        log(logpath, "auth attempt")
        c.sendall(b"\x01\x01")
    except OSError:
        pass
    c.close()


def serve_http(c):
    # An HTTP server on the port a SOCKS5 proxy was expected at: it answers whatever it
    # reads with a 400, as web servers do with a request line they cannot parse.
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        time.sleep(0.5)
    except OSError:
        pass
    c.close()


def main():
    logpath, mode, addr, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    if mode == "tarpit":
        s.listen(0)
        fillers = [socket.socket() for _ in range(2)]
        for f in fillers:
            f.setblocking(False)
            try:
                f.connect((addr, port))
            except BlockingIOError:
                pass
        log(logpath, "tarpit ready")
        while True:
            time.sleep(3600)
    s.listen(64)
    log(logpath, "%s ready" % mode)
    while True:
        c, peer = s.accept()
        log(logpath, "%s accept %s" % (mode, peer[0]))
        if mode == "slow":
            args = (c, int(sys.argv[5]), sys.argv[6], int(sys.argv[7]))
            threading.Thread(target=serve_slow, args=args, daemon=True).start()
        elif mode == "silent":
            threading.Thread(target=serve_silent, args=(c,), daemon=True).start()
        elif mode == "http":
            threading.Thread(target=serve_http, args=(c,), daemon=True).start()
        elif mode == "reject-auth":
            threading.Thread(target=serve_reject_auth, args=(c, logpath), daemon=True).start()


if __name__ == "__main__":
    main()
