// stimulus.h: the one table that turns an event of the twin's state tables (spec section 4) into
// what the harness does to the IUT: the bytes it sends, or the socket, shared-memory, clock or
// adapter action it takes.
//
// The table is keyed by (IUT role, twin event name). Derived transition cases
// (suites/transitions.cc) look every event up here, so a twin event without an entry is a
// coverage hole the run reports, never a silently skipped row. Byte stimuli are built from the
// twin (message types, field offsets, constants), never from an implementation's headers.
#ifndef CUFRAMES_CONFORMANCE_SRC_STIMULUS_H_
#define CUFRAMES_CONFORMANCE_SRC_STIMULUS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "registry.h"
#include "spec_model.h"

namespace cuframes::conform {

enum class StimKind {
  kMessage,        // send bytes: a message of the twin, possibly broken on purpose
  kBadSegment,     // damage the segment header, then send HELLO_RESP(OK)
  kEof,            // half-close the harness's end: the IUT reads end-of-file
  kHandshakeWait,  // let HANDSHAKE_TIMEOUT_MS pass since connect/accept
  kAckTimeout,     // hold a committed frame unreleased past the ACK timeout
  kAckGarbage,     // store an ack_seq beyond write_seq (ACK-EVICT-02)
  kLocalClose,     // the subscriber adapter closes by itself once it has read --frames N
  kLocalShutdown,  // the publisher adapter shuts down after its frames and --linger-ms
};

const char* StimKindName(StimKind k);

// Values a byte stimulus takes from the session so far.
struct StimParams {
  uint32_t subscriber_index = 0;
  uint32_t generation = 0;
  uint64_t start_seq = 1;
  uint64_t nonce = 0x0123456789abcdefULL;
};

struct Stimulus {
  Role iut;           // the role of the IUT that receives the event
  std::string event;  // the twin's event name
  StimKind kind;
  std::string message;  // the twin message the bytes carry ("" when the stimulus sends none)
  // The error code this stimulus stands for where the row leaves it open: the code of 3.2 a
  // MALFORMED message earns, the status of a refusing HELLO_RESP, the code an ERROR carries, the
  // validation error of a bad segment. "" when the row fixes every code itself.
  std::string code;
  std::string what;  // one line for case titles and evidence
  // States in which the harness can cause the event ("" entries: any). Adapter-driven events
  // (LOCAL_CLOSE) can only be caused where the adapter contract offers a way.
  std::vector<std::string> only_in;
  // Requirements the row's check verifies besides SM-SUB-01 / SM-PUB-01.
  std::vector<std::string> reqs;
  // Builds the bytes of a kMessage / kBadSegment stimulus; null for the other kinds.
  std::vector<uint8_t> (*bytes)(const Spec& spec, const StimParams& p) = nullptr;

  // Returns true when the harness can cause this event in `state`.
  bool CausableIn(std::string_view state) const;
};

// Every stimulus, in a fixed order.
const std::vector<Stimulus>& StimulusTable();

// Returns the stimulus for `event` against an IUT of role `iut`, or nullptr.
const Stimulus* FindStimulus(Role iut, std::string_view event);

// Returns the twin's state machine name for an IUT role ("subscriber" / "publisher").
const char* MachineName(Role iut);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_STIMULUS_H_
