#!/usr/bin/env python3
"""SOCKS5 servers that misbehave on purpose, for the shim lab (run on the proxy side).

hostile_proxy.py LOG MODE ADDR PORT [ARGS]
  slow DELAY_MS UP_ADDR UP_PORT  waits DELAY_MS after accepting, then relays both ways to a
                                 real proxy at UP_ADDR:UP_PORT (a slow but working proxy)
  silent                         accepts and reads, never answers (logs "silent greeting N" for
                                 the first octets read, "silent more N" for any later ones,
                                 "silent closed" when the client closes)
  gate N UP_ADDR UP_PORT         holds every connection until N are open at once, then relays
                                 them all to a real proxy ("gate open N"; after 10 s without N,
                                 "gate timeout K" and it lets them through): proof that a
                                 client runs its handshakes in parallel
  tarpit                         never accepts: its queue is full, so SYNs are dropped
  reject-auth                    chooses username/password and rejects every attempt
  udp-frag                       a SOCKS5 server for UDP ASSOCIATE whose relay echoes each
                                 datagram back in three fragments (FRAG 1, 2, 3|0x80), after
                                 an abandoned sequence (FRAG 1, 2, then a lower 1 restarts)
  udp-close                      the same with whole datagrams, but it closes the control
                                 connection right after echoing the first one
  udp-gap                        answers the first datagram with FRAG 1 "AAAA", FRAG 3|end
                                 "CCCC" (a gap), then a whole datagram "whole"
  udp-drip                       answers with a whole datagram "first", then an incomplete
                                 fragment every 0.4 s for 30 s at most
  udp-spoof                      answers with "spoof" from another source (203.0.113.9:9),
                                 then "real" from the destination
  bind-eof                       answers BIND with a first reply, then ends the connection
                                 0.5 s later instead of sending the second
  http-banner                    an HTTP CONNECT proxy that answers 200 and a server's banner
                                 ("SSH-2.0-hostile-banner") in one write, then echoes; logs
                                 "http request LINE"
  http-badstatus                 answers "HTTP/1.1 2x0 OK"
  http-endless                   answers a status line, then header lines without end (until
                                 the client closes: "http-endless closed after N")
  http-407                       answers 407 asking for Negotiate and Basic
  http-midclose                  answers half a header, then closes
  https-flood CERT KEY           an HTTPS proxy (TLS with CERT and KEY): answers CONNECT with
                                 200, sends 8 MiB, then closes the TCP connection without TLS's
                                 close_notify; logs "https-flood sent N"
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


def serve_silent(c, logpath):
    first = True
    try:
        while True:
            data = c.recv(4096)
            if not data:
                break
            if first:
                log(logpath, "silent greeting %d" % len(data))
                first = False
            else:
                log(logpath, "silent more %d" % len(data))
    except OSError:
        pass
    log(logpath, "silent closed")


class Gate:
    def __init__(self, n):
        self.n, self.count, self.open = n, 0, False
        self.cond = threading.Condition()


def serve_gate(c, gate, logpath, up_addr, up_port):
    with gate.cond:
        gate.count += 1
        if not gate.open and gate.count >= gate.n:
            gate.open = True
            log(logpath, "gate open %d" % gate.count)
            gate.cond.notify_all()
        if not gate.cond.wait_for(lambda: gate.open, timeout=10):
            gate.open = True
            log(logpath, "gate timeout %d" % gate.count)
            gate.cond.notify_all()
    serve_slow(c, 0, up_addr, up_port)


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


HTTP_ANSWERS = {
    "http-banner": b"HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-hostile-banner\r\n",
    "http-badstatus": b"HTTP/1.1 2x0 OK\r\n\r\n",
    "http-407": b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b"Proxy-Authenticate: Negotiate\r\n"
                b'Proxy-Authenticate: Basic realm="lab"\r\nContent-Length: 0\r\n\r\n',
    "http-midclose": b"HTTP/1.1 200 OK\r\nVia: hal",
}


def serve_http_proxy(c, logpath, mode):
    """A CONNECT proxy that misbehaves as its mode says."""
    try:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = c.recv(4096)
            if not data:
                return
            head += data
        log(logpath, "http request %s" % head.split(b"\r\n")[0].decode("latin-1"))
        if mode == "http-endless":
            sent = len(b"HTTP/1.1 200 OK\r\n")
            c.sendall(b"HTTP/1.1 200 OK\r\n")
            deadline = time.monotonic() + 30
            try:
                while time.monotonic() < deadline:
                    c.sendall(b"X-Pad: " + b"a" * 100 + b"\r\n")
                    sent += 109
                    time.sleep(0.001)
            except OSError:
                pass
            log(logpath, "http-endless closed after %d" % sent)
            return
        c.sendall(HTTP_ANSWERS[mode])
        if mode == "http-banner":
            while True:
                data = c.recv(4096)
                if not data:
                    break
                c.sendall(data)
        elif mode != "http-midclose":
            time.sleep(0.5)
    except OSError:
        pass
    finally:
        c.close()


def udp_header_size(d):
    atyp = d[3]
    if atyp == 1:
        return 4 + 4 + 2
    if atyp == 4:
        return 4 + 16 + 2
    return 4 + 1 + d[4] + 2


def method_none_request(c):
    """The greeting, answered with method none, then the request (read and returned)."""
    head = recv_exact(c, 2)
    recv_exact(c, head[1])
    c.sendall(b"\x05\x00")
    req = recv_exact(c, 4)
    atyp = req[3]
    addr = recv_exact(c, {1: 4, 4: 16}.get(atyp, 0) or recv_exact(c, 1)[0])
    return req + addr + recv_exact(c, 2)


def serve_udp(c, addr, logpath, mode):
    """Method none, then UDP ASSOCIATE: a relay on ADDR that echoes what it gets."""
    try:
        method_none_request(c)
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.bind((addr, 0))
        port = r.getsockname()[1]
        c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(addr) + port.to_bytes(2, "big"))
        log(logpath, "%s associate" % mode)
        data, peer = r.recvfrom(65535)
        hdr = data[:udp_header_size(data)]
        payload = data[len(hdr):]
        log(logpath, "%s datagram %d" % (mode, len(payload)))
        if mode in ("udp-gap", "udp-drip", "udp-spoof"):
            serve_udp_hostile(c, r, peer, hdr, logpath, mode)
            return
        if mode == "udp-frag":
            third = max(1, len(payload) // 3)
            parts = [payload[:third], payload[third:2 * third], payload[2 * third:]]
            # An abandoned start: FRAG 1 and 2 of a sequence that never ends, then a lower
            # FRAG (1) starts the real one over.
            r.sendto(hdr[:2] + b"\x01" + hdr[3:] + b"junk-1", peer)
            r.sendto(hdr[:2] + b"\x02" + hdr[3:] + b"junk-2", peer)
            for i, part in enumerate(parts):
                frag = (i + 1) | (0x80 if i == 2 else 0)
                r.sendto(hdr[:2] + bytes([frag]) + hdr[3:] + part, peer)
        else:
            r.sendto(hdr + payload, peer)
            c.close()
            log(logpath, "%s closed" % mode)
            return
        while c.recv(4096):
            pass
    except OSError:
        pass


def serve_udp_hostile(c, r, peer, hdr, logpath, mode):
    """Replies to a first datagram the way a hostile relay would (see the modes above)."""
    frag = lambda n: hdr[:2] + bytes([n]) + hdr[3:]
    if mode == "udp-gap":
        # FRAG 1, then FRAG 3 with the end bit: a gap. Then a whole datagram.
        r.sendto(frag(1) + b"AAAA", peer)
        r.sendto(frag(3 | 0x80) + b"CCCC", peer)
        r.sendto(hdr + b"whole", peer)
    elif mode == "udp-spoof":
        # A datagram from another source (203.0.113.9:9), then one from the destination.
        other = b"\x00\x00\x00\x01" + socket.inet_aton("203.0.113.9") + (9).to_bytes(2, "big")
        r.sendto(other + b"spoof", peer)
        r.sendto(hdr + b"real", peer)
    else:  # udp-drip: one whole datagram, then an incomplete fragment every 0.4 s (30 s at most)
        r.sendto(hdr + b"first", peer)
        c.settimeout(0.4)
        for i in range(75):
            r.sendto(frag(1) + b"drip", peer)
            try:
                if not c.recv(4096):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        log(logpath, "%s stopped" % mode)
        return
    log(logpath, "%s sent" % mode)
    try:
        while c.recv(4096):
            pass
    except OSError:
        pass


def serve_bind_eof(c, addr, logpath):
    """Method none, then BIND: the first reply (where it listens), and 0.5 s later an end of
    stream instead of the second reply."""
    try:
        method_none_request(c)
        c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(addr) + (4999).to_bytes(2, "big"))
        log(logpath, "bind-eof bound")
        time.sleep(0.5)
    except OSError:
        pass
    c.close()
    log(logpath, "bind-eof closed")


def serve_https_flood(c, logpath, cert, key):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    sent = 0
    try:
        t = ctx.wrap_socket(c, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = t.recv(4096)
            if not data:
                return
            head += data
        t.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        chunk = bytes(range(256)) * 256
        for _ in range(128):
            t.sendall(chunk)
            sent += len(chunk)
        log(logpath, "https-flood sent %d" % sent)
        # The TCP connection ends, with no close_notify (no unwrap()).
        t.close()
    except (OSError, ValueError) as e:
        log(logpath, "https-flood failed after %d: %s" % (sent, e))
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
        log(logpath, "tarpit ready %d" % port)
        while True:
            time.sleep(3600)
    s.listen(256)
    gate = Gate(int(sys.argv[5])) if mode == "gate" else None
    log(logpath, "%s ready %d" % (mode, port))
    while True:
        c, peer = s.accept()
        log(logpath, "%s accept %s" % (mode, peer[0]))
        if mode == "slow":
            args = (c, int(sys.argv[5]), sys.argv[6], int(sys.argv[7]))
            threading.Thread(target=serve_slow, args=args, daemon=True).start()
        elif mode == "silent":
            threading.Thread(target=serve_silent, args=(c, logpath), daemon=True).start()
        elif mode == "gate":
            args = (c, gate, logpath, sys.argv[6], int(sys.argv[7]))
            threading.Thread(target=serve_gate, args=args, daemon=True).start()
        elif mode in ("udp-frag", "udp-close", "udp-gap", "udp-drip", "udp-spoof"):
            threading.Thread(target=serve_udp, args=(c, addr, logpath, mode), daemon=True).start()
        elif mode == "bind-eof":
            threading.Thread(target=serve_bind_eof, args=(c, addr, logpath), daemon=True).start()
        elif mode == "http":
            threading.Thread(target=serve_http, args=(c,), daemon=True).start()
        elif mode == "https-flood":
            args = (c, logpath, sys.argv[5], sys.argv[6])
            threading.Thread(target=serve_https_flood, args=args, daemon=True).start()
        elif mode.startswith("http-"):
            args = (c, logpath, mode)
            threading.Thread(target=serve_http_proxy, args=args, daemon=True).start()
        elif mode == "reject-auth":
            threading.Thread(target=serve_reject_auth, args=(c, logpath), daemon=True).start()


if __name__ == "__main__":
    main()
