#!/usr/bin/python3
"""Unit tests of the nemesis checkers on small hand-made histories, linearizable and not."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import (check_config_recovery, check_kv, check_leaders, check_register,  # noqa: E402
                     check_streams)


def w(v, call, ret, key="x", c=0):
    return {"client": c, "f": "w", "key": key, "value": v, "call": call, "ret": ret}


def r(v, call, ret, key="x", c=0):
    return {"client": c, "f": "r", "key": key, "value": v, "call": call, "ret": ret}


class Register(unittest.TestCase):
    def ok(self, ops):
        res, why = check_register(ops)
        self.assertTrue(res, why)

    def bad(self, ops):
        res, why = check_register(ops)
        self.assertFalse(res)
        self.assertTrue(why)

    def test_empty_and_initial_read(self):
        self.ok([])
        self.ok([r(None, 0, 1)])

    def test_sequential(self):
        self.ok([w("a", 0, 1), r("a", 2, 3), w("b", 4, 5), r("b", 6, 7)])

    def test_stale_read_after_acknowledged_write(self):
        self.bad([w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)])

    def test_read_of_initial_after_write(self):
        self.bad([w("a", 0, 1), r(None, 2, 3)])

    def test_concurrent_write_either_order(self):
        # r overlaps w(b): may see a or b.
        self.ok([w("a", 0, 1), w("b", 2, 6), r("a", 3, 4)])
        self.ok([w("a", 0, 1), w("b", 2, 6), r("b", 3, 4)])

    def test_reads_must_agree_on_order(self):
        # Two concurrent writes; one reader sees a then b, another b then a: not linearizable.
        ops = [w("a", 0, 10, c=1), w("b", 0, 10, c=2),
               r("a", 1, 2, c=3), r("b", 3, 4, c=3),
               r("b", 1, 2, c=4), r("a", 3, 4, c=4)]
        self.bad(ops)

    def test_value_never_written(self):
        self.bad([w("a", 0, 1), r("zzz", 2, 3)])

    def test_indeterminate_write_may_take_effect_late(self):
        # w(b) never returned: a read long after may see it, or not.
        self.ok([w("a", 0, 1), w("b", 2, None), r("b", 100, 101)])
        self.ok([w("a", 0, 1), w("b", 2, None), r("a", 100, 101)])

    def test_indeterminate_write_cannot_act_before_its_call(self):
        self.bad([w("a", 0, 1), r("b", 2, 3), w("b", 5, None)])

    def test_indeterminate_write_cannot_be_undone(self):
        # Once b was read, a later read cannot see a again without a new write.
        self.bad([w("a", 0, 1), w("b", 2, None), r("b", 3, 4), r("a", 5, 6)])

    def test_read_sees_a_write_that_was_overwritten_before_it_began(self):
        self.bad([w("a", 0, 1), w("b", 2, 3), r("a", 4, 5), r("b", 6, 7)])


class KV(unittest.TestCase):
    def test_keys_are_independent(self):
        h = [w("a", 0, 1, key="x"), w("b", 0, 1, key="y"), r("a", 2, 3, key="x"),
             r("b", 2, 3, key="y")]
        self.assertTrue(check_kv(h)["ok"])

    def test_one_bad_key_is_reported(self):
        h = [w("a", 0, 1, key="x"), r(None, 2, 3, key="x"), w("b", 0, 1, key="y")]
        res = check_kv(h)
        self.assertFalse(res["ok"])
        self.assertEqual(list(res["bad"]), ["x"])

    def test_many_concurrent_indeterminate_writes_stay_fast(self):
        h = [w(f"v{i}", i, None, c=i) for i in range(40)]
        h += [r(f"v{i}", 100 + 2 * i, 101 + 2 * i, c=99) for i in range(0, 40, 3)]
        self.assertTrue(check_kv(h, budget_s=10)["ok"])


def simulated(n, seed, indeterminate=0.01):
    """A linearizable history of n operations on 3 keys from a simulated register whose
    operations take effect at a random point inside overlapping intervals."""
    import random
    rng = random.Random(seed)
    evs = []
    for i in range(n):
        call = i * 0.001 + rng.random() * 0.0005
        lin = call + rng.random() * 0.003
        evs.append((lin, f"k{rng.randrange(3)}", call, lin + rng.random() * 0.003, i))
    evs.sort()
    h, cur = [], {}
    for lin, k, call, ret, i in evs:
        if rng.random() < 0.5:
            cur[k] = f"v{i}"
            h.append(w(f"v{i}", call, None if rng.random() < indeterminate else ret, key=k))
        else:
            h.append(r(cur.get(k), call, ret, key=k))
    return h


class Scale(unittest.TestCase):
    def test_large_linearizable_history(self):
        self.assertTrue(check_kv(simulated(6000, 1), budget_s=30)["ok"])

    def test_one_stale_read_in_a_large_history(self):
        h = simulated(6000, 2)
        late = [o for o in h if o["f"] == "r" and o["call"] > 3 and o["value"] is not None]
        first = next(o for o in h if o["f"] == "w" and o["key"] == late[0]["key"])
        late[0]["value"] = first["value"]
        res = check_kv(h, budget_s=30)
        self.assertFalse(res["ok"])
        self.assertEqual(list(res["bad"]), [late[0]["key"]])


def ident(d):
    return d.decode()


class Streams(unittest.TestCase):
    def test_clean(self):
        dl = [(1, 1, 1, "noop", b""), (1, 2, 1, "data", b"p1"), (2, 2, 1, "data", b"p1"),
              (2, 1, 1, "noop", b"")]
        errs = check_streams(dl, [(b"p1", 2, 1)], [b"p2"], lambda d: d.decode() or None)
        self.assertEqual(errs, [])

    def test_disagreement(self):
        dl = [(1, 2, 1, "data", b"p1"), (2, 2, 2, "data", b"p3")]
        errs = check_streams(dl, [], [], ident)
        self.assertTrue(any("disagreement at index 2" in e for e in errs), errs)

    def test_lost_acknowledged(self):
        dl = [(1, 2, 2, "data", b"p3")]
        errs = check_streams(dl, [(b"p1", 2, 1)], [], ident)
        self.assertTrue(any("is lost" in e for e in errs), errs)
        errs = check_streams(dl, [(b"p1", 3, 1)], [], ident)
        self.assertTrue(any("no node delivered" in e for e in errs), errs)

    def test_unavailable_committed(self):
        errs = check_streams([(1, 2, 1, "data", b"p1")], [], [b"p1"], ident)
        self.assertTrue(any("UNAVAILABLE" in e for e in errs), errs)

    def test_duplicate(self):
        errs = check_streams([(1, 2, 1, "data", b"p1"), (1, 3, 1, "data", b"p1")], [], [], ident)
        self.assertTrue(any("committed twice" in e for e in errs), errs)


class Schedule(unittest.TestCase):
    def test_same_seed_same_schedule(self):
        from nemesis import FAULT_KINDS, make_schedule
        a = make_schedule(42, 5, 120, list(FAULT_KINDS))
        self.assertEqual(a, make_schedule(42, 5, 120, list(FAULT_KINDS)))
        self.assertNotEqual(a, make_schedule(43, 5, 120, list(FAULT_KINDS)))
        # Every kind is scheduled: within a few seeds of 120 s, as a campaign's runs are.
        kinds = {f["kind"] for seed in range(42, 46)
                 for f in make_schedule(seed, 5, 120, list(FAULT_KINDS))}
        self.assertEqual(kinds, set(FAULT_KINDS))

    def test_faults_fit_and_do_not_overlap(self):
        from nemesis import make_schedule
        for seed in range(20):
            s = make_schedule(seed, 3, 60, ["kill", "partition", "powerloss"])
            end = 0.0
            for f in s:
                self.assertGreaterEqual(f["at"], end)
                end = f["at"] + f["dur"]
                if f["kind"] == "partition":
                    a, b = f["sides"]
                    self.assertTrue(a and b and not set(a) & set(b))
                    self.assertLessEqual(set(a) | set(b) | {f.get("bridge")} - {None},
                                         {1, 2, 3})
            self.assertLess(end, 60)


class Leaders(unittest.TestCase):
    def test_one_leader_per_term(self):
        self.assertEqual(check_leaders([(1, 2), (2, 3), (1, 2), (3, 5)]), [])

    def test_two_leaders_in_one_term(self):
        errs = check_leaders([(1, 4), (2, 5), (3, 4)])
        self.assertEqual(errs, ["two leaders in term 4: nodes 1, 3"])


class ConfigRecovery(unittest.TestCase):
    def test_at_most_one_configuration_behind(self):
        self.assertIsNone(check_config_recovery(5, []))
        self.assertIsNone(check_config_recovery(5, [40]))  # only the last one uncovered
        self.assertIsNone(check_config_recovery(30, [10, 30, 50]))

    def test_two_behind_is_an_old_membership(self):
        why = check_config_recovery(12, [10, 30, 50])
        self.assertIn("2 configuration changes behind", why)
        self.assertIn("below the config entry at 30", why)


def view(**kw):
    v = {"voters": [1, 2, 3], "learners": [], "joint": False, "leader": 1, "spares": [4, 5],
         "ghost": 90, "real": [1, 2, 3, 4, 5], "running": [1, 2, 3], "max_members": 5}
    v.update(kw)
    return v


class Membership(unittest.TestCase):
    """members.choose: which change the membership fault makes, from the configuration the
    cluster reports and the schedule's number."""

    def ops(self, v):
        from members import choose
        return [choose(v, i / 500) for i in range(500)]

    def test_every_kind_of_change_is_reachable(self):
        kinds = {o["op"] for o in self.ops(view())}
        self.assertEqual(kinds, {"add_learner", "add_voter", "joint", "ghost", "transfer"})
        kinds = {o["op"] for o in self.ops(view(voters=[1, 2, 3, 4], learners=[5], spares=[6],
                                               running=[1, 2, 3, 4, 5]))}
        # Five members, the most for a 3-node run: nothing is added, no ghost either.
        self.assertEqual(kinds, {"promote", "remove", "demote", "transfer"})

    def test_never_fewer_than_three_voters_and_never_the_leader(self):
        for o in self.ops(view(spares=[])):
            self.assertNotIn(o["op"], ("demote", "remove"))
        for o in self.ops(view(voters=[1, 2, 3, 4], leader=4, spares=[])):
            if o["op"] in ("demote", "remove", "transfer"):
                self.assertNotEqual(o["node"], 4)
            if o["op"] == "joint":
                self.assertNotEqual(o["remove"], 4)

    def test_a_ghost_only_while_every_real_voter_runs_and_then_it_goes(self):
        self.assertNotIn("ghost", {o["op"] for o in self.ops(view(running=[1, 2]))})
        ops = self.ops(view(voters=[1, 2, 3, 90]))
        self.assertNotIn("ghost", {o["op"] for o in ops})
        self.assertIn({"op": "remove", "node": 90}, ops)

    def test_nothing_during_a_joint_configuration_or_without_a_leader(self):
        self.assertEqual(self.ops(view(joint=True))[0]["op"], "none")
        self.assertEqual(self.ops(view(leader=0))[0]["op"], "none")

    def test_same_view_and_number_same_change(self):
        from members import choose
        self.assertEqual(choose(view(), 0.37), choose(view(), 0.37))

    def test_slots_map_onto_current_members(self):
        from members import remap_ids, remap_sides
        self.assertEqual(remap_ids([2], [1, 2, 3], 3), [2])
        self.assertEqual(remap_ids([2, 3], [1, 3, 4, 6], 3), [3, 4])
        self.assertEqual(remap_ids([5], [1, 2, 4], 5), [2])  # wraps
        for salt in range(30):
            a, b = remap_sides([[1], [2, 3]], [1, 2, 3, 4, 5], 3, salt)
            self.assertEqual(sorted(a + b), [1, 2, 3, 4, 5])  # new members are cut too
            self.assertIn(1, a)
            self.assertTrue({2, 3} <= set(b))
        a, b = remap_sides([[1, 2], [3, 4, 5]], [1, 2, 3, 4], 5, 0)
        self.assertFalse(set(a) & set(b))
        self.assertEqual(sorted(a + b), [1, 2, 3, 4])


