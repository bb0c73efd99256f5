"""The membership fault of the nemesis suite: configuration changes through the public
protocol only (docs/protocol.md, section 4: add_member, promote, demote, remove_member,
change_members, transfer_leader), interleaved with the other faults. See docs/testing.md.

Two kinds of new member:
  - a spare: a real node of the run (ids after the initial ones) that is started with
    --join, as docs/operations.md section 5 says, once it was added as a learner (or as a
    voter, or through a joint change); a removed node is stopped and never started again,
    and a fresh spare with a new id takes its place in the pool;
  - a ghost: a voter added by an operator and never started (an address nobody listens
    on), removed again when the fault heals. While it is a voter every real voter is
    needed for a quorum; that is how the safety issue's bug 1 was first seen from outside.

`choose` is pure (unit-tested in test_checker.py): which change to make, from the
configuration the cluster reports now and a number drawn by the schedule. The rest drives
the cluster and owns the bookkeeping the other faults and the checkers need: which real
nodes are members now (fault targets are mapped onto them), and which nodes the liveness
bound applies to (the members of the final configuration).
"""
import random
import time

from raftd_client import Client, RaftdError

GHOST_BASE = 90        # ghost ids: 90, 91, ... (never a real node's id)
MIN_VOTERS = 3         # never demote or remove below this many voters
CALL_TIMEOUT = 8.0     # a membership change waits for its commit; a leader change costs ~1 s


def config_of(members):
    """{"voters", "learners", "outgoing"} (sorted id lists) of a protocol member list."""
    return {"voters": sorted(m["node"] for m in members if m.get("voter")),
            "learners": sorted(m["node"] for m in members if not m.get("voter")),
            "outgoing": sorted(m["node"] for m in members if m.get("outgoing"))}


def choose(view, pick):
    """The change to make, as a dict {"op", ...}, or {"op": "none", "why"}.

    view: {"voters", "learners": sorted ids; "joint": bool; "leader": id (0: none);
           "spares": ids of real nodes never started, in order; "ghost": the next ghost id;
           "real": ids of real nodes; "running": ids of real nodes running unpaused;
           "max_members": int}
    pick: a number in [0, 1) drawn by the schedule.

    Never leaves fewer than MIN_VOTERS voters, never touches the leader (transfer moves it
    first), adds a ghost only while every real voter runs (else the cluster would stop
    at once) and keeps at most one ghost, one change at a time (a joint configuration in
    force means the previous change is still running)."""
    if view["joint"]:
        return {"op": "none", "why": "a joint configuration is in force"}
    if not view["leader"]:
        return {"op": "none", "why": "no leader"}
    voters, learners = view["voters"], view["learners"]
    real, running, leader = set(view["real"]), set(view["running"]), view["leader"]
    members = len(voters) + len(learners)
    ghosts = [v for v in voters + learners if v not in real]
    spare = view["spares"][0] if view["spares"] else None
    others = [v for v in voters if v != leader and v in real]
    cands = []  # (weight, op) in a fixed order, so `pick` decides deterministically
    if spare is not None and members < view["max_members"]:
        cands.append((3.0, {"op": "add_learner", "node": spare}))
        cands.append((1.0, {"op": "add_voter", "node": spare}))
        if others and len(voters) >= MIN_VOTERS:
            # Replace a voter in one joint change (Raft thesis 4.3).
            cands.append((1.0, {"op": "joint", "add": spare, "remove": others[0]}))
    for n in learners:
        if n in real:
            cands.append((3.0, {"op": "promote", "node": n}))
            cands.append((1.0, {"op": "remove", "node": n}))
    if len(voters) > MIN_VOTERS and others:
        victim = others[-1]
        cands.append((1.5, {"op": "demote", "node": victim}))
        cands.append((1.5, {"op": "remove", "node": victim}))
    for g in ghosts:
        cands.append((4.0, {"op": "remove", "node": g}))
    if not ghosts and all(v in running for v in voters if v in real) and \
            members < view["max_members"]:
        cands.append((1.0, {"op": "ghost", "node": view["ghost"]}))
    targets = [v for v in others if v in running]
    if targets:
        cands.append((1.5, {"op": "transfer", "node": targets[int(pick * 7919) % len(targets)]}))
    if not cands:
        return {"op": "none", "why": "no change applies"}
    total = sum(w for w, _ in cands)
    x = pick * total
    for w, op in cands:
        if x < w:
            return op
        x -= w
    return cands[-1][1]


