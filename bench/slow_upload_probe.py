#!/usr/bin/env python3
"""Issue 7, finding 11: the latency of GET /metrics while slow chunked uploads run.

Usage: bench/slow_upload_probe.py [ALTSOCK_BINARY] [PORT]

Starts `altsock serve` (default target/release/altsock) on 127.0.0.1:PORT with
a temporary database, probes GET /metrics for 3 s alone, then for 9 s while
four clients each send 40 one-byte chunks a millisecond to POST /register
(the issue's reproduction), and prints p50/p99/max of each phase. A figure for
the README or an issue note, not a test: it asserts nothing.
"""
import multiprocessing, os, socket, subprocess, sys, tempfile, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/altsock"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 19480
ADDR = ("127.0.0.1", PORT)


def probe_once():
    s = socket.create_connection(ADDR)
    t = time.perf_counter()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    took = time.perf_counter() - t
    s.close()
    return took


def probe(seconds):
    times, end = [], time.time() + seconds
    while time.time() < end:
        times.append(probe_once())
        time.sleep(0.01)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
    return f"n={len(times)} p50={pick(.5):.2f} ms p99={pick(.99):.2f} ms max={times[-1]*1000:.2f} ms"


def slow_upload(seconds):
    s = socket.create_connection(ADDR)
    s.sendall(b"POST /register HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    t = time.time()
    try:
        while time.time() - t < seconds:
            s.sendall(b"1\r\nx\r\n" * 40)
            time.sleep(.001)
    except OSError as e:
        print(f"uploader stopped early: {e}", file=sys.stderr)
    s.close()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{PORT}",
                                   "--db", os.path.join(tmp, "probe.db")],
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(ADDR).close()
                    break
                except OSError:
                    time.sleep(.05)
            print("idle:            ", probe(3))
            # Separate processes, as in the issue, so the uploaders do not
            # share the prober's interpreter lock.
            ups = [multiprocessing.Process(target=slow_upload, args=(9,)) for _ in range(4)]
            for u in ups:
                u.start()
            time.sleep(.2)
            print("4 slow uploads:  ", probe(8.5))
            for u in ups:
                u.join()
        finally:
            server.terminate()
            server.wait()


main()
