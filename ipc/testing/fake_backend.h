// FakeBackend: an in-memory ipc::Backend for server and client tests. One "node" whose log,
// commit index and snapshot live in vectors; proposals commit at once (auto_commit) or when
// the test says so.
//
// Owns: its log, snapshot bytes and held completions.
// Never: anything Raft-like beyond appending and counting; it exists to drive the server.
//
// Thread rules: loop thread only, like every Backend.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipc/backend.h"
#include "ipc/server.h"

namespace raftd::ipc::testing {

class FakeBackend : public Backend {
  public:
    // Commit each proposal as soon as it is made.
    bool auto_commit = true;
    // Fail every proposal with this error instead.
    std::optional<Error> propose_error;
    Server* server = nullptr;  // told about commits when set
    raft::Term term = 3;
    Membership config{{{1, "127.0.0.1:7001", true, false, std::nullopt},
                       {2, "127.0.0.1:7002", true, false, std::nullopt},
                       {3, "127.0.0.1:7003", true, false, std::nullopt}},
                      false};
    // Entries [first_, first_ + log_.size()); the commit index is commit_.
    std::vector<StreamEntry> log_;
    raft::Index first_ = 1;
    raft::Index commit_ = 0;
    SnapshotInfo snap_;
    std::string snap_bytes_;
    std::deque<std::pair<raft::Index, Done<ProposeReply>>> held_;
    uint64_t proposals = 0;
    // The leader it reports (kNoNode: none; requests that need one wait in the server).
    raft::NodeId leader_id = 1;
    bool last_read_lease = false;  // the `lease` of the latest read_index

    raft::Index last_index() const { return first_ + log_.size() - 1; }

    // Appends and commits a data entry (as if another client had proposed it).
    void append(std::string data, raft::EntryType type = raft::EntryType::kData) {
        StreamEntry e;
        e.entry.index = last_index() + 1;
        e.entry.term = term;
        e.entry.type = type;
        e.entry.data = raft::Payload(std::move(data));
        if (type == raft::EntryType::kConfig) e.config = config;
        log_.push_back(std::move(e));
    }
    void commit_to(raft::Index i) {
        commit_ = std::min(i, last_index());
        while (!held_.empty() && held_.front().first <= commit_) {
            auto [idx, done] = std::move(held_.front());
            held_.pop_front();
            done(ProposeReply{idx, term});
        }
        if (server) server->on_commit(commit_);
    }
    // Drops entries through `through` (they must be covered by the snapshot).
    void compact(raft::Index through) {
        while (first_ <= through && !log_.empty()) {
            log_.erase(log_.begin());
            ++first_;
        }
    }
    // Installs a snapshot at `index` with `bytes` and compacts the log through it.
    void install_snapshot(raft::Index index, std::string bytes) {
        snap_.index = index;
        snap_.term = term;
        snap_.membership = config;
        snap_bytes_ = std::move(bytes);
        if (index > last_index()) {
            log_.clear();
            first_ = index + 1;
        } else {
            compact(index);
        }
        if (commit_ < index) commit_ = index;
        if (server) server->on_commit(commit_);
    }

    NodeInfo info() const override { return {1, "test", "raftd-test"}; }
    StatusReply status() const override {
        StatusReply s;
        s.node_id = 1;
        s.cluster = "test";
        s.role = "leader";
        s.term = term;
        s.leader = leader_id;
        s.commit = commit_;
        s.first_index = first_;
        s.last_index = last_index();
        s.snapshot_index = snap_.index;
        s.membership = config;
        s.version = "raftd-test";
        return s;
    }
    Membership members() const override { return config; }
    raft::NodeId leader() const override { return leader_id; }