def remap_ids(ids, members, n_slots):
    """The schedule names nodes 1..n_slots; with members coming and going, slot i means the
    i-th current member (sorted), and slots past the membership wrap around."""
    if not members:
        return list(ids)
    return sorted({members[(i - 1) % len(members)] for i in ids})


def remap_sides(sides, members, n_slots, salt):
    """A partition drawn over slots 1..n_slots, mapped onto the current members; members
    beyond the slots join a side chosen from `salt` (so a grown cluster is still split
    everywhere, not bridged by its new members)."""
    if not members:
        return sides
    out = [sorted({members[(i - 1) % len(members)] for i in side}) for side in sides]
    seen = {x for side in out for x in side}
    rng = random.Random(salt)
    for m in members[n_slots:]:
        if m not in seen:
            out[rng.randrange(len(out))].append(m)
    # A member may be on both sides after wrapping; it then stays on the first only.
    out[1] = [x for x in out[1] if x not in out[0]]
    return [sorted(s) for s in out]


class Membership:
    """The driver side. `run` is the nemesis Run: its nodes, their state and a log."""

    def __init__(self, run, spares):
        self.run = run
        self.next_ghost = GHOST_BASE
        self.ghost_ports = {}
        self.counts = {}
        self.final = None   # the configuration after healing (ids), for liveness
        self.spares = spares

    # -- the cluster's view --------------------------------------------------------------
    def members_view(self):
        """(leader id, members list, joint) as the leader reports it, or (0, None, False)."""
        r = self.run
        for n in r.member_nodes():
            if not n.running() or n.paused:
                continue
            try:
                with Client(n.socket, timeout=1.0, name=None) as c:
                    st = c.status()
                lid = st["leader"]
                if lid and lid != n.id and lid in r.nodes and r.nodes[lid].running() \
                        and not r.nodes[lid].paused:
                    with Client(r.nodes[lid].socket, timeout=1.0, name=None) as c:
                        st = c.status()
                if st["leader"]:
                    return st["leader"], st["members"], st["joint"]
            except (RaftdError, OSError, KeyError):
                continue
        return 0, None, False

    def view(self):
        r = self.run
        lid, members, joint = self.members_view()
        if members is None:
            return None, None
        cfg = config_of(members)
        return members, {
            "voters": cfg["voters"], "learners": cfg["learners"], "joint": joint,
            "leader": lid, "spares": [n.id for n in r.nodes.values() if n.state == "spare"],
            "ghost": self.next_ghost, "real": sorted(r.nodes),
            "running": sorted(n.id for n in r.nodes.values()
                              if n.state == "member" and n.running() and not n.paused),
            "max_members": r.a.nodes + 2}

    # -- fault ---------------------------------------------------------------------------
    def call(self, op, **fields):
        """Sends one change through a running member (the leader or, half of the time, a
        follower that forwards it). Returns (reply or None, error code or None)."""
        r = self.run
        nodes = [n for n in r.member_nodes() if n.running() and not n.paused]
        if not nodes:
            return None, "NO_NODE"
        n = nodes[int(time.monotonic() * 1000) % len(nodes)]
        for attempt in range(4):
            try:
                with Client(n.socket, timeout=CALL_TIMEOUT, name=None) as c:
                    return c.call(op, **fields), None
            except RaftdError as e:
                if e.code != "BUSY" or attempt == 3:
                    return None, e.code
                time.sleep(0.3)
        return None, "BUSY"

    def inject(self, f):
        members, v = self.view()
        if v is None:
            f["op"] = {"op": "none", "why": "no leader answered"}
            return
        op = choose(v, f["pick"])
        f["op"] = op
        kind = op["op"]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == "none":
            return
        r = self.run
        if kind in ("add_learner", "add_voter"):
            n = r.nodes[op["node"]]
            reply, err = self.call("add_member", node=n.id, addr=f"127.0.0.1:{n.port}",
                                   learner=kind == "add_learner")
            self.after_add(n, reply, err, f)
        elif kind == "joint":
            n = r.nodes[op["add"]]
            reply, err = self.call("change_members",
                                   add=[{"node": n.id, "addr": f"127.0.0.1:{n.port}"}],
                                   remove=[op["remove"]])
            self.after_add(n, reply, err, f)
            self.after_remove(op["remove"], reply, err)
        elif kind == "promote":
            f["result"] = self.call("promote", node=op["node"])[1] or "ok"
        elif kind == "demote":
            f["result"] = self.call("demote", node=op["node"])[1] or "ok"
        elif kind == "remove":
            reply, err = self.call("remove_member", node=op["node"])
            f["result"] = err or "ok"
            self.after_remove(op["node"], reply, err)
        elif kind == "ghost":
            g = self.next_ghost
            self.next_ghost += 1
            # An address on loopback nobody listens on (a port just freed by the kernel).
            port = r.free_port()
            self.ghost_ports[g] = port
            f["result"] = self.call("add_member", node=g, addr=f"127.0.0.1:{port}")[1] or "ok"
        elif kind == "transfer":
            f["result"] = self.call("transfer_leader", to=op["node"])[1] or "ok"

    def after_add(self, n, reply, err, f):
        """A spare was named in a change: start it (--join) unless the change was refused.
        A change that timed out may still commit, so the node starts then too; if it never
        becomes a member it waits, not counted for liveness."""
        f["result"] = err or "ok"
        if err in (None, "TIMEOUT", "INDETERMINATE", "CONNECTION", "INTERNAL"):
            self.run.join_node(n)

    def after_remove(self, node, reply, err):
        """A removed real node is stopped for good (operations.md section 5). After an
        unclear outcome the configuration decides."""
        r = self.run
        if node not in r.nodes:
            return
        if err is not None:
            _, members, _ = self.members_view()
            if members is None or any(m["node"] == node for m in members):
                return
        r.retire_node(r.nodes[node])

    def heal(self, f):
        """A ghost voter is removed again when its fault ends; a spare added as a learner
        is promoted, as operations.md section 5 does once it caught up (a learner still
        behind becomes a voter that is behind: allowed, and a harder case)."""
        op = f.get("op", {})
        if op.get("op") == "ghost":
            self.remove_ghosts(deadline=time.monotonic() + 10)
        elif op.get("op") == "add_learner" and f.get("result") == "ok":
            f["result"] += ", promote -> " + (self.call("promote", node=op["node"])[1] or "ok")

    def remove_ghosts(self, deadline):
        while time.monotonic() < deadline:
            _, members, joint = self.members_view()
            ghosts = [m["node"] for m in members or [] if m["node"] not in self.run.nodes]
            if members is not None and not ghosts and not joint:
                return True
            for g in ghosts:
                self.call("remove_member", node=g)
            time.sleep(0.2)
        return False

    def heal_all(self):
        """After the workload: no ghost stays a voter (it would hold the quorum hostage),
        and the final configuration is what liveness is checked against."""
        ok = self.remove_ghosts(deadline=time.monotonic() + 30)
        _, members, joint = self.members_view()
        self.final = None if members is None else sorted(m["node"] for m in members)
        return ok

    def describe(self, f):
        op = f.get("op")
        if op is None:
            return "membership change (chosen when it starts)"
        k = op["op"]
        res = f" -> {f['result']}" if "result" in f else ""
        if k == "none":
            return f"membership: nothing ({op['why']})"
        if k == "joint":
            return (f"membership: joint change add {op['add']} remove {op['remove']}{res} "
                    f"for {f['dur']:.1f}s")
        what = {"add_learner": "add learner", "add_voter": "add voter", "promote": "promote",
                "demote": "demote", "remove": "remove", "ghost": "add never-started voter",
                "transfer": "transfer leadership to"}[k]
        return f"membership: {what} {op['node']}{res} for {f['dur']:.1f}s"
