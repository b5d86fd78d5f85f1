// prop_handshake_test.cpp: model-based tests (rc::state) of the two connection state machines of
// spec section 4 against reference/src/handshake.h.
//
// The model is the twin itself: spec/cuframes.json "state_machines" is loaded at test time (path
// from CMake, CUFRAMES_SPEC_JSON_PATH) with nlohmann-json. RapidCheck generates sequences of the
// twin's events (with their parameters: the code of an ERROR, the status of a refused HELLO_RESP,
// ...); each command feeds the event to the reference's pure transition function and checks that
// the next state, the action and the error code agree with the twin's row for (state, event).
// A mismatch fails with the shrunk command sequence.
//
// Mapping of twin events and actions onto the reference (documented in fuzz/README.md):
//  - refined events (HELLO_REQ_OK/REJECT/BAD_MAGIC, ATTACH_REQ_OK/MISMATCH, HELLO_RESP_*,
//    ATTACH_RESP_*) are the message's event followed, when the reference answers "process it",
//    by its verdict: AfterHello(v) / AfterAttach(v) (publisher), AfterHelloResp(v, refused) /
//    AfterAttachResp(v, refused) (subscriber), v being OK, the refusal's code (through
//    CheckHelloResp for HELLO_RESP), the segment check's error or ATTACH_RESP.status;
//  - WRONG_DIRECTION is a message only the other role sends; ACK_TIMEOUT and ACK_GARBAGE are
//    Event::kEvict (the driver sends the eviction's own reason: PROTOCOL for garbage);
//  - a twin action is the list of reference actions it needs: "ignore" = kNone, "send PONG" =
//    kSendPong, "send ERROR(..), close" = kSendErrorClose, "send DETACH(..), close" =
//    kSendDetachClose, any other close = kClose, preceded by kProcessHello/kProcessAttach/
//    kProcessHelloResp/kProcessAttachResp for a message processed in its own state;
//  - twin errors that name a message field (ERROR.code, HELLO_RESP.status, ATTACH_RESP.status)
//    or a choice (UNSUPPORTED_LAYOUT|CORRUPT, MESSAGE_TOO_LARGE|UNKNOWN_MESSAGE|PROTOCOL) take the
//    command's parameter; where the reference documents a placeholder code (kMalformed,
//    kRecvError), the test substitutes the parameter as its driver does.
// Rows where the reference is known to differ (fuzz/known_bugs.txt) are skipped by the property
// and checked to still differ by KnownDeviationsStillDiffer, which also prints every deviation.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "handshake.h"
#include "known_bugs.h"
#include "prop_common.h"
#include "status.h"
#include "tlv.h"

#ifndef CUFRAMES_SPEC_JSON_PATH
#error "CUFRAMES_SPEC_JSON_PATH must name spec/cuframes.json"
#endif

