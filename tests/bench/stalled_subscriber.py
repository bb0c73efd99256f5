"""A subscriber that never reads: subscribes from index 1 on the given raftd socket, prints
"subscribed" once the reply arrives, then holds the connection open without reading until
killed. raftd must keep its memory for this client bounded (docs/protocol.md 6.4).

usage: stalled_subscriber.py SOCKET
"""
import os, socket, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients",
                                "python"))
from raftd_client import encode_request, read_frame  # noqa: E402

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # stall early, not after megabytes
s.connect(sys.argv[1])
s.sendall(encode_request("subscribe", 1, **{"from": 1}))
read_frame(s)  # the reply, and not a byte of the events after it
print("subscribed", flush=True)
while True:
    time.sleep(3600)
