#!/usr/bin/env python3
"""socksify benchmark (see bench/run.sh). Figures, then ratios against the best anchor
(the best of the other tools for that column). Lower is better, except throughput."""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCKSIFY = os.path.join(ROOT, "build/release/tools/socksify")
SHIM = os.path.join(ROOT, "build/release/shim/libsocksify.so")
QUICK = "--quick" in sys.argv
P, C = "sfybench-p", "sfybench-c"
PROXY, TARGET = "192.0.2.1", "198.51.100.1"
WORK = tempfile.mkdtemp(prefix="socksify-bench-")
os.chmod(WORK, 0o755)
procs = []


def sh(cmd, check=True, capture=False, env=None):
    r = subprocess.run(cmd, shell=True, check=check, text=True, env=env,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None)
    return r.stdout if capture else r.returncode


def in_ns(ns, cmd):
    return "ip netns exec %s %s" % (ns, cmd)


def spawn(ns, cmd, log):
    f = open(os.path.join(WORK, log), "w")
    p = subprocess.Popen(in_ns(ns, cmd), shell=True, stdout=f, stderr=subprocess.STDOUT,
                         preexec_fn=os.setsid)
    procs.append(p)


def wait_port(ns, host, port):
    code = ("import socket,time\nfor i in range(200):\n try:\n  socket.create_connection(('%s',%d),0.2).close(); break\n"
            " except OSError: time.sleep(0.05)\nelse: raise SystemExit(1)" % (host, port))
    sh(in_ns(ns, "python3 -c \"%s\"" % code))


def cleanup():
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    sh("ip netns del %s 2>/dev/null" % P, check=False)
    sh("ip netns del %s 2>/dev/null" % C, check=False)
    shutil.rmtree("/etc/netns/" + C, ignore_errors=True)
    shutil.rmtree("/etc/netns/" + P, ignore_errors=True)
    try:
        os.rmdir(CGROUP)
    except OSError:
        pass
    shutil.rmtree(WORK, ignore_errors=True)


TURNS_PY = r'''
import select, socket, sys, threading
listen = socket.socket(); listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 1081
UP = int(sys.argv[3]) if len(sys.argv) > 3 else 1080
# "tls": the proxy speaks TLS, so no GET can be seen; every turn counts, and the one the
# request's own answer makes (curl fetches one small file per connection) is taken off.
TLS = len(sys.argv) > 4 and sys.argv[4] == "tls"
listen.bind(("%s", PORT)); listen.listen(64)
log = open(sys.argv[1], "a", buffering=1)
def serve(c):
    s = socket.create_connection(("%s", UP))
    turns, last, counting = 0, None, True
    while True:
        r, _, _ = select.select([c, s], [], [])
        for x in r:
            data = x.recv(65536)
            if not data:
                if counting: log.write("turns %%d\n" %% (turns - 1 if TLS else turns))
                c.close(); s.close(); return
            if x is c:
                if counting and not TLS and last == "s" and data[:4] in (b"GET ", b"HEAD"):
                    log.write("turns %%d\n" %% turns); counting = False
                last = "c"; s.sendall(data)
            else:
                if counting and last == "c": turns += 1
                last = "s"; c.sendall(data)
while True:
    c, _ = listen.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
''' % (PROXY, PROXY)


def setup():
    sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null" % (P, C), check=False)
    for cmd in ["ip netns add " + P, "ip netns add " + C,
                "ip link add sfyb-p type veth peer name sfyb-c",
                "ip link set sfyb-p netns " + P, "ip link set sfyb-c netns " + C,
                "ip -n %s addr add %s/24 dev sfyb-p" % (P, PROXY),
                "ip -n %s addr add 192.0.2.2/24 dev sfyb-c" % C,
                "ip -n %s link set sfyb-p up" % P, "ip -n %s link set sfyb-c up" % C,
                "ip -n %s link set lo up" % P, "ip -n %s link set lo up" % C,
                "ip -n %s addr add %s/32 dev lo" % (P, TARGET),
                # The direct path: the client may reach the target through the proxy host.
                "ip -n %s route add %s/32 via %s" % (C, TARGET, PROXY)]:
        sh(cmd)
    www = os.path.join(WORK, "www")
    os.makedirs(www)
    with open(os.path.join(www, "s"), "w") as f:
        f.write("x" * 100)
    size = (20 if QUICK else 200) << 20
    with open(os.path.join(www, "big"), "wb") as f:
        f.truncate(size)
    with open(os.path.join(WORK, "danted.conf"), "w") as f:
        f.write("logoutput: %s/danted.log\ninternal: %s port = 1080\nexternal: %s\n"
                "clientmethod: none\nsocksmethod: none\nuser.privileged: root\n"
                "user.unprivileged: nobody\nclient pass {\n from: 0/0 to: 0/0\n}\n"
                "socks pass {\n from: 0/0 to: 0/0\n command: connect udpassociate\n}\n"
                "socks pass {\n from: 0/0 to: 0/0\n command: udpreply\n}\n" % (WORK, PROXY, TARGET))
    with open(os.path.join(WORK, "turns.py"), "w") as f:
        f.write(TURNS_PY)
    # A name only the proxy side resolves (for the connects by name through fake DNS).
    os.makedirs("/etc/netns/" + P, exist_ok=True)
    with open("/etc/netns/%s/hosts" % P, "w") as f:
        f.write("127.0.0.1 localhost\n%s target.bench\n" % TARGET)
    os.chmod("/etc/netns/%s/hosts" % P, 0o644)
    spawn(P, "danted -f %s/danted.conf" % WORK, "danted.out")
    spawn(P, "python3 %s/turns.py %s/turns.log" % (WORK, WORK), "turns.out")
    spawn(P, "python3 -m http.server --bind %s --directory %s 8080" % (TARGET, www), "http.out")
    sh("cc -O2 -o %s/udp_rtt %s/bench/udp_rtt.c" % (WORK, ROOT))
    spawn(P, "%s/udp_rtt echo %s 7000 %s/udp.log" % (WORK, TARGET, WORK), "udp.out")
    wait_port(C, PROXY, 1080)
    wait_port(C, PROXY, 1081)
    wait_port(C, TARGET, 8080)
    with open(os.path.join(WORK, "proxychains-%d.conf" % 1080), "w") as f:
        f.write("strict_chain\nproxy_dns\nquiet_mode\n[ProxyList]\nsocks5 %s 1080\n" % PROXY)
    with open(os.path.join(WORK, "proxychains-%d.conf" % 1081), "w") as f:
        f.write("strict_chain\nproxy_dns\nquiet_mode\n[ProxyList]\nsocks5 %s 1081\n" % PROXY)
    for port in (1080, 1081):
        with open(os.path.join(WORK, "torsocks-%d.conf" % port), "w") as f:
            f.write("TorAddress %s\nTorPort %d\n" % (PROXY, port))
        with open(os.path.join(WORK, "dante-%d.conf" % port), "w") as f:
            f.write("route {\n from: 0.0.0.0/0 to: 0.0.0.0/0 via: %s port = %d\n"
                    " proxyprotocol: socks_v5\n method: none\n}\n" % (PROXY, port))


def variants(port):
    """name -> (command prefix run in the client namespace, curl extra args, is an anchor)"""
    return {
        "direct (no proxy)": ("", "", False),  # the floor, shown for reference
        "curl --socks5-hostname": ("", "--socks5-hostname %s:%d" % (PROXY, port), True),
        "proxychains4": ("proxychains4 -q -f %s/proxychains-%d.conf" % (WORK, port), "", True),
        "Dante socksify": ("env SOCKS_CONF=%s/dante-%d.conf /usr/bin/socksify" % (WORK, port),
                           "", True),
        "torsocks": ("env TORSOCKS_CONF_FILE=%s/torsocks-%d.conf torsocks" % (WORK, port), "", True),
        "socksify": ("%s -x socks5h://%s:%d" % (SOCKSIFY, PROXY, port), "", False),
    }