class Clock(unittest.TestCase):
    def test_spec_always_names_the_rate(self):
        from clock import spec
        self.assertEqual(spec(0.0), "+0.000 x1")  # a line without a rate keeps the old one
        self.assertEqual(spec(-12.5, 4.0), "-12.500 x4")

    def test_a_rate_change_does_not_jump(self):
        from clock import rate_offset
        started, at, acc, rate = 1000.0, 1030.0, 2.0, 4.0
        off = rate_offset(acc, rate, started, at)
        # libfaketime: fake = real start + offset + rate * (now - start)
        self.assertAlmostEqual(started + off + rate * (at - started), at + acc)

    def test_schedule_draws_clock_and_membership_faults(self):
        from nemesis import make_schedule
        s = make_schedule(9, 3, 300, ["clock", "membership"])
        modes = {f.get("mode") for f in s if f["kind"] == "clock"}
        self.assertEqual(modes, {"jump", "rate"})
        for f in s:
            if f["kind"] == "clock":
                self.assertEqual(len(f["nodes"]), 1)
                if f["mode"] == "jump":
                    self.assertTrue(0.5 <= abs(f["jump"]) <= 20.0)
            else:
                self.assertTrue(0.0 <= f["pick"] < 1.0)


class Damage(unittest.TestCase):
    """disk_faults.damage does the kind of damage it names, and in the last segment never
    within TAIL_MARGIN of its last record (where a cut is legitimately a torn tail)."""

    def make_dir(self, root):
        import os
        import random
        rng = random.Random(5)
        os.makedirs(os.path.join(root, "wal"))
        os.makedirs(os.path.join(root, "meta"))
        for i, first in enumerate((1, 3000, 6000)):
            body = bytes(rng.randrange(1, 256) for _ in range(200 << 10))
            pad = b"\0" * ((1 << 20) - len(body) - 32) if i == 2 else b""
            with open(os.path.join(root, "wal", f"{first:020d}.log"), "wb") as f:
                f.write(b"raftdwal" + b"h" * 24 + body + pad)
        # A table: 200 bytes of data blocks, a metaindex block, an index block, the footer.
        handles = bytes([200, 1, 20, 220, 1, 8])
        footer = handles + b"\0" * (40 - len(handles)) + bytes.fromhex("57fb808b247547db")
        table = b"t" * 200 + b"m" * 20 + b"i" * 8 + footer
        for name, data in (("CURRENT", b"MANIFEST-000004\n"), ("MANIFEST-000004", b"m" * 80),
                           ("000005.ldb", table),
                           ("000006.log", b"ccccc" + bytes([20, 0]) + b"r" * 20 + b"x" * 40)):
            with open(os.path.join(root, "meta", name), "wb") as f:
                f.write(data)

    def test_each_kind(self):
        import os
        import random
        import shutil
        import tempfile
        import disk_faults as df
        expect = {"wal-flip-body": "flipped a bit in a record of wal/",
                  "wal-flip-header": "flipped a bit in the header of wal/",
                  "wal-zero-block": "zeroed the 4 KiB block of wal/",
                  "wal-truncate": "truncated wal/", "wal-missing-segment": "deleted wal/",
                  "meta-flip": "flipped a bit in a data block of meta/000005.ldb at ",
                  "meta-missing": "deleted meta/"}
        self.assertEqual(set(expect), set(df.DAMAGE))
        with tempfile.TemporaryDirectory() as tmp:
            pristine = os.path.join(tmp, "pristine")
            self.make_dir(pristine)
            last = os.path.join("wal", f"{6000:020d}.log")
            tail_from = 32 + (200 << 10) - df.TAIL_MARGIN

            def snap(root):
                out = {}
                for d in ("wal", "meta"):
                    for n in os.listdir(os.path.join(root, d)):
                        with open(os.path.join(root, d, n), "rb") as f:
                            out[os.path.join(d, n)] = f.read()
                return out
            before = snap(pristine)
            for kind, prefix in expect.items():
                for seed in range(6):
                    work = os.path.join(tmp, f"{kind}-{seed}")
                    shutil.copytree(pristine, work)
                    what = df.damage(work, kind, random.Random(seed))
                    self.assertTrue(what.startswith(prefix), (kind, what))
                    self.assertNotIn("instead", what)
                    after = snap(work)
                    self.assertNotEqual(before, after, what)
                    if kind == "meta-flip":
                        self.assertLess(int(what.rsplit(" ", 1)[1]), 200, what)
                    if last in after and "header" not in what:
                        self.assertEqual(after[last][tail_from:tail_from + df.TAIL_MARGIN],
                                         before[last][tail_from:tail_from + df.TAIL_MARGIN], what)
                    shutil.rmtree(work)

if __name__ == "__main__":
    unittest.main()
