// handshake.cpp: transition tables of the publisher-side and subscriber-side state machines.
#include "handshake.h"

#include <algorithm>

#include "layout.h"

namespace cuframes::handshake {

Event EventOf(const tlv::Message& m) {
  switch (tlv::TypeOf(m)) {
    case tlv::MsgType::kHelloReq:
      return Event::kRecvHelloReq;
    case tlv::MsgType::kHelloResp:
      return Event::kRecvHelloResp;
    case tlv::MsgType::kAttachReq:
      return Event::kRecvAttachReq;
    case tlv::MsgType::kAttachResp:
      return Event::kRecvAttachResp;
    case tlv::MsgType::kDetach:
      return Event::kRecvDetach;
    case tlv::MsgType::kError:
      return Event::kRecvError;
    case tlv::MsgType::kPing:
      return Event::kRecvPing;
    case tlv::MsgType::kPong:
      return Event::kRecvPong;
  }
  return Event::kMalformed;
}

PubStep PublisherStep(PubState s, Event e) {
  using enum PubState;
  if (s == kClosed) return {kClosed, Action::kNone, Status::kOk};
  switch (e) {
    case Event::kRecvHelloReq:
      if (s == kAwaitHello) return {kAwaitAttach, Action::kProcessHello, Status::kOk};
      return {kClosed, Action::kSendErrorClose, Status::kState};  // a second HELLO_REQ
    case Event::kRecvAttachReq:
      if (s == kAwaitAttach) return {kActive, Action::kProcessAttach, Status::kOk};
      return {kClosed, Action::kSendErrorClose, Status::kState};
    case Event::kRecvHelloResp:
    case Event::kRecvAttachResp:  // messages only a publisher sends
      return {kClosed, Action::kSendErrorClose, Status::kState};
    case Event::kRecvPing:
      return {s, Action::kSendPong, Status::kOk};
    case Event::kRecvPong:
      return {s, Action::kNone, Status::kOk};
    case Event::kRecvDetach:  // the peer ended the connection: nothing to report (OK)
    case Event::kRecvError:
    case Event::kEof:
      return {kClosed, Action::kClose, Status::kOk};
    case Event::kMalformed:
      return {kClosed, Action::kSendErrorClose, Status::kProtocol};
    case Event::kTimeout:  // the handshake deadline is disarmed in ACTIVE
      if (s == kActive) return {s, Action::kNone, Status::kOk};
      return {kClosed, Action::kSendErrorClose, Status::kTimeout};
    case Event::kEvict:  // ACK_TIMEOUT / ACK_GARBAGE: only armed in ACTIVE
      if (s != kActive) return {s, Action::kNone, Status::kOk};
      return {kClosed, Action::kSendErrorClose, Status::kEvicted};
    case Event::kShutdown:  // RES-CLOSE-01: DETACH(OK) to every connected subscriber
      return {kClosed, Action::kSendDetachClose, Status::kOk};
  }
  return {kClosed, Action::kSendErrorClose, Status::kProtocol};
}

PubStep AfterHello(Status v) {
  if (v == Status::kOk) return {PubState::kAwaitAttach, Action::kNone, Status::kOk};
  if (v == Status::kProtocol) return {PubState::kClosed, Action::kSendErrorClose, v};
  return {PubState::kClosed, Action::kClose, v};  // HELLO_RESP{v} was sent, then close
}

PubStep AfterAttach(Status v) {
  if (v == Status::kOk) return {PubState::kActive, Action::kNone, Status::kOk};
  return {PubState::kClosed, Action::kSendErrorClose, v};
}

HelloVerdict EvaluateHello(const tlv::HelloReq& req, const HelloPolicy& policy) {
  if (req.magic != layout::kHelloMagic) return {Status::kProtocol, policy.max_proto};
  const uint16_t negotiated = std::min(req.max_proto, policy.max_proto);
  if (req.min_proto == 0 || req.min_proto > req.max_proto || negotiated < req.min_proto) {
    return {Status::kVersionMismatch, policy.max_proto};
  }
  if ((req.kinds_mask & layout::KindBit(policy.memory_kind)) == 0) {
    return {Status::kUnsupportedKind, negotiated};
  }
  if (!policy.uid_allowed) return {Status::kPermission, negotiated};
  if (!policy.slot_available) return {Status::kFull, negotiated};
  return {Status::kOk, negotiated};
}

SubStep SubscriberStep(SubState s, Event e) {
  using enum SubState;
  if (s == kClosed) return {kClosed, Action::kNone, Status::kOk};
  switch (e) {
    case Event::kRecvHelloResp:
      if (s == kAwaitHelloResp) return {kAwaitAttachResp, Action::kProcessHelloResp, Status::kOk};
      return {kClosed, Action::kSendErrorClose, Status::kState};
    case Event::kRecvAttachResp:
      if (s == kAwaitAttachResp) return {kActive, Action::kProcessAttachResp, Status::kOk};
      return {kClosed, Action::kSendErrorClose, Status::kState};
    case Event::kRecvHelloReq:
    case Event::kRecvAttachReq:  // messages only a subscriber sends
      return {kClosed, Action::kSendErrorClose, Status::kState};
    case Event::kRecvPing:
      return {s, Action::kSendPong, Status::kOk};
    case Event::kRecvPong:
      return {s, Action::kNone, Status::kOk};
    case Event::kRecvDetach:
      return {kClosed, Action::kClose, Status::kPeerClosed};
    case Event::kRecvError:
      return {kClosed, Action::kClose, Status::kProtocol};
    case Event::kMalformed:
      return {kClosed, Action::kSendErrorClose, Status::kProtocol};
    case Event::kEof:
      return {kClosed, Action::kClose, Status::kPeerClosed};
    case Event::kTimeout:  // SM-SUB-02: close and report TIMEOUT; disarmed in ACTIVE
      if (s == kActive) return {s, Action::kNone, Status::kOk};
      return {kClosed, Action::kClose, Status::kTimeout};
    case Event::kEvict:  // not a subscriber event: ignored
      return {s, Action::kNone, Status::kOk};
    case Event::kShutdown:  // LOCAL_CLOSE: DETACH(0) in every open state
      return {kClosed, Action::kSendDetachClose, Status::kOk};
  }
  return {kClosed, Action::kSendErrorClose, Status::kProtocol};
}

SubStep AfterHelloResp(Status v, bool publisher_refused) {
  if (v == Status::kOk) return {SubState::kAwaitAttachResp, Action::kNone, Status::kOk};
  if (publisher_refused) return {SubState::kClosed, Action::kClose, v};  // it closes
  if (v == Status::kProtocol) return {SubState::kClosed, Action::kSendErrorClose, v};
  // SHM-VALID-03: a segment (or ring) still INIT at the handshake deadline is the deadline itself
  // (HANDSHAKE_TIMEOUT row of 4.1): close and report TIMEOUT, sending nothing.
  if (v == Status::kTimeout) return {SubState::kClosed, Action::kClose, v};
  return {SubState::kClosed, Action::kSendDetachClose, v};  // we refuse: DETACH(reason)
}

SubStep AfterAttachResp(Status v, bool publisher_refused) {
  if (v == Status::kOk) return {SubState::kActive, Action::kNone, Status::kOk};
  if (publisher_refused) return {SubState::kClosed, Action::kClose, v};
  return {SubState::kClosed, Action::kSendErrorClose, v};  // a malformed ATTACH_RESP
}

Status CheckHelloResp(const tlv::HelloResp& resp, uint16_t max_proto, uint32_t kinds_mask) {
  if (resp.status != 0) return StatusFromWire(resp.status);
  if (resp.proto_version < 1 || resp.proto_version > max_proto) return Status::kVersionMismatch;
  if ((kinds_mask & layout::KindBit(resp.memory_kind)) == 0) return Status::kUnsupportedKind;
  return Status::kOk;
}

}  // namespace cuframes::handshake
