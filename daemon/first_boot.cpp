// NodeHost, first boot: data directory incarnations and the wait before bootstrapping.
//
// A member whose data directory was wiped comes back with an empty store, exactly like a
// member of a cluster that was never started. If it bootstrapped again from initial_cluster
// it would have forgotten its votes and the entries it acknowledged, and could help elect a
// leader that lacks committed entries. Only its peers can tell the two apart, so:
//   - every data directory has a random incarnation (wal/disk_storage.h) that travels in each
//     handshake; a node records (durably) the incarnation of every peer that dials it with
//     state, and a peer's new incarnation when it comes back with state under another one;
//   - a node with an empty store that would bootstrap sends `bootstrapping` in its
//     handshakes, dials every other member of initial_cluster and bootstraps only once each
//     of them accepted it. A peer that recorded another incarnation for it refuses it with
//     that incarnation instead, and the node stops with one line saying how to rejoin;
//   - a node started empty with `join` sends `bootstrapping` too, until the leader's entries
//     are durable here, and dials the members of initial_cluster it knows of: a refusal
//     stops it the same way. Its welcomes say its store is empty, and a peer that dials it
//     with another incarnation on record sends it nothing, so it can neither vote nor
//     acknowledge as the member it was, even when it dials nobody itself.
// Waiting for all other initial members (not a majority) is deliberate: a peer that never
// saw the node's old incarnation cannot vouch for it, and a majority made of such peers and
// the wiped node could elect a leader that lacks entries the node had acknowledged. A new
// cluster therefore starts once all of its initial members run (docs/operations.md).
//
// Thread rules: loop thread; records are written on the storage thread.
#include <spdlog/spdlog.h>

#include "daemon/host.h"
#include "daemon/storage_worker.h"

