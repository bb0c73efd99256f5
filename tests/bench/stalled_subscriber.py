"""A subscriber that never reads: subscribes from index 1 on the given raftd socket, prints
"subscribed" once the reply arrives, then holds the connection open without reading until
killed. raftd must keep its memory for this client bounded (docs/protocol.md 6.4).

usage: stalled_subscriber.py SOCKET
"""
import socket, struct, sys, time

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # stall early, not after megabytes
s.connect(sys.argv[1])
# {"op": "subscribe", "id": 1, "from": 1}
body = b"\x83\xa2op\xa9subscribe\xa2id\x01\xa4from\x01"
s.sendall(struct.pack(">I", len(body)) + body)
head = s.recv(4)
s.recv(struct.unpack(">I", head)[0])
print("subscribed", flush=True)
while True:
    time.sleep(3600)
