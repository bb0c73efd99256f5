// The peer wire format (docs/peer-protocol.md): raft::Message and the handshake as msgpack
// frames, field by field.
//
// Owns: the mapping between raft::Message and a frame map, and the packed entry list.
// Never: trust a frame: every field is type-checked and a wrong one is an error naming it
// (the connection is then closed; nothing reaches raft). No exception leaves this API.
//
// Thread rules: pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>

#include "ipc/frame.h"
#include "raft/message.h"
#include "raft/status.h"

namespace raftd::daemon {

// Bumped whenever the peer format changes incompatibly; both ends must agree exactly. Keys
// an older node can ignore are added without a bump (docs/peer-protocol.md, "Versions").
constexpr uint64_t kPeerProtocolVersion = 1;

// First frame on every peer connection, from the dialling side.
struct PeerHello {
    uint64_t version = kPeerProtocolVersion;
    std::string cluster;
    raft::NodeId from = raft::kNoNode;  // the dialler's id
    raft::NodeId to = raft::kNoNode;    // the id the dialler expects to reach
    std::string addr;                   // the dialler's advertised peer address
    uint64_t incarnation = 0;           // the dialler's data dir incarnation; 0: not sent
    // The dialler's store is empty and it waits for its peers before bootstrapping.
    bool bootstrapping = false;
};

// The acceptor's answer: ok, or refused with a reason (then it closes the connection).
struct PeerWelcome {
    bool ok = false;
    raft::NodeId node = raft::kNoNode;  // the acceptor's id
    std::string cluster;
    std::string error;         // set when !ok
    uint64_t incarnation = 0;  // the acceptor's incarnation: it checks diallers' (0: an older node)
    // On a refusal only: the incarnation the acceptor recorded for a dialler that now comes
    // with another one and an empty store: the dialler lost its data directory.
    uint64_t known_incarnation = 0;
    // The acceptor's store is empty (it waits to bootstrap or to be added with `join`): a
    // dialler that recorded another incarnation for it must not send to it.
    bool bootstrapping = false;
};

void encode_hello(ipc::OutBuffer& out, const PeerHello& h);
Result<PeerHello> decode_hello(const ipc::Frame& f);
void encode_welcome(ipc::OutBuffer& out, const PeerWelcome& w);
Result<PeerWelcome> decode_welcome(const ipc::Frame& f);

// One raft message per frame. Returns the frame's body length.
size_t encode_message(ipc::OutBuffer& out, const raft::Message& m);
// Entry payloads and snapshot data are copied once, out of the frame into the Message.
Result<raft::Message> decode_message(const ipc::Frame& f);

// A proposal a follower forwards to its leader, and the leader's answer (docs/peer-protocol.md,
// "Forwarded proposals"). They travel on the same connections as raft messages.
struct Forward {
    enum class Kind : uint8_t { kPropose = 1, kResult = 2, kOp = 3 };
    Kind kind = Kind::kPropose;
    uint64_t seq = 0;    // chosen by the follower, echoed in the result
    raft::Payload data;  // kPropose: the entry; kOp: a client request map (docs/protocol.md);
                         // kResult of a kOp: the client reply map
    bool ok = false;     // kResult: committed at (index, term)
    raft::Index index = 0;
    raft::Term term = 0;
    std::string code;  // kResult, !ok: a client protocol error code ("UNAVAILABLE", ...)
    std::string message;
};
void encode_forward(ipc::OutBuffer& out, const Forward& f);
// Whether a decoded frame is a Forward rather than a raft message.
bool is_forward(const ipc::Frame& f);
Result<Forward> decode_forward(const ipc::Frame& f);

}  // namespace raftd::daemon