def curl_cmd(prefix, extra, urls):
    return in_ns(C, "%s curl -s %s %s" % (prefix, extra,
                                          " ".join("-o /dev/null " + u for u in urls)))


def instructions(prefix, extra, n, children=False):
    urls = ["http://%s:8080/s" % TARGET] * n
    cmd = in_ns(C, "%s valgrind --tool=callgrind --callgrind-out-file=/dev/null %s curl -s %s %s"
                % (prefix, "--trace-children=yes" if children else "", extra,
                   " ".join("-o /dev/null " + u for u in urls)))
    out = sh(cmd, capture=True, check=False)
    m = re.findall(r"Collected : (\d+)", out)
    if not m:
        raise RuntimeError("callgrind failed:\n" + out[-2000:])
    # Every process of the client counts (Dante's library forks a helper).
    return sum(int(x) for x in m)


def per_connection_instructions(prefix, extra, children=False):
    n = 5 if QUICK else 20
    return (instructions(prefix, extra, n + 1, children) -
            instructions(prefix, extra, 1, children)) / n


def waits(prefix, extra):
    log = os.path.join(WORK, "turns.log")
    open(log, "w").close()
    sh(curl_cmd(prefix, extra, ["http://%s:8080/s" % TARGET] * 3))
    time.sleep(0.3)
    vals = [int(x) for x in re.findall(r"turns (\d+)", open(log).read())]
    return statistics.median(vals) if vals else float("nan")


def throughput_all(variants_by_name):
    """MiB/s of a big download per tool: the tools take turns, round after round, and each
    gets the median of its rounds, so drift of the shared machine hits them all alike."""
    rounds = 1 if QUICK else 7
    runs = {name: [] for name in variants_by_name}
    for _ in range(rounds):
        for name, (prefix, extra) in variants_by_name.items():
            out = sh(in_ns(C, "%s curl -s %s -o /dev/null -w '%%{speed_download}' http://%s:8080/big"
                           % (prefix, extra, TARGET)), capture=True)
            runs[name].append(float(out.strip().split()[-1]) / (1 << 20))
    return {name: statistics.median(v) for name, v in runs.items()}


def rss(prefix, extra):
    out = sh(in_ns(C, "/usr/bin/time -f 'RSS %%M' %s curl -s %s -o /dev/null http://%s:8080/s"
                   % (prefix, extra, TARGET)), capture=True)
    return int(re.findall(r"RSS (\d+)", out)[-1])


def startup_ms(commands):
    """Median wall time of each command, in ms. The commands are run in turn, round after
    round (interleaved), so that drift of the shared machine hits them all alike; the median
    shrugs off the outliers that a mean (hyperfine's summary) picks up here."""
    import shlex
    rounds = 40 if QUICK else 1000
    argvs = [shlex.split(c) for c in commands]
    paths = [shutil.which(a[0]) for a in argvs]
    times = [[] for _ in commands]
    env = dict(os.environ)
    for r in range(rounds + 5):
        for i, a in enumerate(argvs):
            t = time.perf_counter()
            pid = os.posix_spawn(paths[i], a, env, file_actions=[
                (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)])
            os.waitpid(pid, 0)
            if r >= 5:  # warm-up rounds are not counted
                times[i].append(time.perf_counter() - t)
    return [statistics.median(t) * 1000 for t in times]


def udp_all():
    """Datagram round trips per second (64 octets, through danted's UDP ASSOCIATE) and client
    instructions per datagram, for socksify and Dante's socksify (the only other socksifier
    with UDP), the direct path as the floor. The tools take turns, round after round; each
    gets its median."""
    count = 2000 if QUICK else 20000
    tools = {
        "direct (no proxy)": "",
        "Dante socksify": "env SOCKS_CONF=%s/dante-1080.conf /usr/bin/socksify" % WORK,
        "socksify": "%s -x socks5h://%s:1080" % (SOCKSIFY, PROXY),
    }
    rates = {name: [] for name in tools}
    for _ in range(1 if QUICK else 5):
        for name, prefix in tools.items():
            out = sh(in_ns(C, "%s %s/udp_rtt client %s 7000 %d" % (prefix, WORK, TARGET, count)),
                     capture=True, check=False)
            m = re.findall(r"rtt/s (\d+)", out)
            if m:
                rates[name].append(float(m[-1]))
    result = {}
    for name, prefix in tools.items():
        if not rates[name]:
            print("  %s: UDP round trips failed" % name, file=sys.stderr)
            continue
        # Instructions per datagram round trip: (1001 - 1) / 1000, every process counted.
        def instr(n):
            out = sh(in_ns(C, "%s valgrind --tool=callgrind --trace-children=yes "
                              "--callgrind-out-file=/dev/null %s/udp_rtt client %s 7000 %d"
                           % (prefix, WORK, TARGET, n)), capture=True, check=False)
            m = re.findall(r"Collected : (\d+)", out)
            return sum(int(x) for x in m) if m else float("nan")
        result[name] = (statistics.median(rates[name]), (instr(1001) - instr(1)) / 1000)
    return result


def report_udp():
    print("measuring UDP round trips (interleaved) ...", file=sys.stderr)
    open(os.path.join(WORK, "udp.log"), "w").close()
    sh(in_ns(C, "%s -x socks5h://%s:1080 %s/udp_rtt client %s 7000 1"
             % (SOCKSIFY, PROXY, WORK, TARGET)))
    time.sleep(0.2)
    crossed = "udp %s" % TARGET in open(os.path.join(WORK, "udp.log")).read()
    udp = udp_all()
    print("\nUDP (64-octet datagrams through danted's UDP ASSOCIATE; the echo server saw %s):"
          % ("danted's address: they crossed the proxy" if crossed else "NOT danted's address"))
    print("\n| tool | round trips/s | client instr/round trip |")
    print("|---|---|---|")
    dante = udp.get("Dante socksify")
    for name, (rate, ins) in udp.items():
        r1 = " (x%.2f)" % (rate / dante[0]) if dante else ""
        r2 = " (x%.2f)" % (ins / dante[1]) if dante and dante[1] == dante[1] else ""
        print("| %s | %.0f%s | %.0f%s |" % (name, rate, r1, ins, r2))
    print("ratios against Dante's socksify (round trips: higher is better; instructions: lower).")


# --- GSSAPI (RFC 1961): throughput and client CPU at each level, against Dante's own client
# rebuilt with GSSAPI, through one GSSAPI Dante server ---------------------------------------

DANTE_GSS = os.path.join(ROOT, "build/dante-gssapi/prefix")
KRB = os.path.join(WORK, "krb")
CGROUP = "/sys/fs/cgroup/cpuacct/sfybench-gss"


