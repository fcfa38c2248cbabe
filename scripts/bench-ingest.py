#!/usr/bin/env python3
# Ingest benchmark for brisk-server (docs/benchmarks.md, "brisk-server"):
#   python3 scripts/bench-ingest.py PORT TOTAL CONNECTIONS
# Builds TOTAL/1000 bodies of 1,000 posts (words from the demo dictionary's
# names and terms plus filler, created in the last 7 days) before the clock
# starts, then POSTs them to /api/posts over CONNECTIONS keep-alive
# connections and prints the time, posts/s and the batch latency p50/max.
# Sends to 127.0.0.1 only; stops after TOTAL posts.
import http.client, json, random, sys, threading, time
port, total, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
names = ["Acme", "$ACME", "@acme", "#acme", "Globex", "Initech", "bitcoin", "launch", "outage", "earnings", "great", "terrible", "the", "a", "new", "today", "is", "not", "really", "about"]
rng = random.Random(7)
now = int(time.time() * 1000)
bodies = []
run = random.SystemRandom().randrange(1 << 30)  # a new id space each run: a re-run must not re-send ids the server already has
for b in range(total // 1000):
    posts = []
    for i in range(1000):
        n = rng.randint(8, 25)
        posts.append({"id": f"ing-{run}-{b}-{i}", "text": " ".join(rng.choice(names) for _ in range(n)),
                      "author": f"user{rng.randrange(500)}", "source": "load",
                      "created_at": now - rng.randrange(7 * 86400 * 1000), "language": "en"})
    bodies.append(json.dumps(posts).encode())
lat = []
lock = threading.Lock()
idx = [0]
def worker():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while True:
        with lock:
            if idx[0] >= len(bodies): return
            body = bodies[idx[0]]; idx[0] += 1
        t = time.perf_counter()
        c.request("POST", "/api/posts", body, {"content-type": "application/json"})
        r = c.getresponse(); data = r.read()
        if r.status != 200 and r.status != 201:
            print("status", r.status, data[:200]); sys.exit(1)
        with lock: lat.append(time.perf_counter() - t)
t0 = time.perf_counter()
ts = [threading.Thread(target=worker) for _ in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
el = time.perf_counter() - t0
lat.sort()
print(f"{total} posts in {el:.2f} s ({total/el:,.0f} posts/s); batch p50 {lat[len(lat)//2]*1000:.0f} ms, max {lat[-1]*1000:.0f} ms")