    void propose(raft::Payload data, Done<ProposeReply> done) override {
        ++proposals;
        if (propose_error) return done(*propose_error);
        StreamEntry e;
        e.entry.index = last_index() + 1;
        e.entry.term = term;
        e.entry.data = std::move(data);
        log_.push_back(std::move(e));
        held_.emplace_back(last_index(), std::move(done));
        if (auto_commit) commit_to(last_index());
    }
    void read_index(bool lease, Done<ReadIndexReply> done) override {
        last_read_lease = lease;
        done(ReadIndexReply{commit_});
    }
    void change_members(MemberChange change, Done<Membership> done) override {
        if (auto* a = std::get_if<AddMemberRequest>(&change)) {
            for (auto& m : config.members)
                if (m.node == a->node)
                    return done(Error{ErrorCode::kBadRequest, "node already a member", {}});
            config.members.push_back({a->node, a->addr, !a->learner, false, std::nullopt});
        } else if (auto* r = std::get_if<RemoveMemberRequest>(&change)) {
            auto& v = config.members;
            auto it = std::find_if(v.begin(), v.end(), [&](auto& m) { return m.node == r->node; });
            if (it == v.end()) return done(Error{ErrorCode::kNotFound, "no such node", {}});
            v.erase(it);
        } else if (auto* p = std::get_if<PromoteRequest>(&change)) {
            for (auto& m : config.members)
                if (m.node == p->node) m.voter = true;
        } else if (auto* d = std::get_if<DemoteRequest>(&change)) {
            for (auto& m : config.members)
                if (m.node == d->node) m.voter = false;
        }
        append("conf", raft::EntryType::kConfig);
        commit_to(last_index());
        done(config);
    }
    void transfer_leader(raft::NodeId to, Done<TransferLeaderReply> done) override {
        done(TransferLeaderReply{to});
    }
    void campaign(Done<CampaignReply> done) override { done(CampaignReply{++term}); }

    class Writer : public SnapshotWriter {
      public:
        Writer(FakeBackend& b, raft::Index i) : b_(b), index_(i) {}
        void write(raft::Payload chunk, Done<Unit> done) override {
            bytes_.append(chunk.view());
            done(Unit{});
        }
        void finish(raft::Payload last, Done<raft::Index> done) override {
            // As raftd: a snapshot the latest one covers is dropped, answered with its index.
            if (index_ <= b_.snap_.index) return done(b_.snap_.index);
            bytes_.append(last.view());
            b_.install_snapshot(index_, std::move(bytes_));
            done(index_);
        }
        void abort() override { bytes_.clear(); }

      private:
        FakeBackend& b_;
        raft::Index index_;
        std::string bytes_;
    };
    Outcome<std::unique_ptr<SnapshotWriter>> begin_snapshot(raft::Index index) override {
        if (index > commit_)
            return Error{ErrorCode::kBadRequest, "index is above the commit index", {}};
        if (index < first_ - 1 && index > snap_.index)
            return Error{ErrorCode::kNotFound, "index is compacted", {}};
        return std::unique_ptr<SnapshotWriter>(std::make_unique<Writer>(*this, index));
    }

    raft::Index first_index() const override { return first_; }
    raft::Index commit_index() const override { return commit_; }
    Result<std::vector<StreamEntry>> read_entries(raft::Index from, uint64_t max_bytes) override {
        if (from < first_) return Status::compacted("below the first index");
        if (from > commit_) return Status::not_found("not committed");
        std::vector<StreamEntry> out;
        uint64_t bytes = 0;
        for (raft::Index i = from; i <= commit_; ++i) {
            const StreamEntry& e = log_[i - first_];
            if (!out.empty() && bytes + e.entry.byte_size() > max_bytes) break;
            bytes += e.entry.byte_size();
            out.push_back(e);
        }
        return out;
    }
    SnapshotInfo latest_snapshot() const override { return snap_; }
    Result<raft::SnapshotBytes> read_snapshot(raft::Index index, uint64_t offset,
                                              uint64_t max_bytes) override {
        if (index != snap_.index) return Status::not_found("not the latest snapshot");
        if (offset > snap_bytes_.size()) return Status::invalid_argument("offset past the end");
        raft::SnapshotBytes b;
        b.data = snap_bytes_.substr(offset, max_bytes);
        b.done = offset + b.data.size() == snap_bytes_.size();
        return b;
    }
};

}  // namespace raftd::ipc::testing