def gssapi_setup():
    if not os.access(os.path.join(DANTE_GSS, "sbin/sockd"), os.X_OK):
        sh("%s/scripts/build-dante-gssapi.sh %s/build/dante-gssapi >/dev/null" % (ROOT, ROOT))
    scripts = os.path.join(ROOT, "tests/gssapi")
    # Two names for the proxy: its address (socksify asks for rcmd@192.0.2.1) and a host name
    # (Dante's client turns its `via:` into a name and asks for rcmd@proxy.bench).
    sh(in_ns(P, "%s/realm.sh create %s %s 88 %s proxy.bench >/dev/null" % (scripts, KRB, PROXY, PROXY)))
    sh(in_ns(P, "%s/dante.sh %s %s 1190 %s >/dev/null" % (scripts, KRB, PROXY, TARGET)))
    # The per-session lines are what the bench checks; the debug lines would only cost time.
    conf = open(os.path.join(KRB, "sockd.conf")).read().replace("debug: 1\n", "")
    open(os.path.join(KRB, "sockd.conf"), "w").write(conf)
    k5 = "KRB5_CONFIG=%s/krb5.conf" % KRB
    spawn(P, "env %s KRB5_KDC_PROFILE=%s/kdc.conf krb5kdc -n -r SOCKS.TEST" % (k5, KRB), "kdc.out")
    spawn(P, "env %s %s/sbin/sockd -f %s/sockd.conf" % (k5, DANTE_GSS, KRB), "sockd.out")
    wait_port(C, PROXY, 88)
    wait_port(C, PROXY, 1194)
    sh(in_ns(P, "%s/realm.sh kinit %s" % (scripts, KRB)))
    os.makedirs("/etc/netns/" + C, exist_ok=True)
    with open("/etc/netns/%s/hosts" % C, "w") as f:
        f.write("127.0.0.1 localhost\n%s proxy.bench\n" % PROXY)
    os.chmod("/etc/netns/%s/hosts" % C, 0o644)
    for level in ("integrity", "confidentiality"):
        with open(os.path.join(WORK, "dante-gss-%s.conf" % level), "w") as f:
            f.write("route {\n from: 0.0.0.0/0 to: 0.0.0.0/0 via: proxy.bench port = 1194\n"
                    " proxyprotocol: socks_v5\n method: gssapi\n"
                    " gssapi.servicename: rcmd\n gssapi.enctype: %s\n}\n" % level)
    os.makedirs(CGROUP, exist_ok=True)
    return "%s KRB5CCNAME=FILE:%s/alice.ccache" % (k5, KRB)


def gss_tools(env, level):
    return {
        "Dante socksify (GSSAPI build)":
            "env %s SOCKS_CONF=%s/dante-gss-%s.conf LD_PRELOAD=%s/lib/libdsocksd.so.0"
            % (env, WORK, level, DANTE_GSS),
        "socksify": "env %s SOCKSIFY_AUTH=gssapi SOCKSIFY_GSSAPI_PROTECTION=%s %s -x socks5h://%s:1194"
                    % (env, level, SOCKSIFY, PROXY),
    }


def cpu_and_speed(prefix):
    """One download of the big file: (MiB/s, CPU seconds of every client process: the program,
    the library's helpers and socksify's relay, counted by a cpuacct cgroup they all inherit)."""
    with open(os.path.join(CGROUP, "cpuacct.usage"), "w") as f:
        f.write("0")
    out = sh("sh -c 'echo $$ > %s/tasks; exec %s'" % (
        CGROUP, in_ns(C, "%s curl -s -o /dev/null -w '%%{speed_download}' http://%s:8080/big"
                      % (prefix, TARGET)).replace("'", "'\\''")), capture=True)
    # The relay outlives curl by a moment: wait (bounded) until the cgroup is empty.
    for _ in range(200):
        if not open(os.path.join(CGROUP, "tasks")).read().strip():
            break
        time.sleep(0.01)
    cpu = int(open(os.path.join(CGROUP, "cpuacct.usage")).read()) / 1e9
    return float(out.strip().split()[-1]) / (1 << 20), cpu


def report_gssapi():
    print("measuring GSSAPI (interleaved) ...", file=sys.stderr)
    env = gssapi_setup()
    size_mib = os.path.getsize(os.path.join(WORK, "www", "big")) >> 20
    print("\nGSSAPI (a %d MiB download through one GSSAPI Dante server; CPU = every client process,"
          " relay included):" % size_mib)
    print("\n| level | tool | MiB/s | client CPU s | CPU ms per MiB |")
    print("|---|---|---|---|---|")
    for level in ("integrity", "confidentiality"):
        tools = gss_tools(env, level)
        log = os.path.join(KRB, "sockd.log")
        runs = {name: [] for name in tools}
        for _ in range(1 if QUICK else 5):
            for name, prefix in tools.items():
                before = open(log).read().count("gssapi/%s%%alice@SOCKS.TEST" % level)
                speed, cpu = cpu_and_speed(prefix)
                after = open(log).read().count("gssapi/%s%%alice@SOCKS.TEST" % level)
                if after <= before:
                    print("  %s at %s: not a GSSAPI session in Dante's log; left out" % (name, level),
                          file=sys.stderr)
                    continue
                runs[name].append((speed, cpu))
        dante = runs.get("Dante socksify (GSSAPI build)")
        d_speed = statistics.median(r[0] for r in dante) if dante else float("nan")
        d_cpu = statistics.median(r[1] for r in dante) if dante else float("nan")
        for name, r in runs.items():
            if not r:
                continue
            speed = statistics.median(x[0] for x in r)
            cpu = statistics.median(x[1] for x in r)
            print("| %s | %s | %.0f (x%.2f) | %.2f (x%.2f) | %.2f |"
                  % (level, name, speed, speed / d_speed, cpu, cpu / d_cpu, cpu * 1000 / size_mib))
    print("ratios against Dante's own client (MiB/s: higher is better; CPU: lower).")
    # What a protected connection costs to set up: curl's time to connect (the whole connect()
    # call: TCP to the proxy, GSSAPI, the request, and for socksify the relay's start), median of
    # interleaved runs, against the same through level clear (no relay) and Dante's client.
    rounds = 5 if QUICK else 25
    tools = dict(gss_tools(env, "integrity"))
    tools["socksify, level clear (no relay)"] = gss_tools(env, "clear")["socksify"]
    times = {name: [] for name in tools}
    for _ in range(rounds):
        for name, prefix in tools.items():
            out = sh(in_ns(C, "%s curl -s -o /dev/null -w '%%{time_connect}' http://%s:8080/s"
                           % (prefix, TARGET)), capture=True)
            times[name].append(float(out.strip().split()[-1]) * 1000)
    print("\n| connect() at integrity | ms (median) |")
    print("|---|---|")
    for name, t in times.items():
        print("| %s | %.2f |" % (name, statistics.median(t)))


# --- The event-loop connect: N non-blocking connects from one epoll loop, through danted
# behind a relay that emulates a round trip of 2 x DELAY ms ------------------------------------