namespace raftd::daemon {

namespace {
// How often the wait is reported after the first line.
constexpr uint64_t kAwaitLogMs = 10000;

std::string hex(uint64_t v) {
    return fmt::format("{:016x}", v);
}
}  // namespace

Status NodeHost::create_node() {
    // raftd keeps no application state: everything committed before the restart was already
    // delivered (subscribers read it back from the log), so raft resumes applying after it.
    raft_cfg_.applied = store_->storage().initial_state().hard.commit;
    auto node = raft::Node::create(raft_cfg_, store_->storage(), store_->snapshots());
    if (!node)
        return Status(node.status().code(), "recovering raft state from " + cfg_.data_dir + ": " +
                                                node.status().message());
    if (pipeline_ && (pipeline_->jobs_on_worker() != 0 || pipeline_->stopping()))
        return Status::internal("a node is replaced while its pipeline has work in flight");
    pipeline_.reset();  // it refers to the Node it drives
    node_ = std::move(node).value();
    PipelineActions& actions = *this;
    pipeline_ = std::make_unique<ReadyPipeline>(
        *node_, actions, store_->storage().initial_state().hard, raft_cfg_.applied);
    return Status::ok();
}

Status NodeHost::start_awaiting_peers() {
    for (const auto& m : bootstrap_members_)
        transport_->set_peer(m.id, m.addr);
    log_awaiting();
    if (Status st = await_log_.init(loop_.get()); !st) return st;
    return await_log_.start(kAwaitLogMs, kAwaitLogMs, [this] { log_awaiting(); });
}

void NodeHost::log_awaiting() {
    std::string waiting, heard;
    for (const auto& m : bootstrap_members_) {
        if (m.id == cfg_.node_id) continue;
        std::string& s = heard_.count(m.id) ? heard : waiting;
        s += (s.empty() ? "" : ", ") + std::to_string(m.id);
    }
    spdlog::info(
        "empty data dir: waiting for every other initial member to answer before bootstrapping "
        "cluster '{}' (waiting for {}; heard from {})",
        cfg_.cluster, waiting, heard.empty() ? "none" : heard);
}

HelloVerdict NodeHost::on_hello(const PeerHello& h) {
    if (h.incarnation == 0) return {};  // an older raftd: nothing to check or record
    auto it = peer_incarnations_.find(h.from);
    if (h.bootstrapping) {
        // Empty and about to bootstrap. Nothing to record (it has no state yet), but if we
        // knew it with state under another incarnation, it lost its data directory.
        if (it == peer_incarnations_.end() || it->second == h.incarnation) return {};
        return HelloVerdict{false,
                            "node " + std::to_string(h.from) +
                                " comes back with an empty data "
                                "dir (incarnation " +
                                hex(h.incarnation) +
                                ") but had state here as "
                                "incarnation " +
                                hex(it->second) + ": it must rejoin, not bootstrap",
                            it->second};
    }
    if (it != peer_incarnations_.end() && it->second == h.incarnation) return {};
    if (it != peer_incarnations_.end())
        spdlog::info("peer {}: new data directory (incarnation {}, was {})", h.from,
                     hex(h.incarnation), hex(it->second));
    peer_incarnations_[h.from] = h.incarnation;
    if (stopping_ || !worker_) return {};
    // A rare synced metadata write (once per peer and data directory), on the storage thread
    // so it neither stalls the loop nor races the Ready batches. A crash before it is durable
    // only means the next handshake records it again.
    DurableStore* store = store_.get();
    run_on_storage_thread([store, id = h.from,
                           inc = h.incarnation] { return store->record_peer_incarnation(id, inc); },
                          [this](Status st) {
                              if (!st) fatal("write-ahead log: " + st.to_string());
                          });
    return {};
}

std::string NodeHost::lost_data(raft::NodeId peer, uint64_t known, const char* must_not) const {
    return cfg_.data_dir + " is empty but peer " + std::to_string(peer) + " knew node " +
           std::to_string(cfg_.node_id) + " with a log (incarnation " + hex(known) +
           ", this directory is " + hex(store_->incarnation()) +
           "). This node lost its data and must not " + must_not +
           ". If the loss is confirmed, remove node " + std::to_string(cfg_.node_id) +
           " from the cluster and add this machine back under a new node_id with join = true "
           "(--join): see docs/operations.md, 'A member lost its data directory'";
}

HelloVerdict NodeHost::on_welcome(raft::NodeId peer, const PeerWelcome& w) {
    if (w.ok && w.bootstrapping && w.incarnation != 0) {
        // We dialled a peer whose store is empty. If it had a log here under another
        // incarnation it lost its data: feeding it entries would let it vote as the member it
        // was, having forgotten its votes and what it acknowledged.
        auto it = peer_incarnations_.find(peer);
        if (it != peer_incarnations_.end() && it->second != w.incarnation)
            return HelloVerdict{
                false,
                "node " + std::to_string(peer) + " answers with an empty data dir (incarnation " +
                    hex(w.incarnation) + ") but had state here as incarnation " + hex(it->second) +
                    ": sending it nothing (it lost its data and must rejoin under a new node "
                    "id: docs/operations.md, 'A member lost its data directory')",
                0};
    }
    if (joining_empty_ && !w.ok && w.known_incarnation != 0 && !stopping_) {
        fatal("refusing to join: data dir " +
              lost_data(peer, w.known_incarnation, "rejoin under its old id"));
        return {};
    }
    if (!awaiting_peers_ || stopping_) return {};
    if (!w.ok) {
        if (w.known_incarnation == 0) return {};  // another refusal: logged, retried
        fatal("refusing to bootstrap: data dir " +
              lost_data(peer, w.known_incarnation, "vote as a new one"));
        return {};
    }
    const bool news = heard_.insert(peer).second;
    size_t others = 0, heard = 0;
    for (const auto& m : bootstrap_members_) {
        if (m.id == cfg_.node_id) continue;
        ++others;
        heard += heard_.count(m.id);
    }
    if (heard == others) {
        if (!bootstrap_writing_) bootstrap_now();
    } else if (news) {
        log_awaiting();  // progress as each peer answers, not only every kAwaitLogMs
    }
    return {};
}

void NodeHost::bootstrap_now() {
    bootstrap_writing_ = true;
    // Every initial member writes the same first entry and hard state, so they agree on
    // index 1 without talking (raft/node.h, bootstrap_entry). On the storage thread, like
    // every write once it runs.
    auto job = std::make_shared<PersistJob>();
    job->entries.push_back(raft::bootstrap_entry(bootstrap_members_));
    job->hard_state = raft::HardState{1, raft::kNoNode, 1};
    DurableStore* store = store_.get();
    run_on_storage_thread(
        [store, job] { return store->persist(*job); },
        [this](Status st) {
            if (!st) {
                fatal("write-ahead log: " + st.to_string());
                return;
            }
            std::string ms;
            for (const auto& m : bootstrap_members_)
                ms += (ms.empty() ? "" : ",") + std::to_string(m.id) + "=" + m.addr;
            spdlog::info("bootstrapped cluster '{}' with members {} (every other member answered)",
                         cfg_.cluster, ms);
            if (Status c = create_node(); !c) {
                fatal(c.message());
                return;
            }
            awaiting_peers_ = false;
            await_log_.close();
            // Peers record this incarnation now that it has state (a new handshake each).
            transport_->set_bootstrapping(false);
            sync_peers();
            soft_ = {node_->leader(), node_->role()};
            if (Status n = notifier_.status(status_line()); !n)
                spdlog::debug("sd_notify STATUS: {}", n.message());
            pipeline_->process();
        });
}

}  // namespace raftd::daemon