namespace cuframes::fuzz {
namespace {

using handshake::Action;
using handshake::Event;
using handshake::PubState;
using handshake::SubState;

// --- the twin --------------------------------------------------------------------------------

struct Row {
  std::string to, action, error;
};

struct Machine {
  std::string name;
  std::vector<std::string> states, events;
  std::map<std::pair<std::string, std::string>, Row> rows;
};

struct Twin {
  Machine pub, sub;
  std::map<std::string, uint32_t> errors;  // name -> value
};

const Twin& LoadTwin() {
  static const Twin twin = [] {
    std::ifstream in(CUFRAMES_SPEC_JSON_PATH);
    if (!in) throw std::runtime_error("cannot read " CUFRAMES_SPEC_JSON_PATH);
    const nlohmann::json j = nlohmann::json::parse(in);
    Twin t;
    for (const auto& e : j.at("errors"))
      t.errors[e.at("name")] = e.at("value");
    auto load = [&](const char* name, Machine& m) {
      const auto& sm = j.at("state_machines").at(name);
      m.name = name;
      m.states = sm.at("states").get<std::vector<std::string>>();
      m.events = sm.at("events").get<std::vector<std::string>>();
      for (const auto& tr : sm.at("transitions")) {
        m.rows[{tr.at("from"), tr.at("event")}] = {tr.at("to"), tr.at("action"), tr.at("error")};
      }
    };
    load("publisher", t.pub);
    load("subscriber", t.sub);
    return t;
  }();
  return twin;
}

// --- names -----------------------------------------------------------------------------------

const char* PubStateName(PubState s) {
  switch (s) {
    case PubState::kAwaitHello:
      return "AWAIT_HELLO";
    case PubState::kAwaitAttach:
      return "AWAIT_ATTACH";
    case PubState::kActive:
      return "ACTIVE";
    case PubState::kClosed:
      return "CLOSED";
  }
  return "?";
}
const char* SubStateName(SubState s) {
  switch (s) {
    case SubState::kAwaitHelloResp:
      return "HELLO_SENT";
    case SubState::kAwaitAttachResp:
      return "ATTACH_SENT";
    case SubState::kActive:
      return "ACTIVE";
    case SubState::kClosed:
      return "CLOSED";
  }
  return "?";
}
PubState PubStateOf(const std::string& s) {
  if (s == "AWAIT_HELLO") return PubState::kAwaitHello;
  if (s == "AWAIT_ATTACH") return PubState::kAwaitAttach;
  if (s == "ACTIVE") return PubState::kActive;
  return PubState::kClosed;
}
SubState SubStateOf(const std::string& s) {
  if (s == "HELLO_SENT") return SubState::kAwaitHelloResp;
  if (s == "ATTACH_SENT") return SubState::kAwaitAttachResp;
  if (s == "ACTIVE") return SubState::kActive;
  return SubState::kClosed;
}
const char* ActionName(Action a) {
  switch (a) {
    case Action::kNone:
      return "none";
    case Action::kProcessHello:
      return "process-hello";
    case Action::kProcessAttach:
      return "process-attach";
    case Action::kProcessHelloResp:
      return "process-hello-resp";
    case Action::kProcessAttachResp:
      return "process-attach-resp";
    case Action::kSendPong:
      return "send-pong";
    case Action::kClose:
      return "close";
    case Action::kSendErrorClose:
      return "send-error-close";
    case Action::kSendDetachClose:
      return "send-detach-close";
  }
  return "?";
}

// --- outcomes --------------------------------------------------------------------------------

struct Outcome {
  std::string next;
  std::vector<Action> actions;
  Status error;

