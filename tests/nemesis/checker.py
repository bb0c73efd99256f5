"""Checkers of the nemesis suite: linearizability of a KV history and the commit-stream
invariants (agreement, acknowledged entries present, UNAVAILABLE never committed, no
duplicates). Pure functions over recorded data; no I/O. See docs/testing.md.

History operations are dicts:
  {"client": c, "f": "w" | "r", "key": k, "value": v, "call": t0, "ret": t1 or None, ...}
`ret` None marks an indeterminate write (it may or may not have taken effect, at any time
after its call). Reads that failed are not in the history: they had no effect. Write values
are unique per history; a read's value is the value it saw (None: the key was never
written). Every register starts at None.
"""
import time
from collections import defaultdict

INF = float("inf")


class Unknown(Exception):
    """The search ran out of its time budget."""


def check_register(ops, budget_s=30.0, info=None):
    """Wing & Gong's search with Lowe's memoisation (the core of Knossos / Porcupine) for one
    register. Returns (True, None) or (False, explanation); raises Unknown on timeout.

    A state is (set of linearized operations, register value); each state is explored at
    most once. An operation may be linearized next iff no other pending operation returned
    before it was called. Indeterminate writes never return, so they never constrain others,
    and they need not be linearized at all.
    """
    values = {o["value"] for o in ops if o["f"] == "w"}
    for o in ops:
        if o["f"] == "r" and o["value"] is not None and o["value"] not in values:
            return False, f"read of {o['value']!r} which no write wrote: {fmt(o)}"
    # An indeterminate write nobody read can always be left out (dropping it from a valid
    # linearization keeps it valid), so drop it: it only widens the search.
    read_values = {o["value"] for o in ops if o["f"] == "r"}
    ops = [o for o in ops if not (o["f"] == "w" and o["ret"] is None
                                  and o["value"] not in read_values)]
    ops = sorted(ops, key=lambda o: o["call"])
    n = len(ops)
    if n == 0:
        return True, None
    calls = [o["call"] for o in ops]
    rets = [INF if o["ret"] is None else o["ret"] for o in ops]
    required = 0
    for i, o in enumerate(ops):
        if o["ret"] is not None:
            required |= 1 << i
    indet = [i for i in range(n) if rets[i] == INF]
    deadline = time.monotonic() + budget_s
    seen = set()
    stack = [(0, None, 0)]
    best = 0  # the largest linearized count reached, for the explanation
    best_mask = 0
    steps = 0
    while stack:
        mask, value, count = stack.pop()
        if mask & required == required:
            return True, None
        steps += 1
        if steps & 1023 == 0 and time.monotonic() > deadline:
            raise Unknown(f"register search exceeded {budget_s}s ({len(seen)} states)")
        if count > best:
            best, best_mask = count, mask
        # Only a window of operations can go next: from the first pending acknowledged
        # one (everything acknowledged before it is linearized) up to the earliest pending
        # return, plus indeterminate writes left pending before the window (they never
        # return, so they stay candidates). The scans never walk the whole history.
        pend = required & ~mask
        lo = (pend & -pend).bit_length() - 1
        # The earliest return among pending operations bounds which calls may go next. An
        # operation called after that bound returns after it too, so the scan stops there.
        min_ret = INF
        for i in range(lo, n):
            if calls[i] > min_ret:
                break
            if rets[i] < min_ret and not mask >> i & 1:
                min_ret = rets[i]
        succ = []
        greedy = None
        want = None  # the value the earliest pending read needs
        for i in indet:
            if i >= lo:
                break
            if not mask >> i & 1:
                succ.append((ops[i]["value"], i))
        for i in range(lo, n):
            if calls[i] > min_ret:
                break  # sorted by call: no later operation can go next either
            if mask >> i & 1:
                continue
            o = ops[i]
            if o["f"] == "w":
                succ.append((o["value"], i))
            elif o["value"] == value:
                # A read of the current value may always go first: it changes no state and
                # only lifts its own return bound. No other successor needs exploring.
                greedy = i
                break
            elif want is None:
                want = o["value"]
        if greedy is not None:
            succ = [(value, greedy)]
        else:
            # Depth-first: try the write the earliest pending read waits for first (pushed
            # last, popped first).
            succ.sort(key=lambda s: s[0] == want)
        for nv, i in succ:
            st = (mask | 1 << i, nv)
            if st not in seen:
                seen.add(st)
                stack.append(st + (count + 1,))
    stuck = [ops[i] for i in range(n) if not best_mask >> i & 1 and rets[i] != INF]
    stuck.sort(key=lambda o: o["call"])
    if info is not None and stuck:
        info["at"] = stuck[0]["call"]
    return False, ("no linearization; the longest one found linearizes "
                   f"{best} of {n} operations and cannot place: "
                   + "; ".join(fmt(o) for o in stuck[:4]))