# Each way; `--delay MS` changes it (the table in the README gives 10 and 50).
DELAY_MS = int(sys.argv[sys.argv.index("--delay") + 1]) if "--delay" in sys.argv else 10
ECHO_PY = r'''
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7001)); s.listen(512)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


PARALLEL_READY = []


def parallel_setup():
    if PARALLEL_READY:  # once per run (the full run measures both parallel parts)
        return
    PARALLEL_READY.append(True)
    with open(os.path.join(WORK, "echo.py"), "w") as f:
        f.write(ECHO_PY)
    spawn(P, "python3 %s/echo.py %s" % (WORK, TARGET), "echo.out")
    sh("cc -O2 -o %s/parallel_connect %s/bench/parallel_connect.c" % (WORK, ROOT))
    sh("cc -O2 -o %s/delay_relay %s/bench/delay_relay.c" % (WORK, ROOT))
    spawn(P, "%s/delay_relay %s 1086 %s 1080 %d" % (WORK, PROXY, PROXY, DELAY_MS), "delay.out")
    wait_port(C, PROXY, 1086)
    wait_port(P, TARGET, 7001)
    with open(os.path.join(WORK, "proxychains-1086.conf"), "w") as f:
        f.write("strict_chain\nquiet_mode\n[ProxyList]\nsocks5 %s 1086\n" % PROXY)
    with open(os.path.join(WORK, "torsocks-1086.conf"), "w") as f:
        f.write("TorAddress %s\nTorPort 1086\n" % PROXY)
    with open(os.path.join(WORK, "dante-1086.conf"), "w") as f:
        f.write("route {\n from: 0.0.0.0/0 to: 0.0.0.0/0 via: %s port = 1086\n"
                " proxyprotocol: socks_v5\n method: none\n}\n" % PROXY)


def report_parallel():
    print("measuring parallel connects (interleaved) ...", file=sys.stderr)
    parallel_setup()
    tools = {
        "proxychains4": "proxychains4 -q -f %s/proxychains-1086.conf" % WORK,
        "torsocks": "env TORSOCKS_CONF_FILE=%s/torsocks-1086.conf torsocks" % WORK,
        "Dante socksify": "env SOCKS_CONF=%s/dante-1086.conf /usr/bin/socksify" % WORK,
        "socksify": "%s -x socks5://%s:1086" % (SOCKSIFY, PROXY),
    }
    # Another build of the library to compare with in the same run (an older commit, say):
    # SOCKSIFY_BENCH_BASELINE=/path/to/libsocksify.so.
    base = os.environ.get("SOCKSIFY_BENCH_BASELINE")
    if base:
        tools["socksify (baseline)"] = "env LD_PRELOAD=%s SOCKSIFY_PROXY=socks5://%s:1086" % (
            base, PROXY)
    # The floor: the program does the SOCKS5 exchange itself in its own loop (no library).
    native = "the program's own SOCKS5 (floor)"
    tools[native] = ""
    rounds = 1 if QUICK else 5
    runs = {name: {1: [], 50: [], 100: []} for name in tools}
    inside = {name: [] for name in tools}
    cpu = {name: [] for name in tools}
    failed = set()  # a tool that failed once is not run again (a failure waits 10 s)
    for _ in range(rounds):
        for n in (1, 50, 100):
            for name, prefix in tools.items():
                if name in failed:
                    continue
                suffix = " --socks5 %s 1086" % PROXY if name == native else ""
                out = sh(in_ns(C, "%s %s/parallel_connect %s 7001 %d%s" % (prefix, WORK, TARGET, n,
                                                                          suffix)),
                         capture=True, check=False)
                m = re.search(r"total_ms ([0-9.]+) in_connect_ms ([0-9.]+) ok (\d+) echoed (\d+)"
                              r" cpu_us ([0-9.]+)", out)
                # Every connect must be reported (writable with SO_ERROR 0) AND carry data: a
                # tool that swaps the fd under the program (proxychains4, Dante's client)
                # leaves the program's epoll registration on a closed file: no event comes.
                if not m or int(m.group(3)) != n or int(m.group(4)) != n:
                    print("  %s, %d connects: failed: %s" % (name, n, out.strip()[-200:]),
                          file=sys.stderr)
                    failed.add(name)
                    continue
                runs[name][n].append(float(m.group(1)))
                if n == 50:
                    inside[name].append(float(m.group(2)))
                if n == 100:
                    cpu[name].append(float(m.group(5)) / n)
    print("\nParallel connects from one epoll loop (through danted behind a relay that adds %d ms"
          " each way: a %d ms round trip; every connect echoed a line):" % (DELAY_MS, 2 * DELAY_MS))
    print("\n| tool | 1 connect ms | 50 at once ms (x of 1) | 100 at once ms (x of 1) |"
          " inside connect(), 50 at once ms | client CPU per connect, 100 at once µs |")
    print("|---|---|---|---|---|---|")
    for name in tools:
        r = runs[name]
        if not r[1]:
            continue
        one = statistics.median(r[1])
        cells = ["%.1f" % one]
        for n in (50, 100):
            cells.append("%.1f (x%.1f)" % (statistics.median(r[n]), statistics.median(r[n]) / one)
                         if r[n] else "-")
        cells.append("%.1f" % statistics.median(inside[name]) if inside[name] else "-")
        cells.append("%.0f" % statistics.median(cpu[name]) if cpu[name] else "-")
        print("| %s | %s |" % (name, " | ".join(cells)))


def via_proxy_count():
    """Requests the target served to danted's egress address (i.e. through the proxy)."""
    return open(os.path.join(WORK, "http.out")).read().count(TARGET + " - -")


# --- The seccomp supervisor (--mode supervisor): per-connect time against the preload on the
# same danted, idle and with the two cores busy; 50 goroutines as a multiple of one; the
# wrapper's threads for 1,000 simultaneous Go dials; its memory over 100,000 connects. An
# older build to compare with in the same run: SOCKSIFY_BENCH_BASELINE_TOOL=/path/to/socksify
# (its own libsocksify.so beside it, as in a build tree) ------------------------------------

def proc_status(pid):
    """(threads, VmRSS KiB) of process `pid`, or None once it has gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    t = re.search(r"^Threads:\s+(\d+)", text, re.M)
    r = re.search(r"^VmRSS:\s+(\d+)", text, re.M)
    return (int(t.group(1)) if t else 0, int(r.group(1)) if r else 0)


def run_sampled(cmd, interval):
    """Runs `cmd` (argv) and samples its process (the wrapper: `ip netns exec` execs it) every
    `interval` s: (output, [(seconds since start, threads, rss KiB)])."""
    out_path = os.path.join(WORK, "sampled.out")
    with open(out_path, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        samples = []
        deadline = t0 + 600  # bounded: a wedged run is killed
        while p.poll() is None:
            st = proc_status(p.pid)
            if st:
                samples.append((time.monotonic() - t0, st[0], st[1]))
            if time.monotonic() > deadline:
                p.kill()
            time.sleep(interval)
        p.wait()
    with open(out_path) as f:
        return f.read(), samples


class Hogs:
    """Two processes that keep both cores busy (bounded: `timeout` ends them)."""
    def __enter__(self):
        self.procs = [subprocess.Popen(["timeout", "900", "yes"], stdout=subprocess.DEVNULL,
                                       preexec_fn=os.setsid) for _ in range(2)]
        procs.extend(self.procs)  # cleanup() ends them too, whatever happens
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # timeout and its yes
            except OSError:
                pass
            p.wait()


def report_supervisor():
    print("measuring the supervisor (interleaved) ...", file=sys.stderr)
    parallel_setup()
    # 100,000 connects in a row: TIME_WAIT would use up the ports without reuse.
    for ns in (C, P):
        sh(in_ns(ns, "sysctl -q -w net.ipv4.tcp_tw_reuse=1"))
        sh(in_ns(ns, "sysctl -q -w net.ipv4.ip_local_port_range='1024 65000'"))
    src = os.path.join(ROOT, "bench/connect_loop.c")
    sh("cc -O2 -o %s/connect_loop %s" % (WORK, src))
    sh("cc -O2 -static -o %s/connect_loop_static %s" % (WORK, src))
    go_env = "HOME=%s GOCACHE=%s/go-cache GO111MODULE=off GOPATH=%s/gopath CGO_ENABLED=0" % (
        WORK, WORK, WORK)
    sh("cd %s && env %s go build -o %s/dialmany %s/tests/integration/go/dialmany.go" % (
        WORK, go_env, WORK, ROOT))
    tools = {"": SOCKSIFY}
    base = os.environ.get("SOCKSIFY_BENCH_BASELINE_TOOL")
    if base:
        tools[" (baseline)"] = base
    n = 100 if QUICK else 300
    rounds = 1 if QUICK else 7
    rows = {"direct (no proxy), static": "%s/connect_loop_static %s 7001 %d" % (WORK, TARGET, n)}
    for tag, tool in tools.items():
        rows["preload" + tag] = "%s -x socks5://%s:1080 %s/connect_loop %s 7001 %d" % (
            tool, PROXY, WORK, TARGET, n)
        rows["supervisor" + tag] = "%s -x socks5://%s:1080 %s/connect_loop_static %s 7001 %d" % (
            tool, PROXY, WORK, TARGET, n)
    # A dynamic child of a supervised program: the preload does the handshake, and the
    # supervisor only connects it to the proxy (the cost of the two layers together).
    rows["preload inside the supervisor"] = (
        "%s --mode supervisor -x socks5://%s:1080 %s/connect_loop %s 7001 %d" % (
            SOCKSIFY, PROXY, WORK, TARGET, n))

    def per_connect(loaded):
        per = {k: [] for k in rows}
        for _ in range(rounds):
            for name, cmd in rows.items():
                ns = P if name.startswith("direct") else C
                out = sh(in_ns(ns, cmd), capture=True, check=False)
                m = re.search(r"per_connect_us ([0-9.]+) ok (\d+)", out)
                if m and int(m.group(2)) == n:
                    per[name].append(float(m.group(1)))
                else:
                    print("  %s%s failed: %s" % (name, " (loaded)" if loaded else "",
                                                 out.strip()[-200:]), file=sys.stderr)
        return {k: statistics.median(v) for k, v in per.items() if v}

    idle = per_connect(False)
    with Hogs():
        loaded = per_connect(True)
    conc = {(tag, k): [] for tag in tools for k in (1, 50)}
    for _ in range(rounds):
        for (tag, k), runs in conc.items():
            out = sh(in_ns(C, "%s -x socks5://%s:1086 %s/dialmany %s:7001 %d" % (
                tools[tag], PROXY, WORK, TARGET, k)), capture=True, check=False)
            m = re.search(r"echoed (\d+) of (\d+) in ([0-9.]+) ms", out)
            if m and m.group(1) == m.group(2):
                runs.append(float(m.group(3)))
            else:
                print("  dialmany%s %d failed: %s" % (tag, k, out.strip()[-200:]), file=sys.stderr)
    # 1,000 Go dials at once (behind the 20 ms round trip, so they overlap): the wrapper's
    # threads, sampled every 2 ms.
    dials = 200 if QUICK else 1000
    threads = {}
    for tag, tool in tools.items():
        out, samples = run_sampled(["ip", "netns", "exec", C, tool, "-x",
                                    "socks5://%s:1086" % PROXY, "%s/dialmany" % WORK,
                                    "%s:7001" % TARGET, str(dials)], 0.002)
        m = re.search(r"echoed (\d+) of (\d+) in ([0-9.]+) ms", out)
        threads[tag] = (max((s[1] for s in samples), default=0),
                        m.group(0) if m else "failed: " + out.strip()[-120:])
    # Memory over 100,000 blocking connects in a row (a static program: every connect
    # crosses the supervisor), sampled every 50 ms.
    many = 10000 if QUICK else 100000
    memory = {}
    for tag, tool in tools.items():
        out, samples = run_sampled(["ip", "netns", "exec", C, tool, "-x",
                                    "socks5://%s:1080" % PROXY, "%s/connect_loop_static" % WORK,
                                    TARGET, "7001", str(many)], 0.05)
        m = re.search(r"per_connect_us ([0-9.]+) ok (\d+)", out)
        live = [s for s in samples if s[2] > 0]
        if live and m:
            total = live[-1][0]
            early = [s[2] for s in live if s[0] <= max(total * 0.02, 0.2)]
            memory[tag] = (early[-1] if early else live[0][2], max(s[2] for s in live),
                           live[-1][2], int(m.group(2)))
        else:
            print("  memory%s failed: %s" % (tag, out.strip()[-200:]), file=sys.stderr)
    print("\nThe seccomp supervisor: %d blocking connects in a row through danted (no delay); "
          "medians of %d rounds, idle and with both cores busy (two `yes` processes):"
          % (n, rounds))
    print("\n| path | µs per connect, idle | µs per connect, loaded |\n|---|---|---|")
    for name in rows:
        cells = ["%.1f" % d[name] if name in d else "-" for d in (idle, loaded)]
        print("| %s | %s |" % (name, " | ".join(cells)))
    direct = "direct (no proxy), static"
    for tag in tools:
        for label, d in (("idle", idle), ("loaded", loaded)):
            if all(k in d for k in (direct, "preload" + tag, "supervisor" + tag)):
                pre = d["preload" + tag] - d[direct]
                sup = d["supervisor" + tag] - d[direct]
                print("\nAdded over the direct path%s, %s: preload %.1f µs, supervisor %.1f µs "
                      "(x%.2f of the preload's)" % (tag, label, pre, sup,
                                                     sup / pre if pre > 0 else float("nan")))
    print("\nGo (CGO_ENABLED=0), one dial per goroutine, each echoing a line, through danted "
          "behind a %d ms round trip:\n\n| supervisor | 1 goroutine ms | 50 goroutines ms (x of 1) |"
          "\n|---|---|---|" % (2 * DELAY_MS))
    for tag in tools:
        if conc[(tag, 1)] and conc[(tag, 50)]:
            one, fifty = statistics.median(conc[(tag, 1)]), statistics.median(conc[(tag, 50)])
            print("| socksify%s | %.1f | %.1f (x%.2f) |" % (tag, one, fifty, fifty / one))
    print("\n| supervisor | wrapper threads at most, %d Go dials at once | the dials |"
          "\n|---|---|---|" % dials)
    for tag, (peak, line) in threads.items():
        print("| socksify%s | %d | %s |" % (tag, peak, line))
    print("\n| supervisor | wrapper RSS KiB after 2%% | at most | at the end | connects ok "
          "(of %d) |\n|---|---|---|---|---|" % many)
    for tag, (early, peak, last, ok) in memory.items():
        print("| socksify%s | %d | %d | %d | %d |" % (tag, early, peak, last, ok))


# --- The pipelining stall: the first connection to a proxy that drops what is sent with the
# greeting (microsocks) waits for silence, then falls back. How long it waits (eight round
# trips of the greeting, at least 200 ms, at most 1.5 s) is measured here, not in the tests --

def report_stall():
    print("measuring the pipelining stall ...", file=sys.stderr)
    parallel_setup()  # the echo server and the delay relay
    spawn(P, "microsocks -i %s -p 1082" % PROXY, "microsocks.out")
    spawn(P, "%s/delay_relay %s 1087 %s 1082 %d" % (WORK, PROXY, PROXY, DELAY_MS),
          "delay-ms.out")
    wait_port(C, PROXY, 1082)
    wait_port(C, PROXY, 1087)
    sh("cc -O2 -o %s/connect_loop %s/bench/connect_loop.c" % (WORK, ROOT))
    rounds = 3 if QUICK else 15
    rows = {"microsocks, veth": 1082,
            "microsocks behind a %d ms round trip" % (2 * DELAY_MS): 1087}
    waited = {k: [] for k in rows}
    for _ in range(rounds):
        for name, port in rows.items():
            state = tempfile.mkdtemp(prefix="stall-", dir=WORK)  # nothing learned yet
            out = sh(in_ns(C, "env XDG_RUNTIME_DIR=%s %s -v -x socks5://%s:%d %s/connect_loop "
                              "%s 7001 1" % (state, SOCKSIFY, PROXY, port, WORK, TARGET)),
                     capture=True, check=False)
            m = re.search(r"waited (\d+) ms", out)
            if m and "ok 1" in out:
                waited[name].append(int(m.group(1)))
            else:
                print("  %s: no stall line: %s" % (name, out.strip()[-200:]), file=sys.stderr)
    print("\nThe pipelining stall (the first connection to a proxy that drops pipelined "
          "messages, nothing remembered yet); %d rounds:" % rounds)
    print("\n| proxy | stall ms, median | min | max |\n|---|---|---|---|")
    for name, v in waited.items():
        if v:
            print("| %s | %d | %d | %d |" % (name, statistics.median(v), min(v), max(v)))
    print("\n(The floor is 200 ms, the ceiling 1500 ms; later connections and processes do not "
          "stall: the verdict is remembered.)")


def report_http():
    """HTTP CONNECT upstreams: client waits for the proxy per connect (a relay in front of the
    proxy counts them; the TCP connect is one more round trip) and client instructions per
    connect, socksify against proxychains4 and Dante's client (and curl's own --proxytunnel),
    through tinyproxy without and with Basic."""
    tp = shutil.which("tinyproxy")
    if tp is None:
        sys.exit("bench: tinyproxy is not installed")
    for port, auth in ((3128, ""), (3129, "BasicAuth alice secret\n")):
        conf = os.path.join(WORK, "tinyproxy-%d.conf" % port)
        with open(conf, "w") as f:
            f.write("User nobody\nGroup nogroup\nPort %d\nListen %s\nTimeout 30\n"
                    "LogLevel Connect\nMaxClients 200\nAllow 192.0.2.0/24\n%s"
                    % (port, PROXY, auth))
        os.chmod(conf, 0o644)
        spawn(P, "%s -d -c %s" % (tp, conf), "tinyproxy-%d.log" % port)
        # The turns relay in front of it, on port + 100.
        spawn(P, "python3 %s/turns.py %s/turns.log %d %d" % (WORK, WORK, port + 100, port),
              "turns-%d.out" % port)
        wait_port(C, PROXY, port)
        wait_port(C, PROXY, port + 100)

    def confs(port, user):
        with open(os.path.join(WORK, "pc-http-%d.conf" % port), "w") as f:
            f.write("strict_chain\nproxy_dns\nquiet_mode\n[ProxyList]\nhttp %s %d%s\n"
                    % (PROXY, port, " alice secret" if user else ""))
        with open(os.path.join(WORK, "dante-http-%d.conf" % port), "w") as f:
            f.write("route {\n from: 0.0.0.0/0 to: 0.0.0.0/0 via: %s port = %d\n"
                    " proxyprotocol: http_v1.0\n method: none\n}\n" % (PROXY, port))

    def http_variants(port, user):
        confs(port, user)
        cred = "alice:secret@" if user else ""
        v = {
            "curl --proxytunnel": ("", "--proxytunnel -x http://%s%s:%d" % (cred, PROXY, port),
                                   True),
            "proxychains4": ("proxychains4 -q -f %s/pc-http-%d.conf" % (WORK, port), "", True),
            "socksify": ("env SOCKSIFY_PASSWORD=secret %s -x http://%s%s:%d"
                         % (SOCKSIFY, "alice@" if user else "", PROXY, port), "", False),
        }
        if not user:  # Dante's client speaks HTTP CONNECT without authentication only
            v["Dante socksify"] = ("env SOCKS_CONF=%s/dante-http-%d.conf /usr/bin/socksify"
                                   % (WORK, port), "", True)
        return v

    def connects(port):
        log = read_text(os.path.join(WORK, "tinyproxy-%d.log" % port))
        return log.count("Request (file descriptor")

    out = []
    for port, user, title in ((3128, False, "tinyproxy"), (3129, True, "tinyproxy, Basic")):
        rows = {}
        for name, (prefix, extra, anchor) in http_variants(port, user).items():
            print("measuring %s through %s ..." % (name, title), file=sys.stderr)
            before = connects(port)
            sh(curl_cmd(prefix, extra, ["http://%s:8080/s" % TARGET]))
            time.sleep(0.2)
            if connects(port) <= before:
                print("  %s: the request did NOT cross the proxy; row left out" % name,
                      file=sys.stderr)
                continue
            wprefix, wextra, _ = http_variants(port + 100, user)[name]
            rows[name] = {"anchor": anchor, "instr": per_connection_instructions(prefix, extra),
                          "waits": waits(wprefix, wextra)}
        anchors = [v["instr"] for v in rows.values() if v["anchor"]]
        best = min(anchors) if anchors else float("nan")
        out.append("\n%s: round trips from connect() to connected (the TCP connect and the "
                   "proxy's answers the client waited for) and client instructions per "
                   "connect; ratio against the best other tool\n" % title)
        out.append("| tool | round trips to connected | client instr/conn | ratio |")
        out.append("|---|---|---|---|")
        for name, v in rows.items():
            out.append("| %s | %s | %.0f | x%.2f |" % (name, "%g" % (1 + v["waits"]), v["instr"],
                                                       v["instr"] / best))
    out += report_squid_basic()
    out += report_https()
    print("\n".join(out))


def table(title, rows, note):
    anchors = [v["instr"] for v in rows.values() if v["anchor"]]
    best = min(anchors) if anchors else float("nan")
    out = ["\n%s: %s; ratio against the best other tool\n" % (title, note),
           "| tool | round trips to connected | client instr/conn | ratio |", "|---|---|---|---|"]
    for name, v in rows.items():
        out.append("| %s | %s | %.0f | x%.2f |" % (name, "%g" % (1 + v["waits"]), v["instr"],
                                                   v["instr"] / best))
    return out


def measure_rows(variants, turns_variants, crossed, children=False):
    """Per tool: a request that must cross the proxy (else the row is left out), then client
    instructions per connect and the waits counted by the turns relay."""
    rows = {}
    for name, (prefix, extra, anchor) in variants.items():
        print("measuring %s ..." % name, file=sys.stderr)
        before = crossed()
        sh(curl_cmd(prefix, extra, ["http://%s:8080/s" % TARGET]))
        time.sleep(0.3)
        if crossed() <= before:
            print("  %s: the request did NOT cross the proxy; row left out" % name,
                  file=sys.stderr)
            continue
        wprefix, wextra, _ = turns_variants[name]
        rows[name] = {"anchor": anchor,
                      "instr": per_connection_instructions(prefix, extra, children),
                      "waits": waits(wprefix, wextra)}
    return rows


def report_squid_basic():
    """squid asking for Basic (basic_ncsa_auth): socksify against curl and proxychains4."""
    squid = shutil.which("squid") or "/usr/sbin/squid"
    d = os.path.join(WORK, "squid")
    os.makedirs(d, exist_ok=True)
    hashed = sh("openssl passwd -apr1 secret", capture=True).strip()
    with open(os.path.join(d, "passwd"), "w") as f:
        f.write("alice:%s\n" % hashed)
    with open(os.path.join(d, "squid.conf"), "w") as f:
        f.write("http_port %s:3131\nauth_param basic program /usr/lib/squid/basic_ncsa_auth %s\n"
                "auth_param basic children 3\nacl authed proxy_auth REQUIRED\n"
                "http_access allow authed\nhttp_access deny all\ncache deny all\n"
                "access_log stdio:%s/access.log\ncache_log %s/cache.log\n"
                "pid_filename %s/squid.pid\ncoredump_dir %s\nshutdown_lifetime 0 seconds\n"
                % (PROXY, os.path.join(d, "passwd"), d, d, d, d))
    sh("chown -R proxy %s && chmod 0644 %s/squid.conf %s/passwd" % (d, d, d))
    spawn(P, "%s -N -f %s/squid.conf" % (squid, d), "squid.out")
    spawn(P, "python3 %s/turns.py %s/turns.log 3231 3131" % (WORK, WORK), "turns-3131.out")
    wait_port(C, PROXY, 3131)
    wait_port(C, PROXY, 3231)

    def variants(port):
        with open(os.path.join(WORK, "pc-squid-%d.conf" % port), "w") as f:
            f.write("strict_chain\nproxy_dns\nquiet_mode\n[ProxyList]\nhttp %s %d alice secret\n"
                    % (PROXY, port))
        return {
            "curl --proxytunnel": ("", "--proxytunnel -x http://alice:secret@%s:%d" % (PROXY, port),
                                   True),
            "proxychains4": ("proxychains4 -q -f %s/pc-squid-%d.conf" % (WORK, port), "", True),
            "socksify": ("env SOCKSIFY_PASSWORD=secret %s -x http://alice@%s:%d"
                         % (SOCKSIFY, PROXY, port), "", False),
        }

    rows = measure_rows(variants(3131), variants(3231),
                        lambda: read_text(os.path.join(d, "access.log")).count("CONNECT"))
    return table("squid, Basic", rows, "round trips from connect() to connected and client "
                 "instructions per connect")


def report_https():
    """An HTTPS proxy (stunnel in front of tinyproxy): socksify (curl plus its relay process)
    against curl's own HTTPS-proxy client. proxychains4 and Dante's client have none."""
    d = os.path.join(WORK, "tls")
    os.makedirs(d, exist_ok=True)
    sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.pem "
       "-subj /CN=bench-CA 2>/dev/null && openssl req -newkey rsa:2048 -nodes -keyout p.key "
       "-out p.csr -subj /CN=%s 2>/dev/null && printf 'subjectAltName=IP:%s\\n' > p.ext && "
       "openssl x509 -req -days 2 -in p.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out p.pem "
       "-extfile p.ext 2>/dev/null" % (d, PROXY, PROXY))
    with open(os.path.join(d, "stunnel.conf"), "w") as f:
        f.write("foreground = yes\npid =\nsyslog = no\n[https]\naccept = %s:3443\n"
                "connect = %s:3128\ncert = %s/p.pem\nkey = %s/p.key\n" % (PROXY, PROXY, d, d))
    spawn(P, "stunnel4 %s/stunnel.conf" % d, "stunnel.out")
    # The turns relay in front of stunnel, counting TLS flights.
    spawn(P, "python3 %s/turns.py %s/turns.log 3543 3443 tls" % (WORK, WORK), "turns-3443.out")
    wait_port(C, PROXY, 3443)
    wait_port(C, PROXY, 3543)
    ca = os.path.join(d, "ca.pem")

    def variants(port):
        return {
            "curl (its own HTTPS proxy client)": (
                "", "--proxytunnel -x https://%s:%d --proxy-cacert %s" % (PROXY, port, ca), True),
            "socksify": ("%s -q --mode preload -x https://%s:%d --proxy-cacert %s"
                         % (SOCKSIFY, PROXY, port, ca), "", False),
        }

    def crossed():
        return read_text(os.path.join(WORK, "tinyproxy-3128.log")).count("Request (file descriptor")

    rows = measure_rows(variants(3443), variants(3543), crossed, children=True)
    return table("HTTPS proxy (stunnel, TLS 1.3, in front of tinyproxy)", rows,
                 "round trips from connect() to connected (TCP, TLS, CONNECT) and client "
                 "instructions per connect, every process of the client counted (socksify's "
                 "relay too)")


def report_fakedns():
    """The fake-DNS table shared by a user's socksified processes (a file in the runtime
    directory) against the build given by SOCKSIFY_BENCH_BASELINE_TOOL (an older socksify,
    whose table is private to each process tree), in the same run: client instructions per
    connect (by address, and by a name the proxy resolves: each connect maps the fake address
    back to its name), and the cost of one lookup (a new name, a known name, an address back
    to its name) in instructions and nanoseconds."""
    sh("cc -O2 -o %s/fakedns_lookups %s/bench/fakedns_lookups.c" % (WORK, ROOT))
    tools = {"socksify": SOCKSIFY}
    base = os.environ.get("SOCKSIFY_BENCH_BASELINE_TOOL")
    if base:
        tools["socksify (baseline)"] = base
    fresh = [0]

    def runtime_dir():
        # A new, empty runtime directory per measured run: the shared table starts empty,
        # as the baseline's private one does.
        fresh[0] += 1
        d = os.path.join(WORK, "run-%d" % fresh[0])
        os.makedirs(d, mode=0o700)
        return d

    def prefix(tool):
        return "env XDG_RUNTIME_DIR=%s %s -q -x socks5h://%s:1080" % (runtime_dir(), tool, PROXY)

    def lookups_instr(tool, add, again, reverse):
        out = sh(in_ns(C, "%s valgrind --tool=callgrind --callgrind-out-file=/dev/null "
                          "%s/fakedns_lookups %d %d %d" % (prefix(tool), WORK, add, again,
                                                           reverse)),
                 capture=True, check=False)
        m = re.findall(r"Collected : (\d+)", out)
        if not m:
            raise RuntimeError("callgrind failed:\n" + out[-2000:])
        return int(m[-1])

    n = 200 if QUICK else 1000
    rows = {}
    for name, tool in tools.items():
        print("measuring %s ..." % name, file=sys.stderr)
        r = {}
        for label, host in (("by address", TARGET), ("by name", "target.bench")):
            urls = lambda k: " ".join("-o /dev/null http://%s:8080/s" % host for _ in range(k))
            counts = []
            for k in (1, 21):
                out = sh(in_ns(C, "%s valgrind --tool=callgrind --callgrind-out-file=/dev/null "
                                  "curl -s %s" % (prefix(tool), urls(k))),
                         capture=True, check=False)
                m = re.findall(r"Collected : (\d+)", out)
                if not m:
                    raise RuntimeError("callgrind failed:\n" + out[-2000:])
                counts.append(int(m[-1]))
            r[label] = (counts[1] - counts[0]) / 20
        r["first lookup"] = lookups_instr(tool, 1, 0, 0) - lookups_instr(tool, 0, 0, 0)
        r["new name"] = (lookups_instr(tool, 2 * n, 0, 0) - lookups_instr(tool, n, 0, 0)) / n
        r["known name"] = (lookups_instr(tool, n, 2 * n, 0) - lookups_instr(tool, n, n, 0)) / n
        r["address to name"] = (lookups_instr(tool, n, 0, 2 * n) -
                                lookups_instr(tool, n, 0, n)) / n
        # Wall clock, 5 runs interleaved below; the median.
        r["ns"] = []
        rows[name] = r
    rounds = 2 if QUICK else 5
    big = 20000 if QUICK else 100000
    for _ in range(rounds):
        for name, tool in tools.items():
            out = sh(in_ns(C, "%s %s/fakedns_lookups %d %d %d" % (prefix(tool), WORK, big, big,
                                                                  big)),
                     capture=True, check=False)
            m = re.search(r"add_ns ([0-9.]+) again_ns ([0-9.]+) reverse_ns ([0-9.]+)", out)
            if not m:
                raise RuntimeError("fakedns_lookups failed: " + out[-500:])
            rows[name]["ns"].append(tuple(float(x) for x in m.groups()))
    print("\nfake DNS: one table for the user's processes (instructions counted by callgrind; "
          "time: median of %d runs of %d calls each)" % (rounds, big))
    print("%-22s %12s %12s %12s %12s %12s %12s" % ("", "conn/addr", "conn/name", "1st lookup",
                                                  "new name", "known name", "addr->name"))
    keys = ("by address", "by name", "first lookup", "new name", "known name", "address to name")
    for name, r in rows.items():
        print("%-22s " % name + " ".join("%12.0f" % r[k] for k in keys))
    for name, r in rows.items():
        med = [statistics.median(x[i] for x in r["ns"]) for i in range(3)]
        print("%-22s ns per call: new name %.0f, known name %.0f, address to name %.0f" % (
            name, med[0], med[1], med[2]))
    if base:
        a, b = rows["socksify"], rows["socksify (baseline)"]
        print("ratios against the baseline (instructions): " + ", ".join(
            "%s x%.3f" % (k, a[k] / b[k]) for k in keys))
        na = [statistics.median(x[i] for x in a["ns"]) for i in range(3)]
        nb = [statistics.median(x[i] for x in b["ns"]) for i in range(3)]
        print("ratios against the baseline (time): new name x%.2f, known name x%.2f, "
              "address to name x%.2f" % tuple(na[i] / nb[i] for i in range(3)))


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def main():
    if os.geteuid() != 0:
        sys.exit("bench: needs root (network namespaces)")
    setup()
    if "--udp" in sys.argv:  # only the UDP part
        report_udp()
        return
    if "--gssapi" in sys.argv:  # only the GSSAPI part
        report_gssapi()
        return
    if "--parallel" in sys.argv:  # only the parallel connects
        report_parallel()
        return
    if "--supervisor" in sys.argv:  # only the supervisor
        report_supervisor()
        return
    if "--stall" in sys.argv:  # only the pipelining stall
        report_stall()
        return
    if "--fakedns" in sys.argv:  # only the fake-DNS table
        report_fakedns()
        return
    if "--http" in sys.argv:  # only the HTTP CONNECT upstreams (and squid, and HTTPS)
        report_http()
        return
    rows = {}
    for name, (prefix, extra, anchor) in variants(1080).items():
        print("measuring %s ..." % name, file=sys.stderr)
        wprefix, wextra, _ = variants(1081)[name]
        before = via_proxy_count()
        sh(curl_cmd(prefix, extra, ["http://%s:8080/s" % TARGET]))
        time.sleep(0.2)
        crossed = via_proxy_count() > before
        if name != "direct (no proxy)" and not crossed:
            print("  %s: the request did NOT go through the proxy; row left out" % name,
                  file=sys.stderr)
            continue
        rows[name] = {
            "anchor": anchor,
            "instr": per_connection_instructions(prefix, extra),
            "waits": float("nan") if name == "direct (no proxy)" else waits(wprefix, wextra),
            "rss": rss(prefix, extra),
        }
    print("measuring throughput (interleaved) ...", file=sys.stderr)
    all_variants = variants(1080)
    mibs = throughput_all({name: all_variants[name][:2] for name in rows})
    for name in rows:
        rows[name]["mibs"] = mibs[name]
    # Start-up: wrappers around /bin/true, and the preloaded library alone.
    empty = os.path.join(WORK, "empty.so")  # the loader's own cost of preloading anything
    with open(os.path.join(WORK, "empty.c"), "w") as f:
        f.write("int socksify_bench_empty(void) { return 0; }\n")
    sh("cc -O2 -shared -fPIC -o %s %s/empty.c" % (empty, WORK))
    starts = startup_ms([
        "env LD_PRELOAD=%s /bin/true" % empty,
        "/bin/true",
        "env SOCKSIFY_PROXY=socks5h://%s:1080 LD_PRELOAD=%s /bin/true" % (PROXY, SHIM),
        "env /bin/true",
        "%s -x socks5h://%s:1080 /bin/true" % (SOCKSIFY, PROXY),  # validates the config too
        "proxychains4 -q -f %s/proxychains-1080.conf /bin/true" % WORK,
        "env TORSOCKS_CONF_FILE=%s/torsocks-1080.conf torsocks /bin/true" % WORK,
        "env SOCKS5_SERVER=%s:1080 /usr/bin/socksify /bin/true" % PROXY,
    ])
    empty_true, bare, preload, env_true, ours, pc, ts, dante = starts

    # The same start-up in instructions (exact, unlike the wall clock on a shared machine).
    def true_instr(env):
        out = sh("env %s valgrind --tool=callgrind --callgrind-out-file=/dev/null /bin/true" % env,
                 capture=True)
        return int(re.findall(r"Collected : (\d+)", out)[-1])
    i_bare = true_instr("")
    i_ours = true_instr("SOCKSIFY_PROXY=socks5h://%s:1080 LD_PRELOAD=%s" % (PROXY, SHIM))
    i_pc = true_instr("PROXYCHAINS_CONF_FILE=%s/proxychains-1080.conf LD_PRELOAD=%s"
                      % (WORK, "/usr/lib/x86_64-linux-gnu/libproxychains.so.4"))
    for name, v in (("socksify", ours), ("proxychains4", pc), ("torsocks", ts),
                    ("Dante socksify", dante)):
        rows[name]["start"] = v
    for name in rows:
        rows[name].setdefault("start", float("nan"))

    anchors = {k: v for k, v in rows.items() if v["anchor"]}

    def best(col, higher=False):
        vals = [v[col] for v in anchors.values() if v[col] == v[col]]
        return max(vals) if higher else min(vals)

    cols = [("instr", "client instr/conn", False), ("waits", "waits/CONNECT", False),
            ("mibs", "MiB/s", True), ("start", "wrapper `X true` ms", False),
            ("rss", "max RSS KiB", False)]
    print("\n| tool | " + " | ".join(c[1] for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, v in rows.items():
        cells = []
        for col, _, higher in cols:
            x = v[col]
            if x != x:
                cells.append("-")
                continue
            b = best(col, higher)
            ratio = (b / x if higher else x / b) if b else float("nan")
            fmt = "%.0f" if col in ("instr", "rss") else ("%.0f" if col == "waits" else "%.2f")
            if col == "mibs":
                fmt = "%.0f"
            cells.append((fmt % x) + " (x%.2f)" % ratio)
        print("| %s | %s |" % (name, " | ".join(cells)))
    print("\nratios: against the best anchor in the column (proxychains4, Dante socksify, torsocks,")
    print("curl's own SOCKS client); the direct path is the floor, shown for reference.")
    print("throughput ratio = best anchor / tool (so x1.00 or lower is as fast or faster).")
    print("start-up, median of interleaved runs: bare /bin/true %.2f ms; `env /bin/true` %.2f ms;"
          " preloading libsocksify.so alone: %.2f ms (x%.3f of `env /bin/true`); preloading an"
          " empty library: %.2f ms (x%.3f)."
          % (bare, env_true, preload, preload / env_true, empty_true, empty_true / env_true))
    print("socksify wrapper: x%.2f of bare /bin/true; fastest other wrapper (proxychains4): x%.2f."
          % (ours / bare, pc / bare))
    report_udp()
    report_gssapi()
    report_parallel()
    report_supervisor()
    report_stall()
    print("instructions to run /bin/true: bare %d; with libsocksify.so preloaded %d (+%d);"
          " with libproxychains.so.4 preloaded %d (+%d)."
          % (i_bare, i_ours, i_ours - i_bare, i_pc, i_pc - i_bare))


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
