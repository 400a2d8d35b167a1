#!/usr/bin/env python3
"""Servers for the shim lab, run INSIDE the proxy-side network namespace.

lab_servers.py LOG WWWDIR ADDR...   TCP and UDP echo on port 7000 and HTTP on port 8080 of each
                                    ADDR, a DNS server on port 53 of the first ADDR (target.lab
                                    is 198.51.100.1); every accepted connection, datagram and
                                    query is logged as "<kind> <peer> ...".
lab_servers.py --dns-sink LOG       a DNS sink on 127.0.0.1:53 (UDP and TCP) that logs every
                                    query ("query <name>") and answers SERVFAIL (NXDOMAIN
                                    for names under nxdomain.lab); run on the
                                    CLIENT side, any line in its log is a leak.
lab_servers.py --query NAME         sends the sink one query for NAME (the tests' marker) and
                                    waits up to 2 s for its answer.
lab_servers.py --sync ADDR PORT MARKER
                                    a TCP line and a datagram carrying MARKER to a --udp-log
                                    server (logged as "sync MARKER" and "sync MARKER-udp")
lab_servers.py --udp-log LOG ADDR PORT
                                    logs every datagram to ADDR:PORT as "got <peer> <len>"
                                    and echoes it; accepts TCP on ADDR:PORT too, logs
                                    "conn <peer>" and echoes ("ready" first).
lab_servers.py --https-altsvc LOG ADDR CERT KEY
                                    HTTPS (HTTP/1.0, one request per connection) on ADDR:443
                                    whose answers offer HTTP/3 there (Alt-Svc); "/" is a page
                                    that loads /second.js, which writes "second loaded"; each
                                    request is logged as "https <peer> <path>", each datagram
                                    to UDP ADDR:443 as "quic <peer> <length>" (no QUIC server:
                                    a browser's attempt fails and it goes on over TCP), and a
                                    datagram "sync-..." as "sync sync-...".
Runs until killed.
"""
import functools
import http.server
import socket
import socketserver
import sys
import threading

LOCK = threading.Lock()