def fmt(o):
    ret = "?" if o["ret"] is None else f"{o['ret']:.4f}"
    return (f"c{o.get('client', '?')} {o['f']}({o['key']!r}) = {o['value']!r} "
            f"[{o['call']:.4f}, {ret}]")


def check_kv(history, budget_s=60.0):
    """Linearizability of a KV history, checked per key (a KV map is linearizable iff each
    key's register is: locality, Herlihy & Wing). Returns
    {"ok": bool | None, "keys": n, "bad": {key: explanation}, "unknown": [keys]}."""
    by_key = defaultdict(list)
    for o in history:
        by_key[o["key"]].append(o)
    bad, unknown, at = {}, [], {}
    deadline = time.monotonic() + budget_s
    for k in sorted(by_key, key=str):
        try:
            info = {}
            ok, why = check_register(by_key[k], max(1.0, deadline - time.monotonic()), info)
        except Unknown:
            unknown.append(k)
            continue
        if not ok:
            bad[k] = why
            if "at" in info:
                at[k] = info["at"]
    ok = False if bad else (None if unknown else True)
    return {"ok": ok, "keys": len(by_key), "bad": bad, "unknown": unknown, "bad_at": at}


def check_streams(deliveries, acked, unavailable, ident):
    """The commit-stream invariants.

    deliveries: iterable of (node, index, term, type, data) as each node's commit stream
      delivered them (across restarts: a node may deliver an index more than once).
    acked: iterable of (data, index, term) answered ok to a proposer.
    unavailable: iterable of data answered UNAVAILABLE.
    ident: data -> a unique identity of the proposal (or None for foreign entries).
    Returns a list of human-readable violations (empty: all hold)."""
    errors = []
    at = {}          # index -> (term, type, data, first node that delivered it)
    where = {}       # identity -> index
    for node, index, term, typ, data in deliveries:
        cur = at.get(index)
        if cur is None:
            at[index] = (term, typ, data, node)
        elif cur[:3] != (term, typ, data):
            errors.append(f"disagreement at index {index}: node {cur[3]} delivered "
                          f"term {cur[0]} {cur[1]} {cur[2][:60]!r}, node {node} delivered "
                          f"term {term} {typ} {data[:60]!r}")
    for index, (term, typ, data, _) in at.items():
        if typ != "data":
            continue
        i = ident(data)
        if i is None:
            continue
        if i in where and where[i] != index:
            errors.append(f"proposal {i!r} committed twice: at {where[i]} and {index}")
        where[i] = index
    for data, index, term in acked:
        cur = at.get(index)
        if cur is None:
            errors.append(f"acknowledged {ident(data)!r} at index {index} term {term}: "
                          "no node delivered that index")
        elif (cur[0], cur[2]) != (term, data):
            errors.append(f"acknowledged {ident(data)!r} at index {index} term {term} "
                          f"is lost: the stream has term {cur[0]} {cur[2][:60]!r} there")
    for data in unavailable:
        i = ident(data)
        if i in where:
            errors.append(f"{i!r} was answered UNAVAILABLE but committed at index {where[i]}")
    return errors


def check_leaders(claims):
    """Election safety (Raft, Figure 3): at most one leader per term. claims: iterable of
    (node, term), one per 'became leader at term T' line of any node's log, across its
    restarts. Returns violations."""
    by_term = defaultdict(set)
    for node, term in claims:
        by_term[term].add(node)
    return [f"two leaders in term {t}: nodes {', '.join(map(str, sorted(ns)))}"
            for t, ns in sorted(by_term.items()) if len(ns) > 1]


def check_config_recovery(commit, configs):
    """A node restarted after a power cut is at most one configuration behind its own log
    (docs/raft.md, durability invariants: the commit known when entries were written is
    durable with them, and configuration changes go one at a time). `configs` are the
    indexes of the config entries the node's stream delivered before the cut (so they are in
    its durable log); `commit` is the commit index it recovered. Every one but the last must
    be covered by that commit, or the node starts with an older membership than one its log
    proves committed (the safety issue's bug 1). Returns a violation or None."""
    if len(configs) < 2 or commit >= configs[-2]:
        return None
    behind = sum(1 for c in configs if c > commit)
    return (f"it recovered commit {commit}, below the config entry at {configs[-2]} although "
            f"its stream had delivered config entries through {configs[-1]}: it restarts "
            f"{behind} configuration changes behind its own log, with a membership older "
            "than its log proves committed (the safety issue's bug 1)")
