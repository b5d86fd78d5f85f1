// handshake.h: the two connection state machines of spec section 4 as pure transition functions
// (state x event -> next state, action, error code), so that they can be tested exhaustively and
// model-checked without sockets. publisher.cpp and subscriber.cpp drive them and perform the
// actions; the decisions that need more than the state (version negotiation, HELLO checks) are
// pure functions here too.
#ifndef CUFRAMES_REFERENCE_SRC_HANDSHAKE_H_
#define CUFRAMES_REFERENCE_SRC_HANDSHAKE_H_

#include <cstdint>

#include "status.h"
#include "tlv.h"

namespace cuframes::handshake {

// Events common to both sides: a decoded message of each type, and what else can happen to a
// connection.
enum class Event : uint8_t {
  kRecvHelloReq,
  kRecvHelloResp,
  kRecvAttachReq,
  kRecvAttachResp,
  kRecvDetach,
  kRecvError,
  kRecvPing,
  kRecvPong,
  kMalformed,  // the reassembler reported an error; Step.error carries it via StepMalformed()
  kEof,        // the peer closed the socket or it failed
  kTimeout,    // the handshake deadline passed, or the peer stalled mid-message
  kEvict,      // publisher only: the frame path evicted this subscriber
  kShutdown,   // the local side is closing
};
inline constexpr int kEventCount = 13;

// Returns the event for a decoded message.
Event EventOf(const tlv::Message& m);

// What the driver must do on a transition.
enum class Action : uint8_t {
  kNone,               // ignore (e.g. a PONG)
  kProcessHello,       // publisher: evaluate HELLO_REQ (EvaluateHello), reply HELLO_RESP
  kProcessAttach,      // publisher: check ATTACH_REQ, activate, reply ATTACH_RESP
  kProcessHelloResp,   // subscriber: check HELLO_RESP, map the segment, send ATTACH_REQ
  kProcessAttachResp,  // subscriber: check ATTACH_RESP, start reading frames
  kSendPong,           // reply PONG with the PING's nonce
  kClose,              // close without sending anything (peer gone, or peer said DETACH/ERROR)
  kSendErrorClose,     // send ERROR{error} and close
  kSendDetachClose,    // send DETACH{0} and close
};

// --- publisher side (one machine per accepted connection) ---
enum class PubState : uint8_t { kAwaitHello, kAwaitAttach, kActive, kClosed };
inline constexpr int kPubStateCount = 4;

struct PubStep {
  PubState next;
  Action action;
  Status error;  // kOk, or the code of the ERROR to send / the reason the connection ended
};

// Returns the transition of a publisher-side connection in `s` on `e`. For kMalformed, error is
// kProtocol; the driver substitutes the decoder's code (MESSAGE_TOO_LARGE, UNKNOWN_MESSAGE, ...).
// kProcessHello/kProcessAttach transitions name the success state; on failure the driver uses
// AfterHello()/AfterAttach().
PubStep PublisherStep(PubState s, Event e);

// The state after kProcessHello with verdict `v` (kOk: kAwaitAttach; else the connection closes
// after HELLO_RESP{v}, or after ERROR{v} when v is kProtocol (bad magic)).
PubStep AfterHello(Status v);
// The state after kProcessAttach with result `v` (kOk: kActive; else ERROR{v} and close).
PubStep AfterAttach(Status v);

// What a publisher knows when it judges a HELLO_REQ.
struct HelloPolicy {
  uint16_t max_proto;    // the publisher's highest version (2, or lower by the runtime cap)
  uint16_t memory_kind;  // the publisher's memory kind
  bool uid_allowed;      // SO_PEERCRED uid == publisher uid, or other uids are allowed
  bool slot_available;   // a FREE subscriber slot exists
};

struct HelloVerdict {
  Status status;        // kOk, kProtocol (bad magic: ERROR, not HELLO_RESP), kVersionMismatch,
                        // kUnsupportedKind, kPermission, kFull
  uint16_t negotiated;  // the version to answer with (the publisher's max on failure)
};

// Judges a HELLO_REQ, checking in this order: magic, versions (min_proto 0, min > max, or no
// common version: VERSION_MISMATCH), memory kind, uid, free slot.
HelloVerdict EvaluateHello(const tlv::HelloReq& req, const HelloPolicy& policy);

// --- subscriber side ---
enum class SubState : uint8_t { kAwaitHelloResp, kAwaitAttachResp, kActive, kClosed };
inline constexpr int kSubStateCount = 4;

struct SubStep {
  SubState next;
  Action action;
  Status error;  // for kClose: the status the subscriber's calls return from then on
};

// Returns the transition of the subscriber's connection in `s` on `e`. kRecvError's error is
// kProtocol as a placeholder: the driver substitutes the ERROR message's code.
SubStep SubscriberStep(SubState s, Event e);

// The subscriber's step after kProcessHelloResp with verdict `v`:
//  - kOk: kAwaitAttachResp (ATTACH_REQ was sent);
//  - publisher_refused (HELLO_RESP.status was not OK; v is that status): kClose, report v;
//  - kProtocol (the response contradicts itself: slot index or generation): ERROR(PROTOCOL), close;
//  - any other v (we refuse: VERSION_MISMATCH, UNSUPPORTED_KIND from CheckHelloResp, the segment's
//    UNSUPPORTED_LAYOUT/CORRUPT/PEER_CLOSED/TIMEOUT, a CUDA or ring failure): DETACH(v), close
//    (spec MSG-HRESP-05, SM-SUB-01 HELLO_RESP_OK_BAD_SEGMENT).
SubStep AfterHelloResp(Status v, bool publisher_refused);

// The subscriber's step after kProcessAttachResp with verdict `v`: kOk: kActive;
// publisher_refused (ATTACH_RESP.status not OK): kClose, report it; else (e.g. start_seq 0):
// ERROR(v), close.
SubStep AfterAttachResp(Status v, bool publisher_refused);

// Checks a HELLO_RESP against what the subscriber asked for.
// Returns kOk; the response's own non-OK status (VERSION_MISMATCH, UNSUPPORTED_KIND, PERMISSION,
// FULL, ...; a code this version does not define is kProtocol); kVersionMismatch (status OK but
// proto_version outside [1, max_proto]); kUnsupportedKind (memory_kind not in kinds_mask). The
// last two are refused with DETACH(reason) (spec MSG-HRESP-05).
Status CheckHelloResp(const tlv::HelloResp& resp, uint16_t max_proto, uint32_t kinds_mask);

}  // namespace cuframes::handshake

#endif  // CUFRAMES_REFERENCE_SRC_HANDSHAKE_H_