def log(path, line):
    with LOCK, open(path, "a") as f:
        f.write(line + "\n")


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def echo_server(logpath, addr, port):
    s = socket.socket(family_of(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(256)

    def serve(c, peer):
        log(logpath, "echo %s" % peer[0])
        with c:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                c.sendall(data)

    while True:
        c, peer = s.accept()
        threading.Thread(target=serve, args=(c, peer), daemon=True).start()


def udp_echo_server(logpath, addr, port):
    s = socket.socket(family_of(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        log(logpath, "udp %s %d" % (peer[0], len(data)))
        s.sendto(data, peer)


def dns_server(logpath, addr):
    """Answers A questions for target.lab with 198.51.100.1 (NXDOMAIN otherwise)."""
    s = socket.socket(family_of(addr), socket.SOCK_DGRAM)
    s.bind((addr, 53))
    while True:
        msg, peer = s.recvfrom(4096)
        name = qname(msg)
        log(logpath, "dns %s %s" % (peer[0], name))
        end = 12 + sum(len(l) + 1 for l in name.split(".")) + 1 + 4
        question = msg[12:end]
        if name == "target.lab":
            answer = b"\xc0\x0c" + bytes([0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 1])
            head = msg[:2] + bytes([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0])
            s.sendto(head + question + answer, peer)
        else:
            head = msg[:2] + bytes([0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0])
            s.sendto(head + question, peer)


def http_server(logpath, wwwdir, addr, port):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            log(logpath, "http %s %s" % (self.client_address[0], self.path))

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = family_of(addr)

    Server((addr, port), functools.partial(Handler, directory=wwwdir)).serve_forever()


def qname(msg):
    labels, i = [], 12
    while i < len(msg) and msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return ".".join(labels)


def servfail(msg):
    """SERVFAIL; but NXDOMAIN (no such name) for names under nxdomain.lab, the tests' typos."""
    rcode = 0x83 if qname(msg).endswith(".nxdomain.lab") else 0x82
    return msg[:2] + bytes([0x81, rcode]) + msg[4:6] + b"\0\0\0\0\0\0" + msg[12:]


def dns_sink(logpath):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 53))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("127.0.0.1", 53))
    t.listen(16)

    def udp():
        while True:
            msg, peer = u.recvfrom(4096)
            log(logpath, "query %s" % qname(msg))
            u.sendto(servfail(msg), peer)

    def tcp():
        while True:
            c, _ = t.accept()
            with c:
                data = c.recv(4096)
                if len(data) > 2:
                    log(logpath, "query %s" % qname(data[2:]))
                    reply = servfail(data[2:])
                    c.sendall(len(reply).to_bytes(2, "big") + reply)

    threading.Thread(target=udp, daemon=True).start()
    tcp()


def query(name):
    q = bytes([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += bytes([0, 0, 1, 0, 1])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(q, ("127.0.0.1", 53))
    try:
        s.recv(512)
    except OSError:
        pass


def udp_logger(logpath, addr, port):
    s = socket.socket(family_of(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    t = socket.socket(family_of(addr), socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, port))
    t.listen(64)

    def serve(c, peer):
        with c:
            try:
                for data in iter(lambda: c.recv(65536), b""):
                    if data.startswith(b"sync-"):
                        log(logpath, "sync %s" % data.decode().strip())
                    c.sendall(data)
            except OSError:
                pass

    def tcp():
        while True:
            c, peer = t.accept()
            log(logpath, "conn %s" % peer[0])
            threading.Thread(target=serve, args=(c, peer), daemon=True).start()

    threading.Thread(target=tcp, daemon=True).start()
    log(logpath, "ready")
    while True:
        data, peer = s.recvfrom(65535)
        if data.startswith(b"sync-"):
            log(logpath, "sync %s" % data.decode().strip())
        else:
            log(logpath, "got %s %d" % (peer[0], len(data)))
            try:
                s.sendto(data, peer)
            except OSError:
                pass  # a source this side has no route back to (it was logged)


def sync(addr, port, marker):
    """One TCP connection and one datagram to a --udp-log server, each carrying MARKER."""
    c = socket.create_connection((addr, port), 5)
    c.sendall(marker.encode() + b"\n")
    c.settimeout(5)
    c.recv(100)
    c.close()
    u = socket.socket(family_of(addr), socket.SOCK_DGRAM)
    u.sendto(marker.encode() + b"-udp", (addr, port))


def https_altsvc(logpath, addr, cert, key):
    """A browser that honours the Alt-Svc tries QUIC for the second request (a new
    connection: HTTP/1.0 closes each one)."""
    import ssl

    def quic():
        u = socket.socket(family_of(addr), socket.SOCK_DGRAM)
        u.bind((addr, 443))
        while True:
            data, peer = u.recvfrom(65535)
            if data.startswith(b"sync-"):
                log(logpath, "sync %s" % data.decode().strip())
            else:
                log(logpath, "quic %s %d" % (peer[0], len(data)))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            log(logpath, "https %s %s" % (self.client_address[0], self.path))
            if self.path == "/second.js":
                body, kind = b"document.body.textContent = 'second loaded';", "text/javascript"
            else:
                body, kind = (b"<html><body>first<script src=/second.js></script></body></html>",
                              "text/html")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Alt-Svc", 'h3=":443"; ma=600')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = family_of(addr)

    srv = Server((addr, 443), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=quic, daemon=True).start()
    log(logpath, "ready")
    srv.serve_forever()


def main():
    if sys.argv[1] == "--https-altsvc":
        https_altsvc(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
        return
    if sys.argv[1] == "--sync":
        sync(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    if sys.argv[1] == "--udp-log":
        udp_logger(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    if sys.argv[1] == "--query":
        query(sys.argv[2])
        return
    if sys.argv[1] == "--dns-sink":
        dns_sink(sys.argv[2])
        return
    logpath, wwwdir, addrs = sys.argv[1], sys.argv[2], sys.argv[3:]
    threads = []
    for a in addrs:
        threads.append(threading.Thread(target=echo_server, args=(logpath, a, 7000), daemon=True))
        threads.append(threading.Thread(target=udp_echo_server, args=(logpath, a, 7000), daemon=True))
        threads.append(threading.Thread(target=http_server, args=(logpath, wwwdir, a, 8080), daemon=True))
    threads.append(threading.Thread(target=dns_server, args=(logpath, addrs[0]), daemon=True))
    for t in threads:
        t.start()
    log(logpath, "ready")
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