  bool operator==(const Outcome&) const = default;
};

std::string Show(const Outcome& o) {
  std::ostringstream os;
  os << o.next << " [";
  for (size_t i = 0; i < o.actions.size(); ++i)
    os << (i ? ", " : "") << ActionName(o.actions[i]);
  os << "] " << StatusName(o.error);
  return os.str();
}

// A twin event with its parameter: the code an ERROR carries, a refused HELLO_RESP's status, the
// publisher's verdict on a refused HELLO_REQ, the segment check's error, ATTACH_RESP.status, and
// for WRONG_DIRECTION which message (0 or 1).
struct Ev {
  std::string name;
  uint32_t param = 0;
};

// The twin's expectation for (machine, state, event).
Outcome Expected(const Machine& m, const std::string& state, const Ev& ev) {
  const Row& row = m.rows.at({state, ev.name});
  Outcome o;
  o.next = row.to;
  const bool pub = m.name == "publisher";
  // A message processed in its own state first goes through the "process" action.
  if (pub && state == "AWAIT_HELLO" && ev.name.rfind("HELLO_REQ", 0) == 0) {
    o.actions.push_back(Action::kProcessHello);
  } else if (pub && state == "AWAIT_ATTACH" && ev.name.rfind("ATTACH_REQ", 0) == 0) {
    o.actions.push_back(Action::kProcessAttach);
  } else if (!pub && state == "HELLO_SENT" && ev.name.rfind("HELLO_RESP", 0) == 0) {
    o.actions.push_back(Action::kProcessHelloResp);
  } else if (!pub && state == "ATTACH_SENT" && ev.name.rfind("ATTACH_RESP", 0) == 0) {
    o.actions.push_back(Action::kProcessAttachResp);
  }
  const std::string& a = row.action;
  if (a.rfind("ignore", 0) == 0) {
    o.actions.push_back(Action::kNone);
  } else if (a.find("send PONG") != std::string::npos) {
    o.actions.push_back(Action::kSendPong);
  } else if (a.find("send ERROR(") != std::string::npos) {
    o.actions.push_back(Action::kSendErrorClose);
  } else if (a.find("send DETACH(") != std::string::npos) {
    o.actions.push_back(Action::kSendDetachClose);
  } else if (a.find("close") != std::string::npos || a.find("unmap") != std::string::npos) {
    o.actions.push_back(Action::kClose);
  } else {
    o.actions.push_back(Action::kNone);  // processed and accepted: the next state says the rest
  }
  const Twin& t = LoadTwin();
  if (row.error.find('.') != std::string::npos || row.error.find('|') != std::string::npos) {
    o.error = static_cast<Status>(ev.param);
  } else {
    o.error = static_cast<Status>(t.errors.at(row.error));
  }
  return o;
}

Outcome FromPub(handshake::PubStep s) {
  return {PubStateName(s.next), {s.action}, s.error};
}
Outcome FromSub(handshake::SubStep s) {
  return {SubStateName(s.next), {s.action}, s.error};
}

// The reference's outcome for the publisher-side connection in `s`.
Outcome RefPublisher(PubState s, const Ev& ev) {
  auto process = [&](Event e, Action processing, handshake::PubStep (*after)(Status),
                     Status verdict) {
    const handshake::PubStep step = handshake::PublisherStep(s, e);
    if (step.action != processing) return FromPub(step);
    const handshake::PubStep a = after(verdict);
    return Outcome{PubStateName(a.next), {processing, a.action}, a.error};
  };
  const std::string& n = ev.name;
  if (n == "HELLO_REQ_OK") {
    return process(Event::kRecvHelloReq, Action::kProcessHello, handshake::AfterHello, Status::kOk);
  }
  if (n == "HELLO_REQ_REJECT") {
    return process(Event::kRecvHelloReq, Action::kProcessHello, handshake::AfterHello,
                   static_cast<Status>(ev.param));
  }
  if (n == "HELLO_REQ_BAD_MAGIC") {
    return process(Event::kRecvHelloReq, Action::kProcessHello, handshake::AfterHello,
                   Status::kProtocol);
  }
  if (n == "ATTACH_REQ_OK") {
    return process(Event::kRecvAttachReq, Action::kProcessAttach, handshake::AfterAttach,
                   Status::kOk);
  }
  if (n == "ATTACH_REQ_MISMATCH") {
    return process(Event::kRecvAttachReq, Action::kProcessAttach, handshake::AfterAttach,
                   Status::kProtocol);
  }
  static const std::map<std::string, Event> simple = {{"DETACH", Event::kRecvDetach},
                                                      {"ERROR", Event::kRecvError},
                                                      {"PING", Event::kRecvPing},
                                                      {"PONG", Event::kRecvPong},
                                                      {"MALFORMED", Event::kMalformed},
                                                      {"EOF", Event::kEof},
                                                      {"HANDSHAKE_TIMEOUT", Event::kTimeout},
                                                      {"ACK_TIMEOUT", Event::kEvict},
                                                      {"ACK_GARBAGE", Event::kEvict},
                                                      {"LOCAL_SHUTDOWN", Event::kShutdown}};
  if (n == "WRONG_DIRECTION") {
    return FromPub(handshake::PublisherStep(
        s, ev.param == 0 ? Event::kRecvHelloResp : Event::kRecvAttachResp));
  }
  Outcome o = FromPub(handshake::PublisherStep(s, simple.at(n)));
  // The eviction's reason comes from the frame path: PROTOCOL for a garbage ack_seq.
  if (n == "ACK_GARBAGE" && o.error == Status::kEvicted) o.error = Status::kProtocol;
  // kMalformed's kProtocol is a placeholder: the driver substitutes the decoder's code.
  if (n == "MALFORMED" && o.actions.back() == Action::kSendErrorClose) {
    o.error = static_cast<Status>(ev.param);
  }
  return o;
}

// The reference's outcome for the subscriber in `s`: the message's step, then, when it is
// processed, AfterHelloResp()/AfterAttachResp() with the verdict (CheckHelloResp for a refused
// HELLO_RESP, the segment check's error, ATTACH_RESP.status).
Outcome RefSubscriber(SubState s, const Ev& ev) {
  const std::string& n = ev.name;
  auto process = [&](Event e, Action processing, Status verdict, bool publisher_refused,
                     handshake::SubStep (*after)(Status, bool)) {
    const handshake::SubStep step = handshake::SubscriberStep(s, e);
    if (step.action != processing) return FromSub(step);
    const handshake::SubStep a = after(verdict, publisher_refused);
    return Outcome{SubStateName(a.next), {processing, a.action}, a.error};
  };
  if (n == "HELLO_RESP_OK") {
    return process(Event::kRecvHelloResp, Action::kProcessHelloResp, Status::kOk, false,
                   handshake::AfterHelloResp);
  }
  if (n == "HELLO_RESP_ERR") {
    tlv::HelloResp resp{};
    resp.status = ev.param;
    const Status v = handshake::CheckHelloResp(resp, 2, 1);
    return process(Event::kRecvHelloResp, Action::kProcessHelloResp, v, true,
                   handshake::AfterHelloResp);
  }
  if (n == "HELLO_RESP_OK_BAD_SEGMENT") {
    return process(Event::kRecvHelloResp, Action::kProcessHelloResp, static_cast<Status>(ev.param),
                   false, handshake::AfterHelloResp);
  }
  if (n == "ATTACH_RESP_OK") {
    return process(Event::kRecvAttachResp, Action::kProcessAttachResp, Status::kOk, false,
                   handshake::AfterAttachResp);
  }
  if (n == "ATTACH_RESP_ERR") {
    return process(Event::kRecvAttachResp, Action::kProcessAttachResp,
                   static_cast<Status>(ev.param), true, handshake::AfterAttachResp);
  }
  if (n == "WRONG_DIRECTION") {
    return FromSub(
        handshake::SubscriberStep(s, ev.param == 0 ? Event::kRecvHelloReq : Event::kRecvAttachReq));
  }
  static const std::map<std::string, Event> simple = {{"DETACH", Event::kRecvDetach},
                                                      {"ERROR", Event::kRecvError},
                                                      {"PING", Event::kRecvPing},
                                                      {"PONG", Event::kRecvPong},
                                                      {"MALFORMED", Event::kMalformed},
                                                      {"EOF", Event::kEof},
                                                      {"HANDSHAKE_TIMEOUT", Event::kTimeout},
                                                      {"LOCAL_CLOSE", Event::kShutdown}};
  Outcome o = FromSub(handshake::SubscriberStep(s, simple.at(n)));
  // kRecvError's kProtocol is a placeholder: the driver reports the ERROR's own code.
  if (n == "ERROR" && o.actions.back() == Action::kClose && o.error == Status::kProtocol) {
    o.error = static_cast<Status>(ev.param);
  }
  // kMalformed's kProtocol is a placeholder: the driver substitutes the decoder's code.
  if (n == "MALFORMED" && o.actions.back() == Action::kSendErrorClose) {
    o.error = static_cast<Status>(ev.param);
  }
  return o;
}

// --- known deviations (fuzz/known_bugs.txt) --------------------------------------------------

struct Deviation {
  const char* machine;
  const char* state;  // nullptr: every state but CLOSED
  const char* event;
  const char* bug;
};

// Rows of the twin the reference is known not to follow, each with its bug id (the report of
// KnownDeviationsStillDiffer lists every deviating (state, event, parameter)).
const std::vector<Deviation> kDeviations = {
    // Empty: every row agrees. Found and fixed in the reference while this suite was written
    // (see fuzz/README.md): B6 PEER_CLOSED instead of OK on DETACH/ERROR/EOF (publisher); B7
    // PEER_CLOSED for every event in CLOSED (subscriber); B8 ACK_TIMEOUT/ACK_GARBAGE before
    // ACTIVE closed the connection; B9 HANDSHAKE_TIMEOUT closed ACTIVE connections; B10 the
    // subscriber's handshake timeout sent ERROR(TIMEOUT); B11 LOCAL_CLOSE before ACTIVE sent no
    // DETACH; B12 a segment failing validation was answered with ERROR, not DETACH(reason).
    // Add {machine, state (nullptr: all but CLOSED), event, bug id} rows for new known bugs.
    {nullptr, nullptr, nullptr, nullptr},
};

const char* KnownDeviation(const std::string& machine, const std::string& state,
                           const std::string& event) {
  for (const Deviation& d : kDeviations) {
    if (d.machine == nullptr) continue;
    if (machine == d.machine && event == d.event &&
        (d.state == nullptr ? state != "CLOSED" : state == d.state) && IsKnownBug(d.bug)) {
      return d.bug;
    }
  }
  return nullptr;
}

// --- parameters ------------------------------------------------------------------------------

std::vector<uint32_t> ParamsOf(const std::string& event, bool pub) {
  const Twin& t = LoadTwin();
  auto codes = [&](std::initializer_list<const char*> names) {
    std::vector<uint32_t> v;
    for (const char* nm : names)
      v.push_back(t.errors.at(nm));
    return v;
  };
  // An error column that offers a choice ("A|B|C") in some state: the parameter is one of them.
  const Machine& m = pub ? t.pub : t.sub;
  for (const std::string& state : m.states) {
    const std::string& err = m.rows.at({state, event}).error;
    if (err.find('|') == std::string::npos) continue;
    std::vector<uint32_t> v;
    size_t start = 0;
    while (start <= err.size()) {
      size_t end = err.find('|', start);
      if (end == std::string::npos) end = err.size();
      v.push_back(t.errors.at(err.substr(start, end - start)));
      start = end + 1;
    }
    return v;
  }
  // Codes carried by a message field (HELLO_RESP.status, ATTACH_RESP.status, ERROR.code).
  if (event == "HELLO_REQ_REJECT" || event == "HELLO_RESP_ERR") {
    return codes({"VERSION_MISMATCH", "UNSUPPORTED_KIND", "PERMISSION", "FULL"});
  }
  if (event == "ATTACH_RESP_ERR") return codes({"PROTOCOL", "STATE", "FULL"});
  if (event == "WRONG_DIRECTION") return {0, 1};
  if (event == "ERROR" && !pub) {
    std::vector<uint32_t> v;
    for (const auto& [name, value] : t.errors) {
      if (value != 0) v.push_back(value);  // every defined code but OK
    }
    return v;
  }
  return {0};
}

// --- rc::state model and commands ------------------------------------------------------------

struct PubModel {
  std::string state = "AWAIT_HELLO";
};
struct PubSut {
  PubState state = PubState::kAwaitHello;
};
struct SubModel {
  std::string state = "HELLO_SENT";
};
struct SubSut {
  SubState state = SubState::kAwaitHelloResp;
};

// Picks an event: half of the time one that keeps the connection open from `state`, so that
// sequences spend time outside CLOSED.
std::string PickEvent(const Machine& m, const std::string& state) {
  std::vector<std::string> alive;
  for (const std::string& e : m.events) {
    if (m.rows.at({state, e}).to != "CLOSED") alive.push_back(e);
  }
  if (!alive.empty() && *rc::gen::arbitrary<bool>()) return *rc::gen::elementOf(alive);
  return *rc::gen::elementOf(m.events);
}

struct PubCmd : rc::state::Command<PubModel, PubSut> {
  Ev ev;
  explicit PubCmd(const PubModel& model) {
    ev.name = PickEvent(LoadTwin().pub, model.state);
    ev.param = *rc::gen::elementOf(ParamsOf(ev.name, true));
  }
  void apply(PubModel& model) const override {
    model.state = LoadTwin().pub.rows.at({model.state, ev.name}).to;
  }
  void run(const PubModel& model, PubSut& sut) const override {
    RC_ASSERT(PubStateName(sut.state) == model.state);
    const Outcome want = Expected(LoadTwin().pub, model.state, ev);
    const Outcome got = RefPublisher(sut.state, ev);
    if (KnownDeviation("publisher", model.state, ev.name) != nullptr) {
      sut.state = PubStateOf(want.next);  // follow the spec, so later steps stay comparable
      return;
    }
    if (got != want) {
      RC_FAIL("publisher " + model.state + " + " + ev.name + "(" + std::to_string(ev.param) +
              "): twin " + Show(want) + ", reference " + Show(got));
    }
    sut.state = PubStateOf(got.next);
  }
  void show(std::ostream& os) const override {
    os << ev.name;
    if (ev.param != 0) os << "(" << ev.param << ")";
  }
};

struct SubCmd : rc::state::Command<SubModel, SubSut> {
  Ev ev;
  explicit SubCmd(const SubModel& model) {
    ev.name = PickEvent(LoadTwin().sub, model.state);
    ev.param = *rc::gen::elementOf(ParamsOf(ev.name, false));
  }
  void apply(SubModel& model) const override {
    model.state = LoadTwin().sub.rows.at({model.state, ev.name}).to;
  }
  void run(const SubModel& model, SubSut& sut) const override {
    RC_ASSERT(SubStateName(sut.state) == model.state);
    const Outcome want = Expected(LoadTwin().sub, model.state, ev);
    const Outcome got = RefSubscriber(sut.state, ev);
    if (KnownDeviation("subscriber", model.state, ev.name) != nullptr) {
      sut.state = SubStateOf(want.next);
      return;
    }
    if (got != want) {
      RC_FAIL("subscriber " + model.state + " + " + ev.name + "(" + std::to_string(ev.param) +
              "): twin " + Show(want) + ", reference " + Show(got));
    }
    sut.state = SubStateOf(got.next);
  }
  void show(std::ostream& os) const override {
    os << ev.name;
    if (ev.param != 0) os << "(" << ev.param << ")";
  }
};

// --- tests -----------------------------------------------------------------------------------

TEST(HandshakeTwin, TablesAreCompleteAndUseTheReferenceStates) {
  const Twin& t = LoadTwin();
  for (const Machine* m : {&t.pub, &t.sub}) {
    EXPECT_EQ(m->states.size(), 4u) << m->name;
    EXPECT_EQ(m->rows.size(), m->states.size() * m->events.size()) << m->name << ": not total";
    for (const std::string& s : m->states) {
      if (m == &t.pub) {
        EXPECT_EQ(PubStateName(PubStateOf(s)), s);
      } else {
        EXPECT_EQ(SubStateName(SubStateOf(s)), s);
      }
    }
  }
}

RC_GTEST_PROP(HandshakeModel, PublisherFollowsTheTwinTable, ()) {
  PubModel model;
  PubSut sut;
  rc::state::check(model, sut, rc::state::gen::execOneOfWithArgs<PubCmd>());
}

RC_GTEST_PROP(HandshakeModel, SubscriberFollowsTheTwinTable, ()) {
  SubModel model;
  SubSut sut;
  rc::state::check(model, sut, rc::state::gen::execOneOfWithArgs<SubCmd>());
}

// Every (state, event, parameter) once: prints each deviation, fails on a deviation that is not
// a known bug, and on a known deviation that no longer differs (fixed: remove it from
// fuzz/known_bugs.txt).
TEST(HandshakeModel, KnownDeviationsStillDiffer) {
  const Twin& t = LoadTwin();
  int deviations = 0;
  for (const Machine* m : {&t.pub, &t.sub}) {
    const bool pub = m == &t.pub;
    for (const std::string& state : m->states) {
      for (const std::string& event : m->events) {
        bool any_differs = false;
        for (uint32_t param : ParamsOf(event, pub)) {
          const Ev ev{event, param};
          const Outcome want = Expected(*m, state, ev);
          const Outcome got =
              pub ? RefPublisher(PubStateOf(state), ev) : RefSubscriber(SubStateOf(state), ev);
          if (got == want) continue;
          any_differs = true;
          ++deviations;
          const char* bug = KnownDeviation(m->name, state, event);
          std::printf("deviation%s%s: %s %s + %s(%u): twin %s, reference %s\n", bug ? " " : "",
                      bug ? bug : "", m->name.c_str(), state.c_str(), event.c_str(), param,
                      Show(want).c_str(), Show(got).c_str());
          EXPECT_NE(bug, nullptr) << m->name << " " << state << " + " << event << "(" << param
                                  << "): twin " << Show(want) << ", reference " << Show(got);
        }
        const char* bug = KnownDeviation(m->name, state, event);
        EXPECT_TRUE(bug == nullptr || any_differs)
            << m->name << " " << state << " + " << event << " now follows the twin: " << bug
            << " looks fixed; remove it from fuzz/known_bugs.txt";
      }
    }
  }
  std::printf("%d (state, event, parameter) deviation(s) from the twin\n", deviations);
}

}  // namespace
}  // namespace cuframes::fuzz
