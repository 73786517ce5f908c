"""(issue 24) Round trip of one resident pass's messages (request of N bytes, answer of M bytes) over
multiprocessing Connection: TCP 127.0.0.1 with TCP_NODELAY (before) vs AF_UNIX (after), alternated."""
import os, socket, sys, tempfile, time, json
import numpy as np
from multiprocessing.connection import Connection

def pair(kind):
    if kind == "tcp":
        srv = socket.create_server(("127.0.0.1", 0)); addr = srv.getsockname(); fam = socket.AF_INET
    else:
        d = tempfile.mkdtemp(); addr = os.path.join(d, "s"); srv = socket.socket(socket.AF_UNIX); srv.bind(addr); srv.listen(); fam = socket.AF_UNIX
    pid = os.fork()
    if pid == 0:
        s = socket.socket(fam); s.connect(addr)
        if fam == socket.AF_INET: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Connection(s.detach())
        try:
            while True:
                m = c.recv_bytes()
                if m == b'EXIT': os._exit(0)
                c.send_bytes(b"x" * int(m[:8]))
        except EOFError:
            os._exit(0)
    s, _ = srv.accept(); srv.close()
    if fam == socket.AF_INET: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Connection(s.detach()), pid

res = {}
for req, ans in [(2_000, 2_000), (63_000, 63_000)]:  # small: 5×20 model; wide: 784×10 coef + grad
    t = {"tcp": [], "unix": []}
    conns = {k: pair(k) for k in t}
    for rnd in range(1000):
        for k in (("tcp", "unix") if rnd % 2 else ("unix", "tcp")):
            c = conns[k][0]; msg = b"%08d" % ans + b"y" * (req - 8)
            t0 = time.perf_counter(); c.send_bytes(msg); c.recv_bytes(); t[k].append(time.perf_counter() - t0)
    for c, pid in conns.values(): c.send_bytes(b'EXIT'); os.waitpid(pid, 0); c.close()
    res[f"{req}B"] = {k: round(float(np.median(v)) * 1e6, 1) for k, v in t.items()}
print(json.dumps({"median_round_trip_us": res, "load": os.getloadavg()[0]}))
