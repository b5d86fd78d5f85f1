// handshake_test: the two connection state machines, exhaustively over state x event, and the
// HELLO decisions.
#include "handshake.h"

#include <gtest/gtest.h>

#include "layout.h"

namespace cuframes::handshake {
namespace {

constexpr PubState kPubStates[] = {PubState::kAwaitHello, PubState::kAwaitAttach, PubState::kActive,
                                   PubState::kClosed};
constexpr SubState kSubStates[] = {SubState::kAwaitHelloResp, SubState::kAwaitAttachResp,
                                   SubState::kActive, SubState::kClosed};

Event Ev(int i) {
  return static_cast<Event>(i);
}

TEST(PublisherMachine, ClosedIsAbsorbing) {
  for (int e = 0; e < kEventCount; ++e) {
    const PubStep s = PublisherStep(PubState::kClosed, Ev(e));
    EXPECT_EQ(s.next, PubState::kClosed);
    EXPECT_EQ(s.action, Action::kNone);
  }
}

TEST(PublisherMachine, PingIsAnsweredInEveryOpenState) {
  for (PubState st : kPubStates) {
    if (st == PubState::kClosed) continue;
    const PubStep s = PublisherStep(st, Event::kRecvPing);
    EXPECT_EQ(s.action, Action::kSendPong);
    EXPECT_EQ(s.next, st);
    EXPECT_EQ(PublisherStep(st, Event::kRecvPong).action, Action::kNone);
  }
}

TEST(PublisherMachine, HappyPath) {
  PubStep s = PublisherStep(PubState::kAwaitHello, Event::kRecvHelloReq);
  EXPECT_EQ(s.action, Action::kProcessHello);
  EXPECT_EQ(AfterHello(Status::kOk).next, PubState::kAwaitAttach);
  s = PublisherStep(PubState::kAwaitAttach, Event::kRecvAttachReq);
  EXPECT_EQ(s.action, Action::kProcessAttach);
  EXPECT_EQ(AfterAttach(Status::kOk).next, PubState::kActive);
  s = PublisherStep(PubState::kActive, Event::kShutdown);
  EXPECT_EQ(s.action, Action::kSendDetachClose);
}

TEST(PublisherMachine, WrongStateMessagesAreStateErrors) {
  struct C {
    PubState st;
    Event ev;
  };
  const C cases[] = {
      {PubState::kAwaitHello, Event::kRecvAttachReq},  // ATTACH_REQ before HELLO
      {PubState::kAwaitAttach, Event::kRecvHelloReq},  // second HELLO_REQ
      {PubState::kActive, Event::kRecvHelloReq},      {PubState::kActive, Event::kRecvAttachReq},
      {PubState::kAwaitHello, Event::kRecvHelloResp},  // publisher-only messages
      {PubState::kActive, Event::kRecvAttachResp},
  };
  for (const C& c : cases) {
    const PubStep s = PublisherStep(c.st, c.ev);
    EXPECT_EQ(s.next, PubState::kClosed);
    EXPECT_EQ(s.action, Action::kSendErrorClose);
    EXPECT_EQ(s.error, Status::kState);
  }
}

TEST(PublisherMachine, EndingEvents) {
  for (PubState st : kPubStates) {
    if (st == PubState::kClosed) continue;
    for (Event e : {Event::kEof, Event::kRecvDetach, Event::kRecvError}) {
      const PubStep s = PublisherStep(st, e);
      EXPECT_EQ(s.action, Action::kClose);
      EXPECT_EQ(s.error, Status::kOk) << "the peer ended it: nothing to report";
    }
    const PubStep t = PublisherStep(st, Event::kTimeout);
    const PubStep v = PublisherStep(st, Event::kEvict);
    if (st == PubState::kActive) {  // handshake deadline disarmed; ACK rules armed
      EXPECT_EQ(t.action, Action::kNone);
      EXPECT_EQ(t.next, PubState::kActive);
      EXPECT_EQ(v.action, Action::kSendErrorClose);
      EXPECT_EQ(v.error, Status::kEvicted);
    } else {
      EXPECT_EQ(t.action, Action::kSendErrorClose);
      EXPECT_EQ(t.error, Status::kTimeout);
      EXPECT_EQ(v.action, Action::kNone) << "ACK rules are not armed before ACTIVE";
      EXPECT_EQ(v.next, st);
    }
    EXPECT_EQ(PublisherStep(st, Event::kMalformed).action, Action::kSendErrorClose);
    EXPECT_EQ(PublisherStep(st, Event::kShutdown).action, Action::kSendDetachClose)
        << "RES-CLOSE-01: DETACH to every connected subscriber";
  }
  EXPECT_EQ(AfterHello(Status::kProtocol).action, Action::kSendErrorClose);  // bad magic
  EXPECT_EQ(AfterHello(Status::kFull).action, Action::kClose);  // HELLO_RESP{FULL} was sent
}

TEST(PublisherMachine, EveryTransitionIsDefined) {
  for (PubState st : kPubStates) {
    for (int e = 0; e < kEventCount; ++e) {
      const PubStep s = PublisherStep(st, Ev(e));
      if (s.next == PubState::kClosed && st != PubState::kClosed) {
        EXPECT_TRUE(s.action == Action::kClose || s.action == Action::kSendErrorClose ||
                    s.action == Action::kSendDetachClose)
            << static_cast<int>(st) << " " << e;
      }
    }
  }
}

TEST(SubscriberMachine, Transitions) {
  EXPECT_EQ(SubscriberStep(SubState::kAwaitHelloResp, Event::kRecvHelloResp).action,
            Action::kProcessHelloResp);
  EXPECT_EQ(SubscriberStep(SubState::kAwaitAttachResp, Event::kRecvAttachResp).action,
            Action::kProcessAttachResp);
  EXPECT_EQ(SubscriberStep(SubState::kActive, Event::kRecvHelloResp).error, Status::kState);
  EXPECT_EQ(SubscriberStep(SubState::kAwaitHelloResp, Event::kRecvAttachResp).error,
            Status::kState);
  EXPECT_EQ(SubscriberStep(SubState::kActive, Event::kRecvHelloReq).error, Status::kState);
  for (SubState st : kSubStates) {
    if (st == SubState::kClosed) {
      for (int e = 0; e < kEventCount; ++e) {
        const SubStep s = SubscriberStep(st, Ev(e));
        EXPECT_EQ(s.next, SubState::kClosed);
        EXPECT_EQ(s.action, Action::kNone);
        EXPECT_EQ(s.error, Status::kOk);
      }
      continue;
    }
    EXPECT_EQ(SubscriberStep(st, Event::kRecvPing).action, Action::kSendPong);
    EXPECT_EQ(SubscriberStep(st, Event::kEof).error, Status::kPeerClosed);
    EXPECT_EQ(SubscriberStep(st, Event::kRecvDetach).error, Status::kPeerClosed);
    EXPECT_EQ(SubscriberStep(st, Event::kShutdown).action, Action::kSendDetachClose);
    const SubStep t = SubscriberStep(st, Event::kTimeout);
    if (st == SubState::kActive) {
      EXPECT_EQ(t.action, Action::kNone);
    } else {
      EXPECT_EQ(t.action, Action::kClose) << "SM-SUB-02: close, report TIMEOUT, send nothing";
      EXPECT_EQ(t.error, Status::kTimeout);
    }
  }
}

TEST(SubscriberMachine, AfterHelloResp) {
  EXPECT_EQ(AfterHelloResp(Status::kOk, false).next, SubState::kAwaitAttachResp);
  const SubStep refused = AfterHelloResp(Status::kFull, true);
  EXPECT_EQ(refused.action, Action::kClose);
  EXPECT_EQ(refused.error, Status::kFull);
  for (Status s : {Status::kVersionMismatch, Status::kUnsupportedKind, Status::kCorrupt,
                   Status::kUnsupportedLayout}) {
    const SubStep r = AfterHelloResp(s, false);  // we refuse: DETACH(reason)
    EXPECT_EQ(r.action, Action::kSendDetachClose);
    EXPECT_EQ(r.error, s);
  }
  EXPECT_EQ(AfterHelloResp(Status::kProtocol, false).action, Action::kSendErrorClose);
  const SubStep late = AfterHelloResp(Status::kTimeout, false);  // SHM-VALID-03: send nothing
  EXPECT_EQ(late.action, Action::kClose);
  EXPECT_EQ(late.error, Status::kTimeout);
  EXPECT_EQ(AfterAttachResp(Status::kOk, false).next, SubState::kActive);
  EXPECT_EQ(AfterAttachResp(Status::kFull, true).action, Action::kClose);
  EXPECT_EQ(AfterAttachResp(Status::kProtocol, false).action, Action::kSendErrorClose);
}

tlv::HelloReq Req(uint16_t min, uint16_t max, uint32_t kinds = 1) {
  return tlv::HelloReq{layout::kHelloMagic, min, max, kinds, 0, 0};
}

TEST(EvaluateHello, Negotiation) {
  const HelloPolicy p2{2, layout::kKindHost, true, true};
  const HelloPolicy p1{1, layout::kKindHost, true, true};
  EXPECT_EQ(EvaluateHello(Req(1, 2), p2).negotiated, 2);
  EXPECT_EQ(EvaluateHello(Req(1, 1), p2).negotiated, 1);
  EXPECT_EQ(EvaluateHello(Req(1, 5), p2).negotiated, 2);                     // a future subscriber
  EXPECT_EQ(EvaluateHello(Req(1, 2), p1).negotiated, 1);                     // v1-capped publisher
  EXPECT_EQ(EvaluateHello(Req(0, 1), p2).status, Status::kVersionMismatch);  // MSG-HELLO-04
  EXPECT_EQ(EvaluateHello(Req(2, 2), p1).status, Status::kVersionMismatch);
  EXPECT_EQ(EvaluateHello(Req(3, 4), p2).status, Status::kVersionMismatch);
  EXPECT_EQ(EvaluateHello(Req(2, 1), p2).status, Status::kVersionMismatch);  // min > max
  EXPECT_EQ(EvaluateHello(Req(0, 0), p2).status, Status::kVersionMismatch);
}

TEST(EvaluateHello, ChecksInOrder) {
  tlv::HelloReq bad = Req(1, 2);
  bad.magic = 0x12345678;
  EXPECT_EQ(EvaluateHello(bad, {2, 1, false, false}).status, Status::kProtocol);
  EXPECT_EQ(EvaluateHello(Req(3, 3, 0), {2, 1, false, false}).status, Status::kVersionMismatch);
  EXPECT_EQ(EvaluateHello(Req(1, 2, 2), {2, 1, false, false}).status, Status::kUnsupportedKind);
  EXPECT_EQ(EvaluateHello(Req(1, 2, 3), {2, 2, false, false}).status, Status::kPermission);
  EXPECT_EQ(EvaluateHello(Req(1, 2, 1), {2, 1, true, false}).status, Status::kFull);
  EXPECT_EQ(EvaluateHello(Req(1, 2, 1), {2, 1, true, true}).status, Status::kOk);
}

TEST(CheckHelloResp, Cases) {
  tlv::HelloResp r{};
  r.proto_version = 2;
  r.memory_kind = 1;
  EXPECT_EQ(CheckHelloResp(r, 2, 1), Status::kOk);
  EXPECT_EQ(CheckHelloResp(r, 1, 1), Status::kVersionMismatch);  // above our cap
  EXPECT_EQ(CheckHelloResp(r, 2, 2), Status::kUnsupportedKind);  // kind not offered
  r.proto_version = 0;
  EXPECT_EQ(CheckHelloResp(r, 2, 1), Status::kVersionMismatch);
  r.status = ToWire(Status::kFull);
  EXPECT_EQ(CheckHelloResp(r, 2, 1), Status::kFull);
  r.status = 999;  // ERR-02: an unknown code is PROTOCOL
  EXPECT_EQ(CheckHelloResp(r, 2, 1), Status::kProtocol);
}

}  // namespace
}  // namespace cuframes::handshake
