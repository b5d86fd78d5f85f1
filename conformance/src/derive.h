// derive.h: what the harness derives mechanically from the twin: the expected outcome of a
// state-table row (parsed from its action and error columns), the path of OK rows that drives an
// IUT to a row's FROM state, and the boundary values of every constrained field.
//
// Parsing is strict on purpose: an action clause the parser does not know (a spec change that
// adds a new kind of action) makes the derived case fail loudly with the clause quoted, instead
// of passing without checking it.
#ifndef CUFRAMES_CONFORMANCE_SRC_DERIVE_H_
#define CUFRAMES_CONFORMANCE_SRC_DERIVE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "registry.h"
#include "spec_model.h"
#include "stimulus.h"

namespace cuframes::conform {

// ---- state-table rows ----

// The observable outcome of one row, resolved against the stimulus that raises its event.
struct RowOutcome {
  bool ignore = false;                // nothing happens: no message, connection kept, state kept
  std::string send;                   // the message the IUT sends ("" none)
  std::string send_code;              // its code/reason/status by error name ("" where it has none)
  bool close = false;                 // the IUT closes the connection
  bool reserve_slot = false;          // publisher: slot ATTACHING, generation + 1
  bool slot_active = false;           // publisher: slot ACTIVE with start_seq = write_seq + 1
  bool slot_evicted = false;          // publisher: slot EVICTED before it is freed
  bool free_slot = false;             // publisher: the slot ends FREE
  std::string report;                 // the code reported to the local caller ("" = none / OK)
  std::vector<std::string> internal;  // clauses about the IUT's inside, not observable
};

// Parses `row`'s action and error columns. Clauses that name nothing observable ("map and
// validate the segment") are kept in `internal`. Codes the row leaves open ("as 3.2 says",
// "HELLO_RESP.status", "ERROR.code", "A|B") are taken from `stim`, which must name one of the
// allowed codes. Returns false and sets *error (quoting the clause) for anything not understood.
bool ParseOutcome(const TransitionDef& row, const Stimulus& stim, RowOutcome* out,
                  std::string* error);

// Returns the case ID of a row: "4.1/FROM/EVENT" (IUT subscriber) or "4.2/FROM/EVENT".
std::string RowCaseId(Role iut, const TransitionDef& row);
// Returns the role of a state machine name, or nullopt.
std::optional<Role> RoleOfMachine(const std::string& machine);

// Returns the rows that drive an IUT from the machine's first state to `state`: OK rows (error
// column OK) into a different state whose event has a byte or adapter stimulus the harness can
// cause in that state, shortest path first, ties broken by twin row order. Returns false and sets
// *error when `state` cannot be reached that way.
bool PathTo(const StateMachineDef& m, Role iut, const std::string& state,
            std::vector<TransitionDef>* path, std::string* error);

// Returns the row from `state` that a derived case applies to prove the IUT is in `state`: the
// first OK row into another state that is not the machine's last (terminal) state, with a
// causable byte stimulus; nullopt when there is none (ACTIVE: a role-specific probe is used).
std::optional<TransitionDef> ProbeRow(const StateMachineDef& m, Role iut, const std::string& state);

// ---- constrained fields ----

// One boundary value of a constrained field and whether the spec allows it.
struct Boundary {
  uint64_t value = 0;
  bool legal = false;
  std::string label;  // "min-1", "max", "SEGMENT_MAGIC+1", "enum HOST", "flag bit 1"...
};

// Returns the boundary values of a field's "values" constraint: for a range, min-1/min/min+1 and
// max-1/max/max+1 (clipped to the field width); for a fixed list, each value and its neighbours;
// for enum:X, every value plus the values just outside the table; for flags:X, each defined bit
// alone and the lowest undefined bit. Returns false and sets *error for a constraint it cannot
// read (a new kind of constraint in the twin: loud, never skipped).
bool Boundaries(const Spec& spec, const FieldDef& f, std::vector<Boundary>* out,
                std::string* error);

// A field the twin constrains, named "Struct.field".
struct ConstrainedField {
  std::string name;
  std::string st;
  FieldDef field;
};
// Every field of every struct that carries a "values" constraint, in twin order.
std::vector<ConstrainedField> ConstrainedFields(const Spec& spec);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_DERIVE_H_
